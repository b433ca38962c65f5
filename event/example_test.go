package event_test

import (
	"fmt"
	"time"

	"github.com/bucketrelay/bucketrelay/event"
)

// A storage server builds the record of an upload from what it knows of
// the object and the request; every field S3 clients read is filled.
func ExampleNewRecord() {
	rec := event.NewRecord(event.ObjectCreatedPut, event.ObjectInfo{
		Bucket: "images", Key: "my photo.jpg", Size: 248682,
		ETag: `"f1671feacb8bbf7b0397c6e9364e8c92"`, ContentType: "image/jpeg",
		Tags: map[string]string{"team": "web"},
	}, event.Request{
		Time:        time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC),
		PrincipalID: "minio", SourceIP: "192.168.1.80:55328",
		Sequencer: "1879A4C3F2D1E000", // normally left empty: NextSequencer()
	})
	fmt.Println(string(rec.AppendJSON(nil)))
	// Output:
	// {"eventVersion":"2.0","eventSource":"minio:s3","awsRegion":"","eventTime":"2026-11-25T12:00:00.000Z","eventName":"s3:ObjectCreated:Put","userIdentity":{"principalId":"minio"},"requestParameters":{"principalId":"minio","sourceIPAddress":"192.168.1.80:55328"},"responseElements":{"x-amz-request-id":"1879A4C3F2D1E000"},"s3":{"s3SchemaVersion":"1.0","configurationId":"Config","bucket":{"name":"images","ownerIdentity":{"principalId":"minio"},"arn":"arn:aws:s3:::images"},"object":{"key":"my+photo.jpg","size":248682,"eTag":"f1671feacb8bbf7b0397c6e9364e8c92","contentType":"image/jpeg","userMetadata":{"X-Amz-Tagging":"team=web","content-type":"image/jpeg"},"sequencer":"1879A4C3F2D1E000"}},"source":{"host":"192.168.1.80","port":"55328","userAgent":""}}
}

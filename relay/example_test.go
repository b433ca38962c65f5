package relay_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/relay"
	"github.com/bucketrelay/bucketrelay/rules"
)

// A storage server embeds the relay: it opens it with a configuration,
// sets a bucket's notification rules and publishes an event record when an
// object changes. Publish returns once the record is fsynced; delivery to
// the webhook happens in the background, retried until it succeeds.
func Example() {
	// The system that wants the notifications.
	got := make(chan string, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- string(b[:62])
	}))
	defer hook.Close()

	dir, _ := os.MkdirTemp("", "relay-example-")
	defer os.RemoveAll(dir)
	cfg, err := relay.ParseConfig([]byte(`{
	  "relay":  {"dataDir": "` + dir + `"},
	  "notify": {"webhook": {"1": {"enable": true, "endpoint": "` + hook.URL + `"}}}
	}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	r, err := relay.Open(cfg, relay.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close(context.Background())
	fmt.Println("SQS ARNs:", r.ARNs())

	// mc events add myminio/images arn:minio:sqs::1:webhook --events put --suffix .jpg
	err = r.SetBucketRules("images", []rules.Rule{{
		ARN: "arn:minio:sqs::1:webhook", Events: []event.Name{event.ObjectCreatedAll}, Suffix: ".jpg",
	}})
	if err != nil {
		fmt.Println(err)
		return
	}

	rec := event.Record{
		EventVersion: "2.0", EventSource: "minio:s3", EventTime: "2026-11-25T12:00:00Z",
		EventName: event.ObjectCreatedPut,
		S3: event.S3{
			SchemaVersion: "1.0", ConfigurationID: "Config",
			Bucket: event.Bucket{Name: "images", ARN: "arn:aws:s3:::images"},
			Object: event.Object{Key: "myphoto.jpg", Size: 200436, Sequencer: "147279EAF9F40933"},
		},
	}
	if err := r.Publish(context.Background(), rec); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("durable; the webhook got:", <-got)
	// Output:
	// SQS ARNs: [arn:minio:sqs::1:webhook]
	// durable; the webhook got: {"EventName":"s3:ObjectCreated:Put","Key":"images/myphoto.jpg"
}

package relay

import (
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bucketrelay/bucketrelay/rules"
)

const putJPG = `<NotificationConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
<QueueConfiguration><Id>1</Id><Queue>arn:minio:sqs::1:webhook</Queue><Event>s3:ObjectCreated:*</Event>
<Filter><S3Key><FilterRule><Name>suffix</Name><Value>.jpg</Value></FilterRule></S3Key></Filter></QueueConfiguration>
</NotificationConfiguration>`

func s3Do(t *testing.T, h http.Handler, method, target, body string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, strings.NewReader(body)))
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// wantS3Error checks an S3 XML error body.
func wantS3Error(t *testing.T, res *http.Response, body string, status int, code, resource string) {
	t.Helper()
	var e s3ErrorBody
	if err := xml.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("error body is not S3 XML: %v: %s", err, body)
	}
	if res.StatusCode != status || e.Code != code || e.Resource != resource || e.RequestID == "" || e.Message == "" {
		t.Fatalf("got %d %+v, want %d %s for %s with a message and a request id", res.StatusCode, e, status, code, resource)
	}
	if res.Header.Get("x-amz-request-id") != e.RequestID {
		t.Fatalf("x-amz-request-id %q, want the body's %q", res.Header.Get("x-amz-request-id"), e.RequestID)
	}
}

func TestS3Handler(t *testing.T) {
	r := openRelay(t, testConfig(t, t.TempDir(), "http://127.0.0.1:1/", ""))
	nextCalled := 0
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { nextCalled++ })
	h := r.S3Handler(next, S3Options{BucketExists: func(_ context.Context, b string) (bool, error) { return b != "missing", nil }})

	res, body := s3Do(t, h, "GET", "/photos?notification", "")
	if res.StatusCode != 200 || strings.Contains(body, "QueueConfiguration") {
		t.Fatalf("GET of a bucket without rules: %d %s", res.StatusCode, body)
	}
	res, body = s3Do(t, h, "PUT", "/photos?notification=", putJPG)
	if res.StatusCode != 200 {
		t.Fatalf("PUT: %d %s", res.StatusCode, body)
	}
	res, body = s3Do(t, h, "GET", "/photos?notification", "")
	got, err := rules.ParseXML([]byte(body))
	if err != nil || res.StatusCode != 200 || len(got) != 1 || got[0].Suffix != ".jpg" || got[0].ARN != webhookARN {
		t.Fatalf("GET after PUT: %d %v %s", res.StatusCode, err, body)
	}
	if rs := r.BucketRules("photos"); len(rs) != 1 {
		t.Fatalf("BucketRules = %v, want the rule put", rs)
	}

	res, body = s3Do(t, h, "PUT", "/photos?notification", "<NotificationConfiguration><QueueConfiguration>")
	wantS3Error(t, res, body, 400, "MalformedXML", "/photos")
	res, body = s3Do(t, h, "PUT", "/photos?notification", "<Tagging/>")
	wantS3Error(t, res, body, 400, "MalformedXML", "/photos")
	res, body = s3Do(t, h, "PUT", "/photos?notification", strings.Replace(putJPG, "::1:webhook", "::9:webhook", 1))
	wantS3Error(t, res, body, 400, "InvalidArgument", "/photos")
	res, body = s3Do(t, h, "PUT", "/photos?notification", strings.Replace(putJPG, "ObjectCreated", "ObjectMelted", 1))
	wantS3Error(t, res, body, 400, "InvalidArgument", "/photos")
	res, body = s3Do(t, h, "GET", "/missing?notification", "")
	wantS3Error(t, res, body, 404, "NoSuchBucket", "/missing")
	res, body = s3Do(t, h, "DELETE", "/photos?notification", "")
	wantS3Error(t, res, body, 405, "MethodNotAllowed", "/photos")
	if rs := r.BucketRules("photos"); len(rs) != 1 {
		t.Fatalf("rejected PUTs changed the rules: %v", rs)
	}

	// An empty configuration removes the rules (mc event remove).
	res, body = s3Do(t, h, "PUT", "/photos?notification", `<NotificationConfiguration/>`)
	if res.StatusCode != 200 || len(r.BucketRules("photos")) != 0 {
		t.Fatalf("PUT of an empty configuration: %d %s, rules %v", res.StatusCode, body, r.BucketRules("photos"))
	}

	s3Do(t, h, "GET", "/photos/a.jpg", "")
	s3Do(t, h, "PUT", "/photos", "")
	if nextCalled != 2 {
		t.Fatalf("next called %d times, want 2 (object and bucket requests without ?notification)", nextCalled)
	}
	res, body = s3Do(t, r.S3Handler(nil, S3Options{}), "GET", "/photos/a.jpg", "")
	wantS3Error(t, res, body, 501, "NotImplemented", "/photos/a.jpg")
}

package relay_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/relay"
	"github.com/bucketrelay/bucketrelay/rules"
)

// openExample opens a relay with one webhook target posting to endpoint,
// in dir or, if dir is empty, in a new directory the caller removes.
func openExample(dir, endpoint string) (*relay.Relay, string, error) {
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "relay-example-"); err != nil {
			return nil, "", err
		}
	}
	cfg, err := relay.ParseConfig([]byte(`{
	  "relay":  {"dataDir": "` + dir + `"},
	  "notify": {"webhook": {"1": {"enable": true, "endpoint": "` + endpoint + `", "timeout": "30s"}}}
	}`))
	if err != nil {
		return nil, dir, err
	}
	r, err := relay.Open(cfg, relay.Options{})
	return r, dir, err
}

// A server shutting down gives Close a deadline. Here the endpoint hangs:
// Close abandons the send in flight at the deadline instead of waiting for
// the webhook's 30 s timeout. The event stays in the log and is delivered
// after the next Open.
func ExampleRelay_Close() {
	inFlight := make(chan struct{}, 1)
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.Copy(io.Discard, req.Body)
		select {
		case inFlight <- struct{}{}:
		default:
		}
		<-req.Context().Done() // never answers
	}))
	defer hang.Close()
	r, dir, err := openExample("", hang.URL)
	defer os.RemoveAll(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	rec := event.NewRecord(event.ObjectCreatedPut, event.ObjectInfo{Bucket: "images", Key: "a.jpg", Size: 1}, event.Request{})
	r.SetBucketRules("images", []rules.Rule{{ARN: "arn:minio:sqs::1:webhook"}})
	if err := r.Publish(ctx, rec); err != nil {
		fmt.Println(err)
		return
	}
	<-inFlight // the send is in flight

	sctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = r.Close(sctx)
	fmt.Println("deadline exceeded:", errors.Is(err, context.DeadlineExceeded))
	fmt.Println("returned within a second:", time.Since(start) < time.Second)

	// Opened again with a working endpoint, the relay delivers the event.
	got := make(chan string, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var m event.Message
		json.NewDecoder(req.Body).Decode(&m)
		got <- m.Key
	}))
	defer hook.Close()
	r, _, err = openExample(dir, hook.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close(ctx)
	fmt.Println("delivered after reopening:", <-got)
	// Output:
	// deadline exceeded: true
	// returned within a second: true
	// delivered after reopening: images/a.jpg
}

// Publish errors are matched with errors.Is against package relay's
// sentinels; those of the log are the same values as package wal's.
func Example_errors() {
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {}))
	defer hook.Close()
	r, dir, err := openExample("", hook.URL)
	defer os.RemoveAll(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	err = r.SetBucketRules("images", []rules.Rule{{ARN: "arn:minio:sqs::9:webhook"}})
	fmt.Println("unknown target:", errors.Is(err, relay.ErrUnknownTarget))

	err = r.Publish(ctx, event.Record{EventName: event.ObjectCreatedPut})
	fmt.Println("invalid record:", errors.Is(err, relay.ErrInvalid))

	r.Close(ctx)
	rec := event.NewRecord(event.ObjectCreatedPut, event.ObjectInfo{Bucket: "images", Key: "a.jpg"}, event.Request{})
	err = r.Publish(ctx, rec)
	fmt.Println("closed:", errors.Is(err, relay.ErrClosed))

	switch {
	case errors.Is(err, relay.ErrFull):
		// The log is full: answer 503 SlowDown and let the client retry.
	case errors.Is(err, relay.ErrNoSpace), errors.Is(err, relay.ErrFailed):
		// The disk is full or failed: nothing was logged.
	}
	// Output:
	// unknown target: true
	// invalid record: true
	// closed: true
}

// A storage server mounts S3Handler in front of its own S3 handler, so
// `mc event add` and SDKs' SetBucketNotification reach the relay.
func ExampleRelay_S3Handler() {
	r, dir, err := openExample("", "http://127.0.0.1:1/")
	defer os.RemoveAll(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close(context.Background())
	storage := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.WriteString(w, "the server's own S3 API\n")
	})
	srv := httptest.NewServer(r.S3Handler(storage, relay.S3Options{
		BucketExists: func(_ context.Context, bucket string) (bool, error) { return bucket == "images", nil },
		RequestID:    func(*http.Request) string { return "187A2B3C4D5E6F70" },
	}))
	defer srv.Close()

	do := func(method, path, body string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		fmt.Println(method, path, res.StatusCode)
		if res.StatusCode != 200 || method == "GET" {
			fmt.Print(strings.TrimPrefix(string(b), `<?xml version="1.0" encoding="UTF-8"?>`+"\n"), "\n")
		}
	}
	// mc event add myminio/images arn:minio:sqs::1:webhook --event put --suffix .jpg
	do("PUT", "/images?notification", `<NotificationConfiguration><QueueConfiguration>
	  <Queue>arn:minio:sqs::1:webhook</Queue><Event>s3:ObjectCreated:*</Event>
	  <Filter><S3Key><FilterRule><Name>suffix</Name><Value>.jpg</Value></FilterRule></S3Key></Filter>
	</QueueConfiguration></NotificationConfiguration>`)
	fmt.Println(r.BucketRules("images")[0].Filter())
	do("GET", "/nosuch?notification", "")
	do("GET", "/images/a.jpg", "")
	// Output:
	// PUT /images?notification 200
	// Filter: suffix=".jpg"
	// GET /nosuch?notification 404
	// <Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><Resource>/nosuch</Resource><RequestId>187A2B3C4D5E6F70</RequestId></Error>
	// GET /images/a.jpg 200
	// the server's own S3 API
}

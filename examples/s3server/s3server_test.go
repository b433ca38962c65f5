package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	redigo "github.com/gomodule/redigo/redis"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/notification"

	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/internal/testenv"
	"github.com/bucketrelay/bucketrelay/relay"
	"github.com/bucketrelay/bucketrelay/testkit/webhookrecv"
)

var redisAddr = testenv.Getenv("RELAY_TEST_REDIS", "127.0.0.1:6379")

const (
	webhookARN    = "arn:minio:sqs::1:webhook"
	redisARN      = "arn:minio:sqs::1:redis"
	testAccessKey = "AKIAEXAMPLE"
	secretKey     = "examplesecretkey"
)

// writeConfig writes a relay configuration with a webhook target posting
// to endpoint and, if redisKey is not empty, a Redis namespace target.
func writeConfig(t testing.TB, dir, endpoint, redisKey string) string {
	t.Helper()
	notify := fmt.Sprintf(`"webhook":{"1":{"enable":true,"endpoint":%q,"timeout":"5s"}}`, endpoint)
	if redisKey != "" {
		notify += fmt.Sprintf(`,"redis":{"1":{"enable":true,"format":"namespace","address":%q,"key":%q}}`, redisAddr, redisKey)
	}
	doc := fmt.Sprintf(`{"relay":{"dataDir":%q,"minBackoff":"10ms","maxBackoff":"200ms"},"notify":{%s}}`, filepath.Join(dir, "relay"), notify)
	path := filepath.Join(dir, "relay.json")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startServer runs the example server in the test process.
func startServer(t testing.TB, dir, config string) string {
	t.Helper()
	cfg, err := relay.LoadConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	lg := slog.New(slog.NewTextHandler(io.Discard, nil))
	r, err := relay.Open(cfg, relay.Options{Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	backend, err := newBackend(filepath.Join(dir, "s3"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newServer(backend, r, "", lg))
	t.Cleanup(func() {
		srv.Close()
		r.Close(context.Background())
	})
	return srv.URL
}

func newClient(t testing.TB, endpoint string) *minio.Client {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	c, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(testAccessKey, secretKey, ""), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// received is one delivered event.
type received struct {
	name event.Name
	key  string
	rec  event.Record
}

func parseBodies(t testing.TB, bodies [][]byte) []received {
	t.Helper()
	var out []received
	for _, b := range bodies {
		var m event.Message
		if err := json.Unmarshal(b, &m); err != nil || len(m.Records) != 1 {
			t.Fatalf("webhook body %.200s: %v", b, err)
		}
		var rec event.Record
		if err := json.Unmarshal(m.Records[0], &rec); err != nil {
			t.Fatal(err)
		}
		out = append(out, received{m.EventName, m.Key, rec})
	}
	return out
}

func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMinioGo drives the example server with minio-go: a notification
// configuration for a webhook and a Redis namespace target, then uploads
// (single, multipart, browser POST), a copy and deletes (single and
// multi-object). Every event reaches both targets, in order per key, with
// the fields S3 clients read.
func TestMinioGo(t *testing.T) {
	testenv.Require(t, "redis", redisAddr)
	redisKey := fmt.Sprintf("s3server-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	t.Cleanup(func() {
		if c, err := redigo.Dial("tcp", redisAddr); err == nil {
			c.Do("DEL", redisKey)
			c.Close()
		}
	})
	rcv := webhookrecv.New(t, "")
	dir := t.TempDir()
	endpoint := startServer(t, dir, writeConfig(t, dir, rcv.URL(), redisKey))
	c := newClient(t, endpoint)
	ctx := context.Background()

	if err := c.MakeBucket(ctx, "images", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := notification.Configuration{}
	for _, kind := range []string{"webhook", "redis"} {
		q := notification.NewConfig(notification.NewArn("minio", "sqs", "", "1", kind))
		q.AddEvents(notification.ObjectCreatedAll, notification.ObjectRemovedAll)
		cfg.AddQueue(q)
	}
	if err := c.SetBucketNotification(ctx, "images", cfg); err != nil {
		t.Fatalf("SetBucketNotification: %v", err)
	}
	got, err := c.GetBucketNotification(ctx, "images")
	if err != nil || len(got.QueueConfigs) != 2 {
		t.Fatalf("GetBucketNotification: %+v, %v; want the two queues set", got, err)
	}
	bad := notification.Configuration{}
	bad.AddQueue(notification.NewConfig(notification.NewArn("minio", "sqs", "", "9", "webhook")))
	if err := c.SetBucketNotification(ctx, "images", bad); minio.ToErrorResponse(err).Code != "InvalidArgument" {
		t.Fatalf("SetBucketNotification with an unknown ARN: got %v, want InvalidArgument", err)
	}
	if err := c.SetBucketNotification(ctx, "nosuch", cfg); minio.ToErrorResponse(err).Code != "NoSuchBucket" {
		t.Fatalf("SetBucketNotification on a missing bucket: got %v, want NoSuchBucket", err)
	}

	etags := map[string]string{}
	put := func(key string, data []byte, opts minio.PutObjectOptions) {
		t.Helper()
		info, err := c.PutObject(ctx, "images", key, bytes.NewReader(data), int64(len(data)), opts)
		if err != nil {
			t.Fatalf("PutObject %s: %v", key, err)
		}
		etags[key] = info.ETag
	}
	put("a photo.jpg", []byte("jpeg bytes"), minio.PutObjectOptions{ContentType: "image/jpeg", UserMetadata: map[string]string{"owner": "ann"}})
	put("c.txt", []byte("text"), minio.PutObjectOptions{})
	big := bytes.Repeat([]byte("0123456789abcdef"), (5<<20)/16+64) // two parts
	put("big.bin", big, minio.PutObjectOptions{PartSize: 5 << 20, ContentType: "application/octet-stream"})
	if _, err := c.CopyObject(ctx, minio.CopyDestOptions{Bucket: "images", Object: "b.jpg"}, minio.CopySrcOptions{Bucket: "images", Object: "a photo.jpg"}); err != nil {
		t.Fatalf("CopyObject: %v", err)
	}
	postUpload(t, c, "images", "d.txt", []byte("posted"))
	if err := c.RemoveObject(ctx, "images", "a photo.jpg", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	objs := make(chan minio.ObjectInfo, 1)
	objs <- minio.ObjectInfo{Key: "c.txt"}
	close(objs)
	for e := range c.RemoveObjects(ctx, "images", objs, minio.RemoveObjectsOptions{}) {
		t.Fatalf("RemoveObjects: %v", e.Err)
	}

	want := map[string][]event.Name{
		"images/a photo.jpg": {event.ObjectCreatedPut, event.ObjectRemovedDelete},
		"images/c.txt":       {event.ObjectCreatedPut, event.ObjectRemovedDelete},
		"images/big.bin":     {event.ObjectCreatedCompleteMultipartUpload},
		"images/b.jpg":       {event.ObjectCreatedCopy},
		"images/d.txt":       {event.ObjectCreatedPost},
	}
	waitFor(t, 30*time.Second, "7 webhook events", func() bool { return len(rcv.Bodies()) >= 7 })
	time.Sleep(100 * time.Millisecond)
	evs := parseBodies(t, rcv.Bodies())
	if len(evs) != 7 {
		t.Fatalf("webhook got %d events, want 7", len(evs))
	}
	perKey := map[string][]event.Name{}
	lastSeq := map[string]string{}
	for _, e := range evs {
		perKey[e.key] = append(perKey[e.key], e.name)
		checkRecord(t, e, etags)
		if s := e.rec.S3.Object.Sequencer; s <= lastSeq[e.key] {
			t.Fatalf("%s: sequencer %s after %s, want increasing per key", e.key, s, lastSeq[e.key])
		}
		lastSeq[e.key] = e.rec.S3.Object.Sequencer
	}
	if fmt.Sprint(perKey) != fmt.Sprint(want) {
		t.Fatalf("events per key:\n got %v\nwant %v", perKey, want)
	}

	// The Redis namespace holds the objects that exist, each with its last record.
	var fields map[string]string
	waitFor(t, 30*time.Second, "the Redis namespace", func() bool {
		conn, err := redigo.Dial("tcp", redisAddr)
		if err != nil {
			return false
		}
		defer conn.Close()
		fields, _ = redigo.StringMap(conn.Do("HGETALL", redisKey))
		return len(fields) == 3 && fields["images/a photo.jpg"] == ""
	})
	keys := make([]string, 0, len(fields))
	for k, v := range fields {
		keys = append(keys, k)
		var doc struct{ Records []event.Record }
		if err := json.Unmarshal([]byte(v), &doc); err != nil || len(doc.Records) != 1 || doc.Records[0].Key() != k {
			t.Fatalf("Redis field %s = %.200s: %v", k, v, err)
		}
	}
	sort.Strings(keys)
	if got := strings.Join(keys, ","); got != "images/b.jpg,images/big.bin,images/d.txt" {
		t.Fatalf("Redis namespace keys = %s, want images/b.jpg,images/big.bin,images/d.txt", got)
	}
}

// checkRecord checks the fields S3 clients read.
func checkRecord(t testing.TB, e received, etags map[string]string) {
	t.Helper()
	r := e.rec
	if r.EventName != e.name || r.Key() != e.key {
		t.Fatalf("record %s %s in a message for %s %s", r.EventName, r.Key(), e.name, e.key)
	}
	if r.EventVersion != "2.0" || r.EventSource != "minio:s3" || r.S3.SchemaVersion != "1.0" || r.S3.ConfigurationID == "" {
		t.Fatalf("%s: header fields %+v", e.key, r)
	}
	if r.S3.Bucket.Name != "images" || r.S3.Bucket.ARN != "arn:aws:s3:::images" {
		t.Fatalf("%s: bucket %+v", e.key, r.S3.Bucket)
	}
	if r.UserIdentity.PrincipalID != testAccessKey || r.RequestParameters["sourceIPAddress"] == "" || r.ResponseElements["x-amz-request-id"] == "" {
		t.Fatalf("%s: identity %+v, requestParameters %v, responseElements %v", e.key, r.UserIdentity, r.RequestParameters, r.ResponseElements)
	}
	if r.Source == nil || !strings.Contains(r.Source.UserAgent, "minio-go") {
		t.Fatalf("%s: source %+v, want minio-go's user agent", e.key, r.Source)
	}
	if _, err := event.ParseTime(r.EventTime); err != nil || time.Since(r.Time()) > 5*time.Minute {
		t.Fatalf("%s: eventTime %q: %v", e.key, r.EventTime, err)
	}
	if r.S3.Object.Sequencer == "" {
		t.Fatalf("%s: no sequencer", e.key)
	}
	if strings.Contains(r.S3.Object.Key, " ") {
		t.Fatalf("%s: key %q is not URL-encoded", e.key, r.S3.Object.Key)
	}
	if e.name.Op() != event.OpPut {
		return
	}
	if r.S3.Object.Size == 0 || r.S3.Object.ETag == "" {
		t.Fatalf("%s: size %d, eTag %q", e.key, r.S3.Object.Size, r.S3.Object.ETag)
	}
	if want, ok := etags[strings.TrimPrefix(e.key, "images/")]; ok && r.S3.Object.ETag != want {
		t.Fatalf("%s: eTag %q, want %q (what the client was given)", e.key, r.S3.Object.ETag, want)
	}
	if e.key == "images/a photo.jpg" {
		if r.S3.Object.ContentType != "image/jpeg" || r.S3.Object.UserMetadata["X-Amz-Meta-Owner"] != "ann" {
			t.Fatalf("%s: contentType %q, userMetadata %v", e.key, r.S3.Object.ContentType, r.S3.Object.UserMetadata)
		}
	}
}

// postUpload uploads data with a browser-style POST form, built from a
// presigned post policy.
func postUpload(t testing.TB, c *minio.Client, bucket, key string, data []byte) {
	t.Helper()
	p := minio.NewPostPolicy()
	p.SetBucket(bucket)
	p.SetKey(key)
	p.SetExpires(time.Now().Add(time.Hour))
	u, form, err := c.PresignedPostPolicy(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, v := range form {
		mw.WriteField(k, v)
	}
	fw, _ := mw.CreateFormFile("file", key)
	fw.Write(data)
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, u.String(), &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("User-Agent", "minio-go form upload")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode >= 300 {
		t.Fatalf("POST upload: %d %s", res.StatusCode, b)
	}
}

package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bucketrelay/bucketrelay/rules"
	"github.com/bucketrelay/bucketrelay/testkit/syncbuf"
)

// TestAPIRulesOverrideLogged: rules set through the API replace the
// file's rules for their bucket; a restart says so in the log, and GET
// …/notification tells where the rules come from.
func TestAPIRulesOverrideLogged(t *testing.T) {
	dir := t.TempDir()
	doc := fmt.Sprintf(`{"relay":{"dataDir":%q},"notify":{"webhook":{"1":{"enable":true,"endpoint":"http://127.0.0.1:1/"}}},
"buckets":{"images":[{"arn":"arn:minio:sqs::1:webhook","suffix":".jpg"},{"arn":"arn:minio:sqs::1:webhook","suffix":".png"}],"logs":[{"arn":"arn:minio:sqs::1:webhook"}]}}`, dir)
	c := parseConfig(t, doc)
	r, err := Open(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetBucketRules("images", []rules.Rule{{ARN: "arn:minio:sqs::1:webhook", Suffix: ".gif"}}); err != nil {
		t.Fatal(err)
	}
	r.Close(context.Background())

	logs := &syncbuf.Buffer{}
	c, _ = ParseConfig([]byte(doc))
	r, err = Open(c, Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	if l := logs.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "override the configuration file's rules") ||
		!strings.Contains(l, "bucket=images") || !strings.Contains(l, "fileRulesIgnored=2") || strings.Contains(l, "bucket=logs") {
		t.Fatalf("logs at start:\n%s\nwant one WARN that the API rules of images hide the file's 2", l)
	}
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	for _, c := range []struct{ bucket, source, overridden string }{
		{"images", RulesFromAPI, "2"}, {"logs", RulesFromFile, ""}, {"other", RulesFromFile, ""},
	} {
		resp, err := http.Get(srv.URL + "/v1/buckets/" + c.bucket + "/notification")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got, n := resp.Header.Get(RulesSourceHeader), resp.Header.Get(RulesOverriddenHeader); got != c.source || n != c.overridden {
			t.Errorf("%s: got source %q overriding %q, want %q overriding %q", c.bucket, got, n, c.source, c.overridden)
		}
	}
}

// TestBucketNamesAndDuplicatesChecked: a bucket name S3 would refuse, or
// a rule repeated, is refused by the API (400 naming it) and by the
// configuration file (the field named).
func TestBucketNamesAndDuplicatesChecked(t *testing.T) {
	c := parseConfig(t, fmt.Sprintf(`{"relay":{"dataDir":%q},"notify":{"webhook":{"1":{"enable":true,"endpoint":"http://127.0.0.1:1/"}}}}`, t.TempDir()))
	r := openRelay(t, c)
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	put := func(bucket, xml string) (int, string) {
		return apiBody(t, srv, http.MethodPut, "/v1/buckets/"+bucket+"/notification", xml)
	}
	rule := `<QueueConfiguration><Queue>arn:minio:sqs::1:webhook</Queue><Event>s3:ObjectCreated:*</Event></QueueConfiguration>`
	if code, body := put("bad%20bucket%21", `<NotificationConfiguration>`+rule+`</NotificationConfiguration>`); code != 400 || !strings.Contains(body, `invalid bucket name \"bad bucket!\"`) {
		t.Errorf("PUT for 'bad bucket!': got %d %s, want 400 naming the bucket", code, body)
	}
	if code, body := put("images", `<NotificationConfiguration>`+rule+rule+`</NotificationConfiguration>`); code != 400 || !strings.Contains(body, "duplicate rule: rule 1 (numbered from 0) repeats rule 0") {
		t.Errorf("PUT with a rule twice: got %d %s, want 400 naming the duplicate", code, body)
	}
	if code, body := put("images", `<NotificationConfiguration>`+rule+`</NotificationConfiguration>`); code != 200 {
		t.Errorf("PUT of one rule: got %d %s, want 200", code, body)
	}
	if err := r.SetBucketRules("ab", nil); err == nil || !strings.Contains(err.Error(), "3 to 63") {
		t.Errorf("SetBucketRules(ab): got %v, want the name refused", err)
	}

	for _, c := range []struct{ buckets, path string }{
		{`{"Images":[{"arn":"arn:minio:sqs::1:webhook"}]}`, "buckets.Images"},
		{`{"images":[{"arn":"arn:minio:sqs::1:webhook","events":["put"]},{"arn":"arn:minio:sqs::1:webhook","events":["put","delete"]}]}`, "buckets.images.1"},
	} {
		_, err := ParseConfig([]byte(`{"notify":{"webhook":{"1":{"enable":true,"endpoint":"http://x/"}}},"buckets":` + c.buckets + `}`))
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Path != c.path {
			t.Errorf("buckets %s: got %v, want an error at %s", c.buckets, err, c.path)
		}
	}
}

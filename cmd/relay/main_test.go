package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/rules"
)

func TestDemo(t *testing.T) {
	var out bytes.Buffer
	err := (&demoCommand{out: &out}).Run(context.Background(), []string{"--data", t.TempDir(), "--listen", "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{
		"SQS ARNs: arn:minio:sqs::1:webhook",
		"Successfully added arn:minio:sqs::1:webhook",
		`arn:minio:sqs::1:webhook   s3:ObjectCreated:*,s3:ObjectRemoved:*   Filter: suffix=".jpg"`,
		`{"accepted":3}`,
		`{"EventName":"s3:ObjectCreated:Put","Key":"images/myphoto.jpg","Records":[`,
		`{"EventName":"s3:ObjectRemoved:Delete","Key":"images/myphoto.jpg","Records":[`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, `"Key":"images/notes.txt"`) {
		t.Error("demo delivered notes.txt, which the .jpg rule filters out")
	}
}

func TestEventsCommands(t *testing.T) {
	cfg := parseConfig(t, `{"relay":{"dataDir":"`+t.TempDir()+`","listen":"127.0.0.1:0"},
"notify":{"webhook":{"1":{"enable":true,"endpoint":"http://127.0.0.1:1/"}}}}`)
	addr, _ := serveInProcess(t, cfg, io.Discard)
	server := "http://" + addr

	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := (&eventsCommand{out: &out}).Run(context.Background(), append(args, "--server", server))
		return out.String(), err
	}
	if _, err := run("add", "myminio/images", "arn:minio:sqs::1:webhook", "--events", "put", "--suffix", ".jpg"); err != nil {
		t.Fatal(err)
	}
	if _, err := run("add", "images", "arn:minio:sqs::1:webhook", "--events", "delete,get", "--prefix", "thumbs/"); err != nil {
		t.Fatal(err)
	}
	out, err := run("list", "images")
	if err != nil {
		t.Fatal(err)
	}
	want := "arn:minio:sqs::1:webhook   s3:ObjectCreated:*                       Filter: suffix=\".jpg\"      source: api\n" +
		"arn:minio:sqs::1:webhook   s3:ObjectRemoved:*,s3:ObjectAccessed:*   Filter: prefix=\"thumbs/\"   source: api\n"
	if out != want {
		t.Fatalf("list:\ngot  %q\nwant %q", out, want)
	}
	// The filters of mc event list: --suffix, --prefix, --events, ARN.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--suffix", ".jpg"}, "suffix=\".jpg\""},
		{[]string{"--prefix", "thumbs/"}, "prefix=\"thumbs/\""},
		{[]string{"--events", "get"}, "prefix=\"thumbs/\""},
		{[]string{"--events", "s3:ObjectCreated:Put"}, "suffix=\".jpg\""},
		{[]string{"arn:minio:sqs::1:webhook", "--suffix", ".jpg"}, "suffix=\".jpg\""},
	} {
		out, err := run(append([]string{"list", "images"}, c.args...)...)
		if err != nil || strings.Count(out, "\n") != 1 || !strings.Contains(out, c.want) {
			t.Errorf("list images %v: got %q (%v), want the one rule with %s", c.args, out, err, c.want)
		}
	}
	if out, err := run("list", "images", "--suffix", ".png"); err != nil || out != "" {
		t.Errorf("list images --suffix .png: got %q (%v), want nothing", out, err)
	}
	if out, err := run("list", "images", "arn:minio:sqs::2:webhook"); err != nil || out != "" {
		t.Errorf("list images ARN-2: got %q (%v), want nothing", out, err)
	}
	// The same rule again is refused, by the command and by the relay.
	if _, err := run("add", "images", "arn:minio:sqs::1:webhook", "--events", "put", "--suffix", ".jpg"); err == nil || !strings.Contains(err.Error(), "already has a rule for arn:minio:sqs::1:webhook") {
		t.Fatalf("adding the same rule twice: got %v, want it refused naming the rule", err)
	}
	put := []event.Name{event.ObjectCreatedAll}
	dup := rules.MarshalXML([]rules.Rule{{ARN: "arn:minio:sqs::1:webhook", Events: put, Suffix: ".jpg"}, {ARN: "arn:minio:sqs::1:webhook", Events: put, Suffix: ".jpg"}})
	req, _ := http.NewRequest(http.MethodPut, server+"/v1/buckets/images/notification", bytes.NewReader(dup))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), "duplicate rule: rule 1 (numbered from 0) repeats rule 0: arn:minio:sqs::1:webhook") {
		t.Fatalf("PUT of a configuration with a rule twice: got %d %s, want 400 naming the duplicate", resp.StatusCode, body)
	}
	if out, _ := run("list", "images"); strings.Count(out, "\n") != 2 {
		t.Fatalf("after the refused duplicates: %q, want the 2 rules", out)
	}
	// Bucket names are checked.
	if _, err := run("add", "bad bucket!", "arn:minio:sqs::1:webhook"); err == nil || !strings.Contains(err.Error(), `invalid bucket name "bad bucket!"`) {
		t.Fatalf("add to 'bad bucket!': got %v, want the name refused", err)
	}
	if _, err := run("add", "images", "arn:minio:sqs::7:webhook"); err == nil || !strings.Contains(err.Error(), "arn:minio:sqs::7:webhook") {
		t.Fatalf("add with an unknown ARN: err %v, want one naming it", err)
	}
	if _, err := run("add", "images", "arn:minio:sqs::1:webhook", "--events", "melt"); !errors.Is(err, errUsage) {
		t.Fatalf("add with a bad event: err %v, want a usage error", err)
	}
	if _, err := run("remove", "images", "arn:minio:sqs::1:webhook", "--events", "put"); err != nil {
		t.Fatal(err)
	}
	if out, _ := run("list", "images"); strings.Contains(out, "ObjectCreated") || !strings.Contains(out, "thumbs/") {
		t.Fatalf("after remove --events put: %q", out)
	}
	if _, err := run("remove", "images"); !errors.Is(err, errUsage) {
		t.Fatalf("remove without ARN or --force: err %v, want a usage error", err)
	}
	if _, err := run("remove", "images", "--force"); err != nil {
		t.Fatal(err)
	}
	if out, _ := run("list", "images"); out != "" {
		t.Fatalf("after remove --force: %q", out)
	}
}

func TestServeBadConfigExitCode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(path, []byte(`{"notify":{"webhook":{"1":{"enable":true}}}}`), 0o600)
	if code := run(context.Background(), []string{"serve", "--config", path}); code != 2 {
		t.Fatalf("serve with a bad config exited %d, want 2", code)
	}
	if code := run(context.Background(), []string{"bogus"}); code != 2 {
		t.Fatalf("unknown command exited %d, want 2", code)
	}
}

// TestEventsServerCredentialsNotPrinted: credentials in --server (or
// RELAY_ADDR) never appear in the error when the relay cannot be reached.
func TestEventsServerCredentialsNotPrinted(t *testing.T) {
	for _, server := range []string{"http://admin:S3rverTok@127.0.0.1:1", "http://S3rverTok@127.0.0.1:1/", "http://127.0.0.1:1/?token=S3rverTok"} {
		var out bytes.Buffer
		err := (&eventsCommand{out: &out}).Run(context.Background(), []string{"list", "images", "--server", server})
		if err == nil {
			t.Fatalf("%s: list against a closed port succeeded", server)
		}
		if strings.Contains(err.Error(), "S3rverTok") || strings.Contains(out.String(), "S3rverTok") {
			t.Errorf("%s: the credential is printed: %v %s", server, err, out.String())
		}
	}
}

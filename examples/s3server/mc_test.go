package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/testkit/webhookrecv"
)

// mcBinary builds mc with scripts/mc.sh (a test tool outside the relay's
// module) and returns its path.
func mcBinary(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(root, "scripts", "mc.sh"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/mc.sh: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// TestMC drives the example server with the MinIO client as the seed
// guide does: mc event add, mc event list (printing what the guide shows),
// an upload the rule selects and one it does not, and mc event remove.
func TestMC(t *testing.T) {
	mc := mcBinary(t)
	rcv := webhookrecv.New(t, "")
	dir := t.TempDir()
	endpoint := startServer(t, dir, writeConfig(t, dir, rcv.URL(), ""))
	env := append(os.Environ(),
		"MC_CONFIG_DIR="+filepath.Join(dir, "mc"),
		"MC_HOST_myminio=http://"+testAccessKey+":"+secretKey+"@"+strings.TrimPrefix(endpoint, "http://"),
		"MC_DISABLE_PAGER=1", "NO_COLOR=1")
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(mc, append([]string{"--no-color"}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("mc %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("mb", "myminio/images")
	run("mb", "myminio/docs")
	if out := run("event", "add", "myminio/images", webhookARN, "--event", "put", "--suffix", ".jpg"); !strings.Contains(out, "Successfully added "+webhookARN) {
		t.Fatalf("mc event add: %s", out)
	}
	// The seed guide's mc subscribed to put and delete by default; current
	// mc adds get too, so the guide's rule is asked for explicitly.
	run("event", "add", "myminio/docs", webhookARN, "--event", "put,delete", "--suffix", ".jpg")
	for _, c := range []struct{ bucket, want string }{
		{"images", webhookARN + ` s3:ObjectCreated:* Filter: suffix=".jpg"`},
		{"docs", webhookARN + ` s3:ObjectCreated:*,s3:ObjectRemoved:* Filter: suffix=".jpg"`},
	} {
		out := run("event", "list", "myminio/"+c.bucket)
		if got := strings.Join(strings.Fields(out), " "); got != c.want {
			t.Fatalf("mc event list myminio/%s:\n got %q\nwant %q", c.bucket, got, c.want)
		}
	}

	for _, name := range []string{"myphoto.jpg", "notes.png"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("bytes of "+name), 0o600); err != nil {
			t.Fatal(err)
		}
		run("cp", p, "myminio/images/")
	}
	waitFor(t, 20*time.Second, "the upload's event", func() bool { return len(rcv.Bodies()) >= 1 })
	time.Sleep(200 * time.Millisecond)
	evs := parseBodies(t, rcv.Bodies())
	if len(evs) != 1 || evs[0].key != "images/myphoto.jpg" || evs[0].name != event.ObjectCreatedPut {
		t.Fatalf("events %+v, want one s3:ObjectCreated:Put of images/myphoto.jpg (notes.png is filtered out)", evs)
	}
	if r := evs[0].rec; r.Source == nil || !strings.Contains(r.Source.UserAgent, "mc") || r.S3.Object.Size != int64(len("bytes of myphoto.jpg")) {
		t.Fatalf("record %+v, source %+v: want mc's user agent and the object's size", r.S3.Object, r.Source)
	}

	run("event", "remove", "myminio/images", "--force")
	if out := strings.TrimSpace(run("event", "list", "myminio/images")); out != "" {
		t.Fatalf("mc event list after mc event remove: %q, want nothing", out)
	}
}

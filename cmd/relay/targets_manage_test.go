package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/relay"
	"github.com/bucketrelay/bucketrelay/testkit/webhookrecv"
)

// targetsCLI runs relay targets ARGS --server server and returns its
// output, the exit code run would give and the message it would print.
func targetsCLI(t *testing.T, server string, args ...string) (out string, code int, msg string) {
	t.Helper()
	var buf bytes.Buffer
	err := (&targetsCommand{out: &buf}).Run(context.Background(), append(args, "--server", server))
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return buf.String(), 0, ""
	case errors.Is(err, errUsage):
		return buf.String(), 2, message(err)
	}
	return buf.String(), 1, message(err)
}

// sizesOf returns the numbers of the records a receiver got (postEvents
// numbers them), sorted.
func sizesOf(t *testing.T, rcv *webhookrecv.Receiver) []int {
	t.Helper()
	var out []int
	for _, b := range rcv.Bodies() {
		var m struct{ Records []event.Record }
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		for _, r := range m.Records {
			out = append(out, int(r.S3.Object.Size-1000))
		}
	}
	sort.Ints(out)
	return out
}

// TestTargetsManageCommands: relay targets add, update, remove with their
// outputs and exit codes, against a running relay and real receivers.
func TestTargetsManageCommands(t *testing.T) {
	rcv1, rcv2, rcv3 := newTestReceiver(t), newTestReceiver(t), newTestReceiver(t)
	server := serveOperate(t, rcv1.URL())
	const arn2 = "arn:minio:sqs::2:webhook"
	postEvents(t, server, 1, 2)

	out, code, msg := targetsCLI(t, server, "add", arn2, "--kind", "webhook", "--param", "endpoint="+rcv2.URL(), "--param", "timeout=5s")
	if code != 0 || !strings.Contains(out, "Added "+arn2) || !strings.Contains(out, "relay events add BUCKET "+arn2) {
		t.Fatalf("add: exit %d %s\n%s", code, msg, out)
	}
	if err := (&eventsCommand{}).Run(context.Background(), []string{"add", "images", arn2, "--events", "put", "--server", server}); err != nil {
		t.Fatal(err)
	}
	postEvents(t, server, 3, 2)
	eventually(t, "2 events at the added target", func() bool { return len(sizesOf(t, rcv2)) == 2 })
	if got := fmt.Sprint(sizesOf(t, rcv2)); got != "[3 4]" {
		t.Fatalf("the added target got %s, want [3 4]: only what was logged after it", got)
	}

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"add", arn2, "--param", "endpoint=" + rcv2.URL()}, 1, "added already"},
		{[]string{"add", "arn:minio:sqs::3:webhook", "--param", "endpoint=ftp://x/"}, 2, "notify.webhook.3.endpoint: must be an http:// or https:// URL (HTTP 400)"},
		{[]string{"add", "arn:minio:sqs::3:webhook", "--param", "endpoint"}, 2, `--param "endpoint": want key=value`},
		{[]string{"add", "arn:minio:sqs::3:webhook", "--kind", "redis", "--param", "endpoint=http://x/"}, 2, "does not match"},
		{[]string{"add", "arn:minio:sqs::3:webhook"}, 2, "--param key=value"},
		{[]string{"add", "arn:minio:sqs::3:nosuch", "--param", "a=b"}, 2, "notify.nosuch: unknown target kind"},
		{[]string{"add", "not-an-arn", "--param", "a=b"}, 2, "arn"},
		{[]string{"rewind", "arn:minio:sqs::3:webhook", "--from-start", "--to-seq", "3"}, 2, "one of --from-start"},
		{[]string{"update", "arn:minio:sqs::9:webhook", "--param", "endpoint=http://x/"}, 1, "no such target"},
		{[]string{"remove", "arn:minio:sqs::9:webhook"}, 1, "no such target"},
		{[]string{"remove", arn2}, 1, "images"},
		{[]string{"remove", arn2, "--export", "x.jsonl"}, 2, "--export needs --force"},
		{[]string{"remove", hookARN}, 1, "defined in the configuration file"},
		{[]string{"frobnicate", arn2}, 2, "unknown targets subcommand"},
		{[]string{"add", arn2, "--bogus"}, 2, "flag provided but not defined"},
	} {
		_, code, msg := targetsCLI(t, server, c.args...)
		if code != c.code || !strings.Contains(msg, c.want) {
			t.Errorf("targets %s: exit %d %q, want %d naming %q", strings.Join(c.args, " "), code, msg, c.code, c.want)
		}
	}

	// update --file with the entry alone: the endpoint moves to rcv3.
	f := filepath.Join(t.TempDir(), "target.json")
	os.WriteFile(f, []byte(fmt.Sprintf(`{"endpoint": %q}`, rcv3.URL())), 0o600)
	out, code, msg = targetsCLI(t, server, "update", arn2, "--file", f)
	if code != 0 || out != "Updated "+arn2+" (kept in targets.json): delivery goes on from its cursor.\n" {
		t.Fatalf("update: exit %d %s\n%s", code, msg, out)
	}
	out, code, _ = targetsCLI(t, server, "pause", arn2)
	if code != 0 {
		t.Fatalf("pause: %s", out)
	}
	postEvents(t, server, 5, 3)
	if err := (&eventsCommand{}).Run(context.Background(), []string{"remove", "images", arn2, "--server", server}); err != nil {
		t.Fatal(err)
	}
	_, code, msg = targetsCLI(t, server, "remove", arn2)
	if code != 1 || !strings.Contains(msg, "has 3 pending events") {
		t.Fatalf("remove with pending events: exit %d %q, want 1 naming 3", code, msg)
	}
	local := filepath.Join(t.TempDir(), "released.jsonl")
	out, code, msg = targetsCLI(t, server, "remove", arn2, "--force", "--export", local)
	if code != 0 || !strings.HasPrefix(out, "Removed "+arn2+": 3 pending events exported to "+local) {
		t.Fatalf("remove --force --export: exit %d %s\n%s", code, msg, out)
	}
	b, err := os.ReadFile(local)
	if err != nil || bytes.Count(b, []byte("\n")) != 3 || !bytes.Contains(b, []byte(`"key":"images/obj-5.jpg"`)) {
		t.Fatalf("the local export: %v\n%s", err, b)
	}
	if len(rcv3.Bodies()) != 0 {
		t.Fatalf("the paused target delivered %d events", len(rcv3.Bodies()))
	}
	out, code, _ = targetsCLI(t, server, "--json")
	if code != 0 || strings.Contains(out, arn2) || !strings.Contains(out, `"source":"file"`) {
		t.Fatalf("targets after removal:\n%s", out)
	}
}

// TestServeSIGHUP runs the real binary: SIGHUP applies a changed file (a
// target added with its rule, and its events delivered), and refuses an
// invalid one, logging its error, with the running configuration kept.
func TestServeSIGHUP(t *testing.T) {
	bin := relayBinary(t)
	rcv1, rcv2 := newTestReceiver(t), newTestReceiver(t)
	dir := t.TempDir()
	addr := freePort(t)
	cfg := filepath.Join(dir, "relay.json")
	settings := fmt.Sprintf(`"relay": {"dataDir": %q, "listen": %q, "minBackoff": "10ms", "maxBackoff": "200ms"}`, filepath.Join(dir, "data"), addr)
	write := func(doc string) {
		// Replaced by rename, as editors and config managers do.
		tmp := cfg + ".new"
		if err := os.WriteFile(tmp, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, cfg); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf(`{%s,
  "notify": {"webhook": {"1": {"enable": true, "endpoint": %q}}},
  "buckets": {"images": [{"arn": "arn:minio:sqs::1:webhook", "events": ["put"]}]}}`, settings, rcv1.URL()))
	c := startRelay(t, bin, cfg, addr)
	defer func() {
		c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(20 * time.Second):
			c.kill9()
		}
	}()
	server := "http://" + addr
	logText := func() string { b, _ := os.ReadFile(cfg + ".log"); return string(b) }
	arns := func() []string {
		resp, err := http.Get(server + "/v1/targets")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc struct{ Targets []relay.TargetStatus }
		json.NewDecoder(resp.Body).Decode(&doc)
		var out []string
		for _, s := range doc.Targets {
			out = append(out, s.ARN)
		}
		return out
	}
	postEvents(t, server, 1, 1)
	eventually(t, "the first event", func() bool { return len(rcv1.Bodies()) == 1 })

	write(fmt.Sprintf(`{%s,
  "notify": {"webhook": {"1": {"enable": true, "endpoint": %q}, "2": {"enable": true, "endpoint": %q}}},
  "buckets": {"images": [{"arn": "arn:minio:sqs::1:webhook", "events": ["put"]}, {"arn": "arn:minio:sqs::2:webhook", "events": ["put"]}]}}`, settings, rcv1.URL(), rcv2.URL()))
	c.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, "the reload", func() bool { return strings.Contains(logText(), "reload: done") })
	if got := fmt.Sprint(arns()); got != "[arn:minio:sqs::1:webhook arn:minio:sqs::2:webhook]" {
		t.Fatalf("after SIGHUP the targets are %s", got)
	}
	if l := logText(); !strings.Contains(l, `msg="reload: target added" target=arn:minio:sqs::2:webhook`) || !strings.Contains(l, `msg="reload: the file's rules of a bucket changed" bucket=images`) {
		t.Fatalf("the log does not name each change:\n%s", l)
	}
	postEvents(t, server, 2, 1)
	eventually(t, "the event at the added target", func() bool { return len(rcv2.Bodies()) == 1 })
	if got := fmt.Sprint(sizesOf(t, rcv2)); got != "[2]" {
		t.Fatalf("the target added by SIGHUP got %s, want [2]", got)
	}

	// An invalid file: refused with its error; both targets keep running.
	write(fmt.Sprintf(`{%s,
  "notify": {"webhook": {"1": {"enable": true, "endpoint": "ftp://nowhere/"}}}}`, settings))
	c.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, "the refusal", func() bool { return strings.Contains(logText(), "reload: the configuration file is refused") })
	if l := logText(); !strings.Contains(l, "notify.webhook.1.endpoint: must be an http:// or https:// URL") {
		t.Fatalf("the refusal does not name the field:\n%s", l)
	}
	if got := len(arns()); got != 2 {
		t.Fatalf("after an invalid file %d targets run, want 2", got)
	}
	postEvents(t, server, 3, 1)
	eventually(t, "both targets still delivering", func() bool { return len(rcv1.Bodies()) == 3 && len(rcv2.Bodies()) == 2 })
	select {
	case err := <-c.done:
		t.Fatalf("the relay exited: %v\n%s", err, logText())
	case <-time.After(10 * time.Millisecond):
	}
}

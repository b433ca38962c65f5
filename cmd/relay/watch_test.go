package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/testkit/syncbuf"
)

// apiCall makes one request to the relay with the token and returns the
// body.
func apiCall(t *testing.T, method, url, token, body string) string {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s %s: %s %s", method, url, resp.Status, b)
	}
	return string(b)
}

// TestWatchCommand: `relay watch` against a running relay prints matching
// events as mc watch does (or as JSON), ends with exit 0 on interrupt, and
// says so when the relay ends the stream.
func TestWatchCommand(t *testing.T) {
	const token = "watch-token"
	cfg := parseConfig(t, `{"relay":{"dataDir":"`+t.TempDir()+`","listen":"127.0.0.1:0","accessToken":"`+token+`"},
"notify":{"webhook":{"1":{"enable":true,"endpoint":"http://127.0.0.1:1/"}}}}`)
	addr, stopServer := serveInProcess(t, cfg, io.Discard)
	server := "http://" + addr

	var out, outJSON syncbuf.Buffer
	wctx, interrupt := context.WithCancel(context.Background())
	defer interrupt()
	done := make(chan error, 1)
	go func() {
		done <- (&watchCommand{out: &out}).Run(wctx, []string{"myminio/images", "--events", "put", "--suffix", ".jpg", "--server", server, "--token", token})
	}()
	doneJSON := make(chan error, 1)
	go func() {
		doneJSON <- (&watchCommand{out: &outJSON}).Run(context.Background(), []string{"images", "--json", "--server", server, "--token", token})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(apiCall(t, "GET", server+"/metrics", token, ""), "relay_watchers 2\n") {
		if time.Now().After(deadline) {
			t.Fatal("the two watches did not connect in 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	recs := []event.Record{
		targettest.Record("images", "a/my+photo.jpg", event.ObjectCreatedPut, 24),
		targettest.Record("images", "notes.txt", event.ObjectCreatedPut, 1),
		targettest.Record("images", "a/my+photo.jpg", event.ObjectRemovedDelete, 2),
		targettest.Record("images", "big.jpg", event.ObjectCreatedCompleteMultipartUpload, 3355443-1000),
	}
	recs[2].S3.Object.Size = 0 // deletes carry no size
	body, _ := json.Marshal(map[string]any{"Records": recs})
	apiCall(t, "POST", server+"/v1/events", token, string(body))

	want := "[2026-11-25T12:00:00Z] 1.0KiB s3:ObjectCreated:Put images/a/my photo.jpg\n" +
		"[2026-11-25T12:00:03Z] 3.2MiB s3:ObjectCreated:CompleteMultipartUpload images/big.jpg\n"
	deadline = time.Now().Add(10 * time.Second)
	for out.String() != want || strings.Count(outJSON.String(), "\n") != 4 {
		if time.Now().After(deadline) {
			t.Fatalf("watch printed:\n%s\nwant:\n%s\n--json printed:\n%s", out.String(), want, outJSON.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i, line := range strings.Split(strings.TrimSpace(outJSON.String()), "\n") {
		var rec event.Record
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.S3.Object.Key != recs[i].S3.Object.Key || rec.EventName != recs[i].EventName {
			t.Fatalf("--json line %d = %q, want record %d", i, line, i)
		}
	}

	interrupt()
	if err := <-done; err != nil {
		t.Fatalf("watch after an interrupt: %v, want nil (exit 0)", err)
	}
	stopServer()
	select {
	case err := <-doneJSON:
		if err == nil || !strings.Contains(err.Error(), "the relay ended the watch") {
			t.Fatalf("watch when the relay stops: %v, want an error saying the relay ended it", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("watch did not end when the relay stopped")
	}
}

// TestWatchCommandErrors: bad input is a usage error before any request;
// the relay's refusal is reported with its reason.
func TestWatchCommandErrors(t *testing.T) {
	cfg := parseConfig(t, `{"relay":{"dataDir":"`+t.TempDir()+`","listen":"127.0.0.1:0","accessToken":"right"},
"notify":{"webhook":{"1":{"enable":true,"endpoint":"http://127.0.0.1:1/"}}}}`)
	addr, _ := serveInProcess(t, cfg, io.Discard)
	server := "http://" + addr

	w := func(args ...string) error {
		return (&watchCommand{out: io.Discard}).Run(context.Background(), append(args, "--server", server))
	}
	if err := w("images", "--events", "melt"); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "melt") {
		t.Fatalf("bad event: %v, want a usage error naming it", err)
	}
	if err := w(); err == nil {
		t.Fatal("no bucket: want a usage error")
	}
	if err := w("images", "--token", "tok-9f3e"); err == nil || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "tok-9f3e") {
		t.Fatalf("wrong token: %v, want the 401 without the token", err)
	}
	if code := run(context.Background(), []string{"watch"}); code != 2 {
		t.Fatalf("relay watch without a bucket exited %d, want 2", code)
	}
}

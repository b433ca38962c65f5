package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/relay"
	"github.com/bucketrelay/bucketrelay/testkit/syncbuf"
	"github.com/bucketrelay/bucketrelay/testkit/walfault"
	"github.com/bucketrelay/bucketrelay/wal"
)

// The test binary doubles as the relay for tests that need their own
// process (a file size limit, an exit code): with RELAY_TEST_SERVE set it
// runs `relay serve` on that config and exits.
func init() {
	cfg := os.Getenv("RELAY_TEST_SERVE")
	if cfg == "" {
		return
	}
	if n, err := strconv.ParseUint(os.Getenv("RELAY_TEST_FSIZE"), 10, 64); err == nil {
		// On SIGUSR1 (once the relay runs: opening grows the file) writes
		// past n bytes of any file fail with EFBIG (Go ignores SIGXFSZ): a
		// write error of the log, like EIO.
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGUSR1)
		go func() {
			<-c
			if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
				fmt.Fprintln(os.Stderr, "setrlimit:", err)
				os.Exit(99)
			}
			fmt.Fprintln(os.Stderr, "file size limited")
		}()
	}
	os.Exit(run(context.Background(), []string{"serve", "--config", cfg}))
}

// serveChild runs the test binary as `relay serve` with the config doc; it
// returns the process, its combined output and the API's address.
func serveChild(t *testing.T, doc func(dataDir, listen string) string, env ...string) (*exec.Cmd, *syncbuf.Buffer, string) {
	t.Helper()
	dir := t.TempDir()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	cfg := filepath.Join(dir, "relay.json")
	os.WriteFile(cfg, []byte(doc(filepath.Join(dir, "data"), addr)), 0o600)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), "RELAY_TEST_SERVE="+cfg), env...)
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, out, addr
}

func waitExit(t *testing.T, cmd *exec.Cmd, within time.Duration) int {
	t.Helper()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
		return cmd.ProcessState.ExitCode()
	case <-time.After(within):
		t.Fatalf("relay still running after %s", within)
		return -1
	}
}

func recordsBody(from, n int) string {
	parts := make([]string, n)
	for i := range parts {
		b, _ := json.Marshal(targettest.Record("images", fmt.Sprintf("obj-%d.jpg", from+i), event.ObjectCreatedPut, from+i))
		parts[i] = string(b)
	}
	return `{"Records":[` + strings.Join(parts, ",") + `]}`
}

// TestServeFailStop: when a write to the log fails (EFBIG past
// RLIMIT_FSIZE, a write error as EIO is), the POST that met it is answered
// 503, not 200, and `relay serve` exits 1 with an ERROR line naming the
// file and the error.
func TestServeFailStop(t *testing.T) {
	cmd, out, addr := serveChild(t, func(data, listen string) string {
		return fmt.Sprintf(`{"relay":{"dataDir":%q,"listen":%q},
"notify":{"webhook":{"1":{"enable":true,"endpoint":"http://127.0.0.1:1/"}}},
"buckets":{"images":[{"arn":"arn:minio:sqs::1:webhook","events":["put"]}]}}`, data, listen)
	}, "RELAY_TEST_FSIZE=65536")
	base := "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("readyz at start: %d", resp.StatusCode)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("relay did not start:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGUSR1)
	for !strings.Contains(out.String(), "file size limited") {
		if time.Now().After(deadline) {
			t.Fatalf("the child did not limit its file size:\n%s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := http.Post(base+"/v1/events", "application/json", strings.NewReader(recordsBody(0, 3000)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || strings.Contains(string(b), "wal.db") {
		t.Fatalf("POST when the log cannot be written: %d %s, want 503 naming no file", resp.StatusCode, b)
	}
	if code := waitExit(t, cmd, 20*time.Second); code != 1 {
		t.Fatalf("relay exited %d, want 1\n%s", code, out)
	}
	var found bool
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		l := sc.Text()
		if strings.Contains(l, "level=ERROR") && strings.Contains(l, "wal.db") && strings.Contains(l, "file too large") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no ERROR line naming the file and the error:\n%s", out)
	}
}

// TestServeDamagedLogExitsOne: a log bbolt cannot open is a runtime
// failure (exit 1), never the usage code 2; a bad config is 2 and names
// the file.
func TestServeDamagedLogExitsOne(t *testing.T) {
	doc := func(data, listen string) string {
		os.MkdirAll(data, 0o700)
		// A bbolt file whose pages are all garbage.
		garbage := bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 8192)
		os.WriteFile(filepath.Join(data, "wal.db"), garbage, 0o600)
		return fmt.Sprintf(`{"relay":{"dataDir":%q,"listen":%q}}`, data, listen)
	}
	cmd, out, _ := serveChild(t, doc)
	if code := waitExit(t, cmd, 20*time.Second); code != 1 {
		t.Fatalf("relay on a damaged log exited %d, want 1\n%s", code, out)
	}

	// A real log with one damaged page among sound ones: bbolt would panic
	// at open in a goroutine no recover reaches; the relay names the damage
	// and exits 1.
	pages := func(data, listen string) string {
		os.MkdirAll(data, 0o700)
		path := filepath.Join(data, "wal.db")
		l, err := wal.Open(path, wal.Options{})
		if err != nil {
			t.Fatal(err)
		}
		l.Register("arn:minio:sqs::1:webhook")
		for i := 0; i < 300; i++ {
			e := &wal.Entry{Targets: []string{"arn:minio:sqs::1:webhook"}, Key: fmt.Sprintf("images/%d.jpg", i), Name: "s3:ObjectCreated:Put",
				Data: []byte(fmt.Sprintf(`{"i":%d,"pad":%q}`, i, strings.Repeat("x", 300)))}
			if _, err := l.Append(context.Background(), e); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		walfault.DamageFramePage(t, path, 151)
		return fmt.Sprintf(`{"relay":{"dataDir":%q,"listen":%q},"notify":{"webhook":{"1":{"enable":true,"endpoint":"http://127.0.0.1:1/"}}}}`, data, listen)
	}
	cmd, out, _ = serveChild(t, pages)
	if code := waitExit(t, cmd, 20*time.Second); code != 1 || !strings.Contains(out.String(), "cannot read the file's pages") || !strings.Contains(out.String(), "walinspect salvage") {
		t.Fatalf("relay on a log with a damaged page exited %d, want 1 naming the damage\n%s", code, out)
	}

	path := filepath.Join(t.TempDir(), "null.json")
	os.WriteFile(path, []byte("null\n"), 0o600)
	if code := run(context.Background(), []string{"serve", "--config", path}); code != 2 {
		t.Fatalf("serve with a null config exited %d, want 2", code)
	}
	if _, err := relay.LoadConfig(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("LoadConfig(null) = %v, want an error naming %s", err, path)
	}
}

// TestServeTimeouts: the server serve builds cuts off a slow-loris client,
// one that trickles its headers and one that trickles a body, instead of
// holding the connection (and up to relay.maxRequestBytes) forever.
func TestServeTimeouts(t *testing.T) {
	defer func(h time.Duration, r int64) { headerTimeout, minBodyRate = h, r }(headerTimeout, minBodyRate)
	headerTimeout, minBodyRate = 300*time.Millisecond, 64<<10
	cfg := parseConfig(t, `{"relay":{"dataDir":"`+t.TempDir()+`","listen":"127.0.0.1:0","maxRequestBytes":32768}}`)
	srv := newServer(cfg, http.NotFoundHandler())
	if srv.ReadHeaderTimeout == 0 || srv.ReadTimeout == 0 || srv.WriteTimeout == 0 || srv.IdleTimeout == 0 {
		t.Fatalf("server timeouts: %+v", srv)
	}
	addr, _ := serveInProcess(t, cfg, io.Discard)

	// trickle writes a byte every 50ms until the server closes the
	// connection; it returns how long that took.
	trickle := func(head, body string) time.Duration {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		if _, err := io.WriteString(c, head); err != nil {
			t.Fatal(err)
		}
		closed := make(chan struct{})
		go func() { io.Copy(io.Discard, c); close(closed) }()
		for i := 0; time.Since(start) < 10*time.Second; i++ {
			select {
			case <-closed:
				return time.Since(start)
			case <-time.After(50 * time.Millisecond):
			}
			c.Write([]byte{body[i%len(body)]})
		}
		return time.Since(start)
	}
	if d := trickle("POST /v1/events HTTP/1.1\r\nHost: x\r\n", "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"); d > 3*time.Second {
		t.Errorf("a client trickling headers held the connection %s, want about %s", d, headerTimeout)
	}
	if d := trickle("POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 30000\r\n\r\n", `{"Records":[`); d > 3*time.Second {
		t.Errorf("a client trickling a body held the connection %s, want about %s", d, srv.ReadTimeout)
	}
}

// TestEventsHideToken: a token in --server's URL is used and never
// printed, in errors or in usage (which once printed $RELAY_TOKEN as a
// flag default); errors say "relay:" once.
func TestEventsHideToken(t *testing.T) {
	const secret = "S3cretT0ken"
	cfg := parseConfig(t, `{"relay":{"dataDir":"`+t.TempDir()+`","listen":"127.0.0.1:0","accessToken":"`+secret+`"},
"notify":{"webhook":{"1":{"enable":true,"endpoint":"http://127.0.0.1:1/"}}}}`)
	addr, _ := serveInProcess(t, cfg, io.Discard)

	events := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := (&eventsCommand{out: &out, errOut: &errOut}).Run(context.Background(), args)
		return out.String() + errOut.String(), err
	}
	for i, server := range []string{"http://user:" + secret + "@" + addr, "http://" + secret + "@" + addr + "/"} {
		// A suffix of its own each time: the same rule twice is refused.
		if _, err := events("add", "images", "arn:minio:sqs::1:webhook", "--suffix", fmt.Sprintf(".%d", i), "--server", server); err != nil {
			t.Fatalf("add with the token in the URL: %v", err)
		}
		if out, err := events("list", "images", "--server", server); err != nil || !strings.Contains(out, "arn:minio:sqs::1:webhook") {
			t.Fatalf("list: %q %v", out, err)
		}
	}
	for _, c := range [][]string{
		{"add", "images", "arn:minio:sqs::7:webhook", "--server", "http://user:" + secret + "@" + addr},
		{"list", "images", "--server", "http://user:" + secret + "@127.0.0.1:1"},
		{"list", "images", "--server", "http://" + secret + "@127.0.0.1:1"},
		{"list", "images", "--server", "http://user:" + secret + "@[::1"},
		{"list", "images", "--server", "http://user:" + secret + "@" + addr + "/?x=" + secret, "--token", "wrong"},
	} {
		out, err := events(c...)
		if err == nil {
			t.Fatalf("events %v succeeded", c)
		}
		msg := "relay: " + message(err)
		if strings.Contains(msg+out, secret) {
			t.Errorf("events %v printed the token: %s %s", c, msg, out)
		}
		if strings.Count(msg, "relay:") != 1 || strings.Contains(msg, "relay answered") {
			t.Errorf("events %v: %q says relay: more than once", c, msg)
		}
	}
	t.Setenv("RELAY_TOKEN", secret)
	t.Setenv("RELAY_ADDR", "http://u:"+secret+"@"+addr)
	out, err := events("-h")
	if strings.Contains(out, secret) || !strings.Contains(out, "Usage") {
		t.Errorf("events -h (%v) printed the token or no usage: %s", err, out)
	}
	if out, err := events("list", "images"); err != nil || !strings.Contains(out, "webhook") {
		t.Errorf("list with RELAY_ADDR and RELAY_TOKEN: %q %v", out, err)
	}
}

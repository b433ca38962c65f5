package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/testkit/webhookrecv"
)

func freePort(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type child struct {
	cmd  *exec.Cmd
	done chan error
}

func startRelay(t testing.TB, bin, cfg, addr string) *child {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--config", cfg)
	logf, _ := os.OpenFile(cfg+".log", os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, done: make(chan error, 1)}
	go func() { c.done <- cmd.Wait(); logf.Close() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			return c
		}
		select {
		case err := <-c.done:
			b, _ := os.ReadFile(cfg + ".log")
			t.Fatalf("relay exited at start: %v\n%s", err, b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("relay did not answer /healthz in 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *child) kill9() {
	c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
}

// TestCrash runs the real relay binary, kills it with SIGKILL at random
// moments during ingest and delivery, restarts it, and checks that every
// event it acknowledged is delivered at least once. SIGKILL keeps the page
// cache, so this cannot see a missing fsync: TestPowerCut cuts power.
func TestCrash(t *testing.T) { crashRounds(t, "") }

// TestCrashInFlight is TestCrash with 4 batches of 20 events in flight, so
// that kills land while the pipeline slides from one window into the next:
// the cursor must never have passed an event the receiver did not take.
func TestCrashInFlight(t *testing.T) { crashRounds(t, `"inflight": 4, "maxBatch": 20, `) }

// crashRounds runs TestCrash with target, JSON members, added to the
// webhook target's configuration.
func crashRounds(t *testing.T, target string) {
	bin := relayBinary(t)
	var mu sync.Mutex
	seen := map[int]int{}
	rcv := webhookrecv.New(t, "")
	rcv.OnBody = func(b []byte) {
		var m struct{ Records []event.Record }
		if json.Unmarshal(b, &m) == nil && len(m.Records) == 1 {
			mu.Lock()
			seen[int(m.Records[0].S3.Object.Size-1000)]++
			mu.Unlock()
		}
	}
	dir := t.TempDir()
	addr := freePort(t)
	cfg := filepath.Join(dir, "relay.json")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`{
  "relay": {"dataDir": %q, "listen": %q, "minBackoff": "10ms", "maxBackoff": "200ms"},
  "notify": {"webhook": {"1": {%s"enable": true, "endpoint": %q}}},
  "buckets": {"images": [{"arn": "arn:minio:sqs::1:webhook", "events": ["put"]}]}
}`, filepath.Join(dir, "data"), addr, target, rcv.URL())), 0o600)

	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	var ackMu sync.Mutex
	var acked []int
	next := 0
	client := &http.Client{Timeout: 5 * time.Second}
	rounds := 8
	for round := 0; round < rounds; round++ {
		c := startRelay(t, bin, cfg, addr)
		// Publishers post until the kill; what was answered 200 is acknowledged.
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for p := 0; p < 4; p++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					ackMu.Lock()
					from := next
					next += 20
					ackMu.Unlock()
					var parts []string
					for i := from; i < from+20; i++ {
						b, _ := json.Marshal(targettest.Record("images", fmt.Sprintf("k%d.jpg", i%50), event.ObjectCreatedPut, i))
						parts = append(parts, string(b))
					}
					resp, err := client.Post("http://"+addr+"/v1/events", "application/json", strings.NewReader(`{"Records":[`+strings.Join(parts, ",")+`]}`))
					if err != nil {
						continue // killed mid-request: not acknowledged
					}
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						ackMu.Lock()
						for i := from; i < from+20; i++ {
							acked = append(acked, i)
						}
						ackMu.Unlock()
					}
				}
			}()
		}
		time.Sleep(time.Duration(50+rng.Intn(400)) * time.Millisecond)
		c.kill9()
		cancel()
		wg.Wait()
	}

	// A last run drains everything, then stops cleanly on SIGTERM.
	c := startRelay(t, bin, cfg, addr)
	deadline := time.Now().Add(60 * time.Second)
	var missing []int
	for {
		missing = missing[:0]
		mu.Lock()
		for _, i := range acked {
			if seen[i] == 0 {
				missing = append(missing, i)
			}
		}
		mu.Unlock()
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.done:
		if err != nil {
			t.Errorf("relay exited %v on SIGTERM, want 0", err)
		}
	case <-time.After(20 * time.Second):
		c.kill9()
		t.Error("relay did not stop in 20s after SIGTERM")
	}
	if len(missing) > 0 {
		b, _ := os.ReadFile(cfg + ".log")
		t.Fatalf("%d of %d acknowledged events never delivered after %d kills, first %v\nrelay log tail:\n%s", len(missing), len(acked), rounds, missing[:min(10, len(missing))], tail(b, 3000))
	}
	dups := 0
	mu.Lock()
	for _, n := range seen {
		if n > 1 {
			dups += n - 1
		}
	}
	mu.Unlock()
	if len(acked) < 200 {
		t.Fatalf("only %d events acknowledged over %d rounds: the test did not exercise ingest", len(acked), rounds)
	}
	t.Logf("crash test: %d kills, %d events acknowledged, all delivered; %d duplicates (at-least-once)", rounds, len(acked), dups)
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

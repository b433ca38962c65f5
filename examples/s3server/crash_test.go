package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/notification"

	"github.com/bucketrelay/bucketrelay/testkit/webhookrecv"
)

// buildServer builds the example server's binary into dir.
func buildServer(t testing.TB, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "s3server")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startProcess runs the binary and returns it and its S3 endpoint.
func startProcess(t testing.TB, bin string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "S3 API: "); ok {
			go func() {
				for sc.Scan() {
				}
			}()
			return cmd, u
		}
	}
	cmd.Wait()
	t.Fatalf("s3server exited before listening: %s", stderr.String())
	return nil, ""
}

// TestKill9: the server is killed with SIGKILL during a stream of uploads
// from four clients. After a restart, every upload a client saw succeed
// has its event delivered.
func TestKill9(t *testing.T) {
	dir := t.TempDir()
	bin := buildServer(t, dir)
	rcv := webhookrecv.New(t, "")
	args := []string{"-addr", "127.0.0.1:0", "-data", filepath.Join(dir, "s3"), "-config", writeConfig(t, dir, rcv.URL(), "")}
	cmd, endpoint := startProcess(t, bin, args...)
	c := newClient(t, endpoint)
	ctx := context.Background()
	if err := c.MakeBucket(ctx, "images", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := notification.Configuration{}
	q := notification.NewConfig(notification.NewArn("minio", "sqs", "", "1", "webhook"))
	q.AddEvents(notification.ObjectCreatedAll)
	cfg.AddQueue(q)
	if err := c.SetBucketNotification(ctx, "images", cfg); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				key := fmt.Sprintf("w%d/%05d.jpg", w, i)
				data := []byte(key)
				if _, err := c.PutObject(ctx, "images", key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{DisableMultipart: true}); err != nil {
					return // the server is gone
				}
				mu.Lock()
				acked["images/"+key] = true
				mu.Unlock()
			}
		}()
	}
	waitFor(t, 60*time.Second, "100 acknowledged uploads", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 100
	})
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	wg.Wait()
	mu.Lock()
	n := len(acked)
	mu.Unlock()
	t.Logf("%d uploads acknowledged before kill -9", n)

	startProcess(t, bin, args...)
	missing := func() []string {
		got := map[string]bool{}
		for _, e := range parseBodies(t, rcv.Bodies()) {
			got[e.key] = true
		}
		var out []string
		for k := range acked {
			if !got[k] {
				out = append(out, k)
			}
		}
		return out
	}
	deadline := time.Now().Add(60 * time.Second)
	for m := missing(); len(m) > 0; m = missing() {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged uploads have no event after the restart, such as %s", len(m), n, m[0])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestMain(m *testing.M) {
	// minio-go retries failed requests for a while; the kill test wants
	// the first failure.
	minio.MaxRetry = 1
	os.Exit(m.Run())
}

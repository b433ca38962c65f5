package main

// The systems scenario "peers" compares: the relay daemon, MinIO's own
// notification queue (defaults, and MINIO_API_SYNC_EVENTS=on), MinIO with
// the relay as its webhook, and Benthos. Each is a real process started
// from a binary: the relay from this module, the others from
// scripts/peers.sh's scratch directory.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/notification"

	"github.com/bucketrelay/bucketrelay/bench/harness"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
)

// peersBucket is the bucket every system's events come from.
const peersBucket = "peers"

// peerKey is the object key of event id: the receiver finds "obj-" and
// eight digits in any system's body, URL-encoded or not.
func peerKey(id int) string { return fmt.Sprintf("in/obj-%08d", id) }

// peerSystem is one system under test. Publish sends one event and returns
// nil once the system acknowledged it (HTTP 200 or a successful PUT).
type peerSystem interface {
	Name() string
	// Start starts the system, or restarts it on the same data after Kill.
	Start(ctx context.Context) error
	// Kill ends the system's process with SIGKILL.
	Kill()
	Publish(ctx context.Context, id int) error
	// Stop ends the system for good.
	Stop()
}

// proc is a server process the bench starts and kills.
type proc struct {
	name string
	bin  string
	args []string
	env  []string
	log  string
	cmd  *exec.Cmd
}

func (p *proc) start() error {
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", p.name, err)
	}
	go func() { cmd.Wait(); f.Close() }()
	p.cmd = cmd
	return nil
}

func (p *proc) kill() {
	if p.cmd != nil && p.cmd.Process != nil {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		for i := 0; i < 100 && syscall.Kill(p.cmd.Process.Pid, 0) == nil; i++ {
			time.Sleep(20 * time.Millisecond)
		}
		p.cmd = nil
	}
}

// freePort returns a loopback host:port nobody listens on now.
func freePort() string {
	a, err := harness.FreeLoopbackAddr()
	if err != nil {
		fatal(err)
	}
	return a
}

// waitHTTP polls url until it answers 200 or limit passes.
func waitHTTP(ctx context.Context, url string, limit time.Duration) error {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer 200 within %v", url, limit)
}

var postClient = &http.Client{
	Timeout:   10 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 64},
}

// postRecord POSTs {"Records":[record of id]} and wants 200.
func postRecord(ctx context.Context, url string, id int) error {
	return postRecords(ctx, url, id, 1)
}

// postRecords POSTs the records of ids id to id+n-1 in one body and wants
// 200.
func postRecords(ctx context.Context, url string, id, n int) error {
	body := []byte(`{"Records":[`)
	for i := id; i < id+n; i++ {
		if i > id {
			body = append(body, ',')
		}
		rec := targettest.Record(peersBucket, peerKey(i), event.ObjectCreatedPut, i)
		body = rec.AppendJSON(body)
	}
	body = append(body, "]}"...)
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := postClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("answered %d", resp.StatusCode)
	}
	return nil
}

// relaySystem is the relay daemon with one webhook target.
type relaySystem struct {
	name string
	p    proc
	addr string
}

// newRelaySystem returns the relay with its default configuration, but
// for lanes above 1: the relay at its own maximum, the webhook's events in
// lanes by object key, each in order.
func newRelaySystem(bin, dir, receiverURL string, lanes int) (*relaySystem, error) {
	addr := freePort()
	lanesKey := ""
	if lanes > 1 {
		lanesKey = fmt.Sprintf(`,"lanes":%d`, lanes)
	}
	if *peersRelayHook != "" {
		lanesKey += "," + *peersRelayHook
	}
	cfg := fmt.Sprintf(`{"relay":{"dataDir":%q,"listen":%q,"maxBackoff":"1s"},
  "notify":{"webhook":{"1":{"enable":true,"endpoint":%q%s}}},
  "buckets":{%q:[{"arn":"arn:minio:sqs::1:webhook","events":["put"]}]}}`,
		filepath.Join(dir, "data"), addr, receiverURL, lanesKey, peersBucket)
	path := filepath.Join(dir, "relay.json")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	return &relaySystem{name: "relay", addr: addr, p: proc{name: "relay", bin: bin,
		args: []string{"serve", "--config", path}, log: filepath.Join(dir, "relay.log")}}, nil
}

func (s *relaySystem) Name() string { return s.name }
func (s *relaySystem) Start(ctx context.Context) error {
	if err := s.p.start(); err != nil {
		return err
	}
	return waitHTTP(ctx, "http://"+s.addr+"/healthz", 30*time.Second)
}
func (s *relaySystem) Kill() { s.p.kill() }
func (s *relaySystem) Stop() { s.p.kill() }
func (s *relaySystem) Publish(ctx context.Context, id int) error {
	return postRecord(ctx, "http://"+s.addr+"/v1/events", id)
}
func (s *relaySystem) eventsURL() string { return "http://" + s.addr + "/v1/events" }

// minioSystem is a MinIO server whose webhook target (with queue_dir, its
// persistent queue) posts to endpoint; events come from S3 PUTs.
type minioSystem struct {
	name   string
	p      proc
	addr   string
	client *minio.Client
	body   []byte
	setup  bool
}

const (
	minioUser = "benchadmin"
	minioPass = "benchadmin-secret-key"
)

// With queueDir MinIO keeps events in its persistent queue (replayed by a
// background loop); without it a sync PUT waits for the webhook's answer.
func newMinioSystem(name, bin, dir, endpoint string, sync, queueDir bool) (*minioSystem, error) {
	addr := freePort()
	env := []string{
		"MINIO_ROOT_USER=" + minioUser, "MINIO_ROOT_PASSWORD=" + minioPass,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off",
		"MINIO_NOTIFY_WEBHOOK_ENABLE_PRIMARY=on",
		"MINIO_NOTIFY_WEBHOOK_ENDPOINT_PRIMARY=" + endpoint,
	}
	if queueDir {
		env = append(env, "MINIO_NOTIFY_WEBHOOK_QUEUE_DIR_PRIMARY="+filepath.Join(dir, "queue"),
			"MINIO_NOTIFY_WEBHOOK_QUEUE_LIMIT_PRIMARY=1000000")
	}
	if sync {
		env = append(env, "MINIO_API_SYNC_EVENTS=on")
	}
	c, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(minioUser, minioPass, "")})
	if err != nil {
		return nil, err
	}
	return &minioSystem{name: name, addr: addr, client: c, body: bytes.Repeat([]byte("x"), 1024),
		p: proc{name: name, bin: bin, env: env, log: filepath.Join(dir, "minio.log"),
			args: []string{"server", filepath.Join(dir, "data"), "--address", addr, "--console-address", freePort(), "--quiet"}}}, nil
}

func (s *minioSystem) Name() string { return s.name }
func (s *minioSystem) Start(ctx context.Context) error {
	if err := s.p.start(); err != nil {
		return err
	}
	if err := waitHTTP(ctx, "http://"+s.addr+"/minio/health/ready", 60*time.Second); err != nil {
		return err
	}
	if s.setup {
		return nil
	}
	if err := s.client.MakeBucket(ctx, peersBucket, minio.MakeBucketOptions{}); err != nil {
		return fmt.Errorf("%s: make bucket: %w", s.name, err)
	}
	q := notification.NewConfig(notification.NewArn("minio", "sqs", "", "PRIMARY", "webhook"))
	q.AddEvents(notification.ObjectCreatedAll)
	var cfg notification.Configuration
	cfg.AddQueue(q)
	// MinIO loads its notification targets after it answers ready: retry
	// while it says the ARN does not exist yet.
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := s.client.SetBucketNotification(ctx, peersBucket, cfg)
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s: set bucket notification: %w", s.name, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	s.setup = true
	return nil
}
func (s *minioSystem) Kill() { s.p.kill() }
func (s *minioSystem) Stop() { s.p.kill() }
func (s *minioSystem) Publish(ctx context.Context, id int) error {
	_, err := s.client.PutObject(ctx, peersBucket, peerKey(id), bytes.NewReader(s.body), int64(len(s.body)),
		minio.PutObjectOptions{ContentType: "application/octet-stream"})
	return err
}

// chainSystem is MinIO posting to the relay (MinIO's sync events on, no
// queue_dir): a PUT is answered once the relay logged its event. Kill ends MinIO; the
// relay keeps running, as it would on its own machine.
type chainSystem struct {
	relay *relaySystem
	minio *minioSystem
}

func (s *chainSystem) Name() string { return "minio+relay" }
func (s *chainSystem) Start(ctx context.Context) error {
	if s.relay.p.cmd == nil {
		if err := s.relay.Start(ctx); err != nil {
			return err
		}
	}
	return s.minio.Start(ctx)
}
func (s *chainSystem) Kill() { s.minio.Kill() }
func (s *chainSystem) Stop() { s.minio.Stop(); s.relay.Stop() }
func (s *chainSystem) Publish(ctx context.Context, id int) error {
	return s.minio.Publish(ctx, id)
}

// benthosSystem is Benthos with an http_server input and an http_client
// output: it answers a POST once the output delivered it, and keeps
// nothing on disk.
type benthosSystem struct {
	p    proc
	addr string
}

func newBenthosSystem(bin, dir, receiverURL string) (*benthosSystem, error) {
	addr := freePort()
	cfg := fmt.Sprintf(`http:
  enabled: false
input:
  http_server:
    address: %q
    path: /events
    allowed_verbs: [POST]
    timeout: 10s
output:
  http_client:
    url: %q
    verb: POST
    max_in_flight: 64
    retry_period: 100ms
    max_retry_backoff: 1s
logger:
  level: WARN
`, addr, receiverURL)
	path := filepath.Join(dir, "benthos.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	return &benthosSystem{addr: addr, p: proc{name: "benthos", bin: bin,
		args: []string{"run", path}, log: filepath.Join(dir, "benthos.log")}}, nil
}

func (s *benthosSystem) Name() string { return "benthos" }
func (s *benthosSystem) Start(ctx context.Context) error {
	if err := s.p.start(); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", s.addr); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("benthos did not listen within 30s")
}
func (s *benthosSystem) Kill() { s.p.kill() }
func (s *benthosSystem) Stop() { s.p.kill() }
func (s *benthosSystem) Publish(ctx context.Context, id int) error {
	return postRecord(ctx, "http://"+s.addr+"/events", id)
}

// peerBinaries finds the relay (built now) and the peers' binaries.
// Only the peers named in need are built.
func peerBinaries(ctx context.Context, dir string, need ...string) (relayBin, minioBin, benthosBin string, err error) {
	root, err := harness.ModuleRoot()
	if err != nil {
		return "", "", "", err
	}
	if relayBin = *peersRelayBin; relayBin == "" {
		relayBin = filepath.Join(dir, "relay")
		build := exec.CommandContext(ctx, "go", "build", "-o", relayBin, "./cmd/relay")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			return "", "", "", fmt.Errorf("building the relay: %v: %s", err, out)
		}
	} else if relayBin, err = filepath.Abs(relayBin); err != nil {
		return "", "", "", err
	}
	// The script builds what is missing (minutes the first time) and
	// prints its progress; the binaries are cached for later runs.
	peers := exec.CommandContext(ctx, filepath.Join(root, "scripts", "peers.sh"), append([]string{"build"}, need...)...)
	peers.Stdout, peers.Stderr = os.Stderr, os.Stderr
	if err := peers.Run(); err != nil {
		return "", "", "", fmt.Errorf("scripts/peers.sh build: %w", err)
	}
	out, err := exec.CommandContext(ctx, filepath.Join(root, "scripts", "peers.sh"), "path").Output()
	if err != nil {
		return "", "", "", fmt.Errorf("scripts/peers.sh path: %w", err)
	}
	bin := strings.TrimSpace(string(out))
	minioBin, benthosBin = filepath.Join(bin, "minio"), filepath.Join(bin, "benthos")
	return relayBin, minioBin, benthosBin, nil
}

package nats

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/stan.go"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/internal/testenv"
	"github.com/bucketrelay/bucketrelay/testkit/consumers"
)

// systemAddr is the nats-server scripts/services.sh runs (JetStream on).
var systemAddr = testenv.Getenv("RELAY_NATS_ADDR", "127.0.0.1:4222")

func newTarget(t testing.TB, cfg Config) delivery.Target {
	t.Helper()
	tg, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func testSubject(kind string) string {
	return fmt.Sprintf("bucketevents.test.%s.%d", kind, os.Getpid())
}

// TestCoreConformance runs the suite against the system nats-server with a
// plain subscriber, like the seed's Go example. Core NATS is at-most-once,
// so the suite skips its outage subtests.
func TestCoreConformance(t *testing.T) {
	testenv.Require(t, "nats", systemAddr)
	subject := testSubject("core")
	var c consumers.Collector
	consumers.NewNATS(t, systemAddr, subject, c.Add)
	targettest.Run(t, targettest.Harness{
		Features: targettest.Features{Message: true, AtMostOnce: true},
		New: func(t testing.TB) delivery.Target {
			return newTarget(t, Config{Enable: true, Address: systemAddr, Subject: subject})
		},
		Received: c.Received,
		Timeout:  20 * time.Second,
	})
}

// systemNATS stops and starts the nats-server of scripts/services.sh.
type systemNATS struct{}

// Stop stops the server and waits until its process is gone: pkill
// returns before it is, and start would see it alive.
func (systemNATS) Stop(t testing.TB) {
	t.Helper()
	testenv.StopService(t, "nats", "nats-server")
}

// Start starts the server.
func (systemNATS) Start(t testing.TB) {
	t.Helper()
	testenv.Services(t, "start", "nats")
}

// TestJetStreamConformance runs the suite against the system nats-server
// (the real binary), restarting it with scripts/services.sh. The consumer
// is an ordered JetStream consumer, which survives the restarts.
func TestJetStreamConformance(t *testing.T) {
	testenv.Require(t, "nats", systemAddr)
	if _, err := os.Stat(testenv.ServicesScript(t)); err != nil {
		t.Fatalf("cannot restart nats-server: %v", err)
	}
	subject := testSubject("js")
	stream := fmt.Sprintf("RELAYTEST_JS_%d", os.Getpid())
	consumers.NewStream(t, systemAddr, jetstream.StreamConfig{Name: stream, Subjects: []string{subject}, Storage: jetstream.FileStorage})
	// An ordered consumer survives the restarts.
	var c consumers.Collector
	consumers.NewJetStream(t, systemAddr, stream, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}, c.Add)
	targettest.Run(t, targettest.Harness{
		Features: targettest.Features{Message: true},
		New: func(t testing.TB) delivery.Target {
			return newTarget(t, Config{Enable: true, Address: systemAddr, Subject: subject, JetStream: JetStreamConfig{Enable: true}})
		},
		Received: c.Received,
		Stop:     systemNATS{}.Stop,
		Start:    systemNATS{}.Start,
		Timeout:  45 * time.Second,
	})
}

// TestJetStreamNoStream checks that a subject without a stream is a
// retryable failure that says so.
func TestJetStreamNoStream(t *testing.T) {
	testenv.Require(t, "nats", systemAddr)
	tg := newTarget(t, Config{Address: systemAddr, Subject: testSubject("nostream"), JetStream: JetStreamConfig{Enable: true}})
	defer tg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := tg.Send(ctx, items(3))
	var be *delivery.BatchError
	if !errors.As(err, &be) || len(be.Failed) != 3 {
		t.Fatalf("Send: got %v, want a BatchError failing all 3 items", err)
	}
	if delivery.IsPermanent(be.Failed[0].Err) || !strings.Contains(be.Failed[0].Err.Error(), "no responders") {
		t.Fatalf("got %v, want a retryable \"no responders\" error", be.Failed[0].Err)
	}
}

// stanServer is the embedded NATS Streaming server of testkit/consumers
// (file store: what it acknowledged survives a restart) with a subscriber
// delivering all available messages, like the seed's Go example.
type stanServer struct {
	*consumers.StanServer
	subject string
	mu      sync.Mutex
	sub     *consumers.Streaming
	c       consumers.Collector
}

const testCluster = "test-cluster"

func freePort(t testing.TB) int {
	p, err := consumers.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (s *stanServer) addr() string { return s.Addr() }

// Start starts the server and (re)subscribes from the first message: the
// file store has everything acknowledged, so the collector starts over.
func (s *stanServer) Start(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.StanServer.Start(); err != nil {
		t.Fatal(err)
	}
	s.c.Reset()
	sub, err := consumers.SubscribeStreaming(s.Addr(), testCluster, fmt.Sprintf("test-sub-%d", os.Getpid()), s.subject, s.c.Add, stan.DeliverAllAvailable())
	if err != nil {
		t.Fatal(err)
	}
	s.sub = sub
}

// Stop closes the subscriber and shuts the server down.
func (s *stanServer) Stop(testing.TB) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sub != nil {
		s.sub.Close()
		s.sub = nil
	}
	s.StanServer.Stop()
}

func newStanServer(t *testing.T, subject string) *stanServer {
	s := &stanServer{StanServer: &consumers.StanServer{Cluster: testCluster, Dir: t.TempDir()}, subject: subject}
	s.Start(t)
	t.Cleanup(func() { s.Stop(t) })
	return s
}

// TestStreamingConformance runs the suite against an embedded NATS
// Streaming server, with a stan subscriber delivering all available
// messages, like the seed's Go example.
func TestStreamingConformance(t *testing.T) {
	s := newStanServer(t, "bucketevents")
	targettest.Run(t, targettest.Harness{
		Features: targettest.Features{Message: true},
		New: func(t testing.TB) delivery.Target {
			return newTarget(t, Config{Enable: true, Address: s.addr(), Subject: "bucketevents",
				Streaming: StreamingConfig{Enable: true, ClusterID: testCluster, ClientID: "minio-client", Async: true, MaxPubAcksInflight: 10}})
		},
		Received: s.c.Received,
		Stop:     s.Stop,
		Start:    s.Start,
		Timeout:  45 * time.Second,
	})
}

func items(n int) []delivery.Item {
	out := make([]delivery.Item, n)
	for i := range out {
		e := targettest.Entry(targettest.Record("images", fmt.Sprintf("p%d.jpg", i), event.ObjectCreatedPut, i), "x")
		out[i] = delivery.Item{Seq: uint64(i + 1), Key: e.Key, EventName: event.Name(e.Name), Record: e.Data}
	}
	return out
}

// TestStreamingSync checks the synchronous mode (streaming.async false).
func TestStreamingSync(t *testing.T) {
	s := newStanServer(t, "sync")
	tg := newTarget(t, Config{Address: s.addr(), Subject: "sync",
		Streaming: StreamingConfig{Enable: true, ClusterID: testCluster, ClientID: "sync-client"}})
	defer tg.Close()
	if err := tg.Send(context.Background(), items(5)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(s.c.Received(t)) < 5 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := len(s.c.Received(t)); got != 5 {
		t.Fatalf("subscriber got %d messages, want 5", got)
	}
}

// TestStreamingWrongCluster checks that an unknown cluster ID is a
// retryable connect failure, and the server answering on the port is not
// mistaken for an acknowledgement.
func TestStreamingWrongCluster(t *testing.T) {
	s := newStanServer(t, "x")
	tg := newTarget(t, Config{Address: s.addr(), Subject: "x",
		Streaming: StreamingConfig{Enable: true, ClusterID: "no-such-cluster", ClientID: "c"}})
	defer tg.Close()
	err := tg.Send(context.Background(), items(1))
	if err == nil || delivery.IsPermanent(err) || !strings.HasPrefix(err.Error(), "nats: ") {
		t.Fatalf("Send: got %v, want a retryable nats: error", err)
	}
}

// TestNewDoesNoIO checks that New never dials and that Send's errors carry
// no secret.
func TestNewDoesNoIO(t *testing.T) {
	port := freePort(t) // closed
	for _, cfg := range []Config{
		{Address: fmt.Sprintf("127.0.0.1:%d", port), Subject: "s", Username: "u", Password: "hunter22"},
		{Address: fmt.Sprintf("127.0.0.1:%d", port), Subject: "s", Token: "tok-abcdef", JetStream: JetStreamConfig{Enable: true}},
		{Address: fmt.Sprintf("127.0.0.1:%d", port), Subject: "s", Streaming: StreamingConfig{Enable: true, ClusterID: "c", ClientID: "x"}},
		{Address: fmt.Sprintf("nats://u:hunter22@127.0.0.1:%d", port), Subject: "s"},
	} {
		start := time.Now()
		tg := newTarget(t, cfg)
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Fatalf("New took %v", d)
		}
		err := tg.Send(context.Background(), items(2))
		if err == nil || delivery.IsPermanent(err) {
			t.Fatalf("%s: Send to a closed port: got %v, want a retryable error", cfg.Mode(), err)
		}
		if s := err.Error(); strings.Contains(s, "hunter22") || strings.Contains(s, "tok-abcdef") {
			t.Fatalf("error leaks a secret: %s", s)
		}
		tg.Close()
	}
}

func TestEnvCredentials(t *testing.T) {
	t.Setenv(EnvPassword, "from-env")
	t.Setenv(EnvToken, "tok-env")
	tg, err := New(Config{Address: "h:1", Subject: "s", Username: "u"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tg.password != "from-env" || tg.token != "" {
		t.Fatalf("got password %q token %q, want from-env and none", tg.password, tg.token)
	}
	tg, _ = New(Config{Address: "h:1", Subject: "s"}, nil)
	if tg.token != "tok-env" {
		t.Fatalf("got token %q, want tok-env", tg.token)
	}
}

func TestValidate(t *testing.T) {
	ok := Config{Address: "0.0.0.0:4222", Subject: "bucketevents"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("Validate(%+v) = %v, want nil", ok, err)
	}
	for _, c := range []struct {
		cfg   Config
		field string
	}{
		{Config{Subject: "s"}, "address"},
		{Config{Address: "nohost", Subject: "s"}, "address"},
		{Config{Address: "h:1"}, "subject"},
		{Config{Address: "h:1", Subject: "a.*"}, "subject"},
		{Config{Address: "h:1", Subject: "a..b"}, "subject"},
		{Config{Address: "h:1", Subject: "s", Token: "t", Username: "u"}, "token"},
		{Config{Address: "h:1", Subject: "s", Password: "p"}, "username"},
		{Config{Address: "h:1", Subject: "s", PingInterval: -1}, "pingInterval"},
		{Config{Address: "h:1", Subject: "s", TLSFiles: kit.TLSFiles{ClientCert: "c"}}, "clientCert"},
		{Config{Address: "h:1", Subject: "s", JetStream: JetStreamConfig{true}, Streaming: StreamingConfig{Enable: true, ClusterID: "c", ClientID: "x"}}, "jetStream.enable"},
		{Config{Address: "h:1", Subject: "s", Streaming: StreamingConfig{Enable: true, ClientID: "x"}}, "streaming.clusterID"},
		{Config{Address: "h:1", Subject: "s", Streaming: StreamingConfig{Enable: true, ClusterID: "c"}}, "streaming.clientID"},
		{Config{Address: "h:1", Subject: "s", Streaming: StreamingConfig{Enable: true, ClusterID: "c", ClientID: "a b"}}, "streaming.clientID"},
		{Config{Address: "h:1", Subject: "s", Streaming: StreamingConfig{Enable: true, ClusterID: "c", ClientID: "x", MaxPubAcksInflight: -1}}, "streaming.maxPubAcksInflight"},
	} {
		var fe *kit.FieldError
		if err := c.cfg.Validate(); !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("Validate(%+v) = %v, want an error on %s", c.cfg, err, c.field)
		}
	}
}

// bigItem returns an item whose body exceeds the server's max_payload
// (1 MiB by default).
func bigItem() delivery.Item {
	r := targettest.Record("images", "huge.jpg", event.ObjectCreatedPut, 0)
	r.S3.Object.UserMetadata = map[string]string{"X-Amz-Meta-Blob": strings.Repeat("x", 2<<20)}
	e := targettest.Entry(r, "x")
	return delivery.Item{Seq: 99, Key: e.Key, EventName: event.Name(e.Name), Record: e.Data}
}

// TestOversizedIsPermanent checks that an event larger than the server
// takes is quarantined (permanent) and the others of the batch delivered,
// in core and JetStream mode.
func TestOversizedIsPermanent(t *testing.T) {
	testenv.Require(t, "nats", systemAddr)
	subject := testSubject("big")
	stream := fmt.Sprintf("RELAYTEST_BIG_%d", os.Getpid())
	consumers.NewStream(t, systemAddr, jetstream.StreamConfig{Name: stream, Subjects: []string{subject}, Storage: jetstream.MemoryStorage})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, js := range []bool{false, true} {
		tg := newTarget(t, Config{Address: systemAddr, Subject: subject, JetStream: JetStreamConfig{Enable: js}})
		batch := append(items(2), bigItem())
		batch = append(batch, items(1)...)
		err := tg.Send(ctx, batch)
		var be *delivery.BatchError
		if !errors.As(err, &be) || len(be.Failed) != 1 || be.Failed[0].Index != 2 || !delivery.IsPermanent(be.Failed[0].Err) {
			t.Fatalf("jetStream=%v: Send: got %v, want only item 2 failed, permanently", js, err)
		}
		tg.Close()
	}
}

// TestCoreReconnects checks that a core target outlives a restart of the
// real nats-server: sends fail (retryably) while it is down and succeed
// again once it is back, without a new target.
func TestCoreReconnects(t *testing.T) {
	testenv.Require(t, "nats", systemAddr)
	if _, err := os.Stat(testenv.ServicesScript(t)); err != nil {
		t.Fatalf("cannot restart nats-server: %v", err)
	}
	tg := newTarget(t, Config{Address: systemAddr, Subject: testSubject("reconnect")})
	defer tg.Close()
	ctx := context.Background()
	if err := tg.Send(ctx, items(1)); err != nil {
		t.Fatal(err)
	}
	systemNATS{}.Stop(t)
	started := false
	defer func() {
		if !started {
			systemNATS{}.Start(t)
		}
	}()
	if err := tg.Send(ctx, items(1)); err == nil || delivery.IsPermanent(err) {
		t.Fatalf("Send with the server down: got %v, want a retryable error", err)
	}
	systemNATS{}.Start(t)
	started = true
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := tg.Send(ctx, items(1))
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Send after the restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

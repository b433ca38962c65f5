package consumers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	stand "github.com/nats-io/nats-streaming-server/server"
	"github.com/nats-io/nats-streaming-server/stores"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/stan.go"
)

// NATS is a subscription of core NATS (at most once) or JetStream.
type NATS struct {
	nc   *natsgo.Conn
	stop func()
}

// Close ends the subscription and the connection.
func (s *NATS) Close() {
	if s.stop != nil {
		s.stop()
	}
	s.nc.Close()
}

// natsConnect connects to addr (host:port) and reconnects for ever.
func natsConnect(addr string) (*natsgo.Conn, error) {
	nc, err := natsgo.Connect("nats://"+addr, natsgo.MaxReconnects(-1), natsgo.ReconnectWait(100*time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("consumers: nats: %w", err)
	}
	return nc, nil
}

// SubscribeNATS subscribes to subject on the server at addr (host:port), as
// the seed's Go example does, without pending limits, and returns once the
// server has the subscription. A core subscription gets only what is
// published while it is connected.
func SubscribeNATS(addr, subject string, sink Sink) (*NATS, error) {
	nc, err := natsConnect(addr)
	if err != nil {
		return nil, err
	}
	sub, err := nc.Subscribe(subject, func(m *natsgo.Msg) { sink(m.Data) })
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("consumers: nats: %w", err)
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		nc.Close()
		return nil, fmt.Errorf("consumers: nats: %w", err)
	}
	if err := nc.Flush(); err != nil {
		nc.Close()
		return nil, fmt.Errorf("consumers: nats: %w", err)
	}
	return &NATS{nc: nc}, nil
}

// NewNATS is SubscribeNATS for a test: it fails t on error and closes the
// subscription when the test ends.
func NewNATS(t testing.TB, addr, subject string, sink Sink) *NATS {
	t.Helper()
	s, err := SubscribeNATS(addr, subject, sink)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// SubscribeJetStream consumes stream on the server at addr with an ordered
// consumer configured by cfg (the zero value delivers everything from the
// first message). An ordered consumer recreates itself after a server
// restart, so it keeps consuming across restarts.
func SubscribeJetStream(ctx context.Context, addr, stream string, cfg jetstream.OrderedConsumerConfig, sink Sink) (*NATS, error) {
	nc, err := natsConnect(addr)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("consumers: jetstream: %w", err)
	}
	cons, err := js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("consumers: jetstream: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { sink(m.Data()) })
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("consumers: jetstream: %w", err)
	}
	return &NATS{nc: nc, stop: cc.Stop}, nil
}

// NewJetStream is SubscribeJetStream for a test: it fails t on error and
// stops the consumer when the test ends.
func NewJetStream(t testing.TB, addr, stream string, cfg jetstream.OrderedConsumerConfig, sink Sink) *NATS {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := SubscribeJetStream(ctx, addr, stream, cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// NewStream creates (or updates) the JetStream stream cfg on the server at
// addr for a test and deletes it when the test ends, after the cleanups
// registered later (the consumers of the stream). It fails t on error.
func NewStream(t testing.TB, addr string, cfg jetstream.StreamConfig) jetstream.Stream {
	t.Helper()
	nc, err := natsConnect(addr)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		nc.Close()
		t.Fatalf("consumers: creating stream %s: %v", cfg.Name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = js.DeleteStream(ctx, cfg.Name)
		nc.Close()
	})
	return s
}

// Streaming is a NATS Streaming subscription.
type Streaming struct{ sc stan.Conn }

// SubscribeStreaming connects to the Streaming cluster at addr as clientID
// and subscribes to subject with opts (for example
// stan.DeliverAllAvailable() or stan.DurableName(name)).
func SubscribeStreaming(addr, cluster, clientID, subject string, sink Sink, opts ...stan.SubscriptionOption) (*Streaming, error) {
	sc, err := stan.Connect(cluster, clientID, stan.NatsURL("nats://"+addr))
	if err != nil {
		return nil, fmt.Errorf("consumers: streaming: %w", err)
	}
	if _, err := sc.Subscribe(subject, func(m *stan.Msg) { sink(m.Data) }, opts...); err != nil {
		sc.Close()
		return nil, fmt.Errorf("consumers: streaming: %w", err)
	}
	return &Streaming{sc: sc}, nil
}

// NewStreaming is SubscribeStreaming for a test: it fails t on error and
// closes the subscription when the test ends.
func NewStreaming(t testing.TB, addr, cluster, clientID, subject string, sink Sink, opts ...stan.SubscriptionOption) *Streaming {
	t.Helper()
	s, err := SubscribeStreaming(addr, cluster, clientID, subject, sink, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Close closes the connection; a durable subscription stays on the server.
func (s *Streaming) Close() { s.sc.Close() }

// StanServer is an embedded NATS Streaming server on a fixed loopback port,
// storing in files so that what it acknowledged survives Stop and Start.
type StanServer struct {
	// Cluster is the cluster id. Default: "test-cluster".
	Cluster string
	// Dir is the file store's directory. Required.
	Dir string
	// Port is the loopback port; 0 picks a free one at the first Start.
	Port int
	// Unlimited lifts the store's per-channel message and byte limits
	// (bench/ appends more than the defaults keep).
	Unlimited bool

	mu  sync.Mutex
	srv *stand.StanServer
}

// Addr is the server's host:port.
func (s *StanServer) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.Port) }

// Start starts the server, retrying for 5 s while the port lingers after a
// Stop.
func (s *StanServer) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Dir == "" {
		return errors.New("consumers: StanServer needs Dir")
	}
	if s.Cluster == "" {
		s.Cluster = "test-cluster"
	}
	if s.Port == 0 {
		p, err := FreePort()
		if err != nil {
			return err
		}
		s.Port = p
	}
	sopts := stand.GetDefaultOptions()
	sopts.ID = s.Cluster
	sopts.StoreType = stores.TypeFile
	sopts.FilestoreDir = s.Dir
	if s.Unlimited {
		sopts.MaxMsgs, sopts.MaxBytes, sopts.MaxChannels = 0, 0, 10
	}
	nopts := stand.DefaultNatsServerOptions
	nopts.Host = "127.0.0.1"
	nopts.Port = s.Port
	var err error
	for range 50 {
		if s.srv, err = stand.RunServerWithOpts(sopts, &nopts); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("consumers: starting the streaming server: %w", err)
}

// Stop shuts the server down; Start brings it back with its store.
func (s *StanServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv = nil
	}
}

// NewStanServer starts a StanServer in t.TempDir() for a test and stops it
// when the test ends.
func NewStanServer(t testing.TB, cluster string) *StanServer {
	t.Helper()
	s := &StanServer{Cluster: cluster, Dir: t.TempDir()}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("consumers: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

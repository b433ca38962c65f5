package jslog_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/jslog"
	"github.com/bucketrelay/bucketrelay/testkit/natscluster"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "relay.creds")
	if err := os.WriteFile(creds, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	ok := jslog.Config{Servers: []string{"nats://127.0.0.1:4222"}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("minimal config: %v", err)
	}
	for _, tc := range []struct {
		name string
		cfg  jslog.Config
		path string
	}{
		{"no servers", jslog.Config{}, "relay.log.servers:"},
		{"bad scheme", jslog.Config{Servers: []string{"nats://a:1", "http://b:2"}}, "relay.log.servers[1]:"},
		{"no host", jslog.Config{Servers: []string{"nats://"}}, "relay.log.servers[0]:"},
		{"bad stream", jslog.Config{Servers: ok.Servers, Stream: "a.b"}, "relay.log.stream:"},
		{"replicas", jslog.Config{Servers: ok.Servers, Replicas: 7}, "relay.log.replicas:"},
		{"max bytes", jslog.Config{Servers: ok.Servers, MaxBytes: -1}, "relay.log.maxBytes:"},
		{"max messages", jslog.Config{Servers: ok.Servers, MaxMessages: -1}, "relay.log.maxMessages:"},
		{"creds and nkey", jslog.Config{Servers: ok.Servers, Credentials: creds, NKey: creds}, "relay.log.nkey:"},
		{"missing creds", jslog.Config{Servers: ok.Servers, Credentials: filepath.Join(dir, "none.creds")}, "relay.log.credentials:"},
		{"missing CA", jslog.Config{Servers: ok.Servers, TLS: jslog.TLSConfig{CA: filepath.Join(dir, "ca.pem")}}, "relay.log.tls.ca:"},
		{"cert without key", jslog.Config{Servers: ok.Servers, TLS: jslog.TLSConfig{Cert: creds}}, "relay.log.tls:"},
	} {
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.path) {
			t.Errorf("%s: Validate() = %v, want an error naming %s", tc.name, err, tc.path)
		}
	}
	// A password in a URL never appears in an error.
	err := jslog.Config{Servers: []string{"nats://relay:s3cret@host:99999x"}}.Validate()
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("bad URL with a password: %v, want an error without the password", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = jslog.Open(ctx, jslog.Config{Servers: []string{"nats://relay:s3cret@127.0.0.1:1"}}, jslog.Options{Logger: quietLogger()})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("Open of an unreachable server: %v, want an error without the password", err)
	}
}

// TestWarnings opens a log on a stream that cannot keep the promise (one
// replica, memory storage, discard old, unbounded) and checks each
// shortfall is reported.
func TestWarnings(t *testing.T) {
	c := natscluster.Start(t, natscluster.Options{})
	nc, err := nats.Connect(c.URL(1))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	jsCall(t, "creating stream WEAK", func(ctx context.Context) (jetstream.Stream, error) {
		return js.CreateStream(ctx, jetstream.StreamConfig{
			Name: "WEAK", Subjects: []string{"WEAK.records"}, Storage: jetstream.MemoryStorage,
			Replicas: 1, Discard: jetstream.DiscardOld,
		})
	})
	l := open(t, c, jslog.Config{Stream: "WEAK"})
	w := strings.Join(l.Warnings(), "\n")
	for _, want := range []string{"1 replica(s)", "kept in memory", "discards old", "no max bytes or messages"} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings lack %q:\n%s", want, w)
		}
	}
	if strong := open(t, c, jslog.Config{Stream: "STRONG"}); len(strong.Warnings()) != 0 {
		t.Fatalf("a stream the log created warns: %v", strong.Warnings())
	}
}

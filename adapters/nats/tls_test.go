package nats

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/testkit/tlsca"
	"github.com/bucketrelay/bucketrelay/testkit/tlsserver"
	"github.com/bucketrelay/bucketrelay/testkit/tlstest"
)

const tlsSubject = "relay.tls"

// checker sends through new nats targets.
var checker = tlstest.Checker[Config]{New: func(c Config) (delivery.Target, error) { return New(c, nil) }}

// stream connects to n with opts, creates a JetStream stream on
// tlsSubject and returns a function counting its messages.
func stream(t *testing.T, n *tlsserver.NATS, opts ...natsgo.Option) func() uint64 {
	t.Helper()
	nc, err := natsgo.Connect(n.Addr(), append(opts, natsgo.Timeout(10*time.Second))...)
	if err != nil {
		t.Fatalf("test client: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "RELAYTLS", Subjects: []string{tlsSubject}})
	if err != nil {
		t.Fatalf("creating the stream: %v", err)
	}
	return func() uint64 {
		info, err := st.Info(context.Background())
		if err != nil {
			t.Fatalf("stream info: %v", err)
		}
		return info.State.Msgs
	}
}

// TestTLS publishes to JetStream on a nats-server with a tls block, and
// checks that a wrong CA, a wrong host name and a plain server fail,
// saying so.
func TestTLS(t *testing.T) {
	s := tlsca.New(t, "")
	n := tlsserver.StartNATS(t, s, tlsserver.NATSOptions{})
	msgs := stream(t, n, natsgo.RootCAs(s.CA.File))
	base := Config{Address: n.Addr(), Subject: tlsSubject, JetStream: JetStreamConfig{Enable: true}, TLSFiles: kit.TLSFiles{CAFile: s.CA.File}}
	if err := checker.Send(t, base, 0); err != nil {
		t.Fatalf("send over TLS with the right CA: %v", err)
	}
	if got := msgs(); got != 1 {
		t.Fatalf("stream: got %d messages, want 1", got)
	}
	plain := tlsserver.StartNATS(t, nil, tlsserver.NATSOptions{Plain: true})
	checker.Fails(t, base, 1, []tlstest.Case[Config]{
		tlstest.Bad("wrong CA", func(c *Config) { c.CAFile = s.WrongCA.File }, tlsca.UnknownAuthorityText),
		tlstest.Bad("wrong host name", func(c *Config) { c.Address = fmt.Sprintf("%s:%d", tlsca.WrongHost, n.Port) }, tlsca.WrongHostText),
		tlstest.Bad("system CAs", func(c *Config) { c.CAFile, c.Secure = "", true }, tlsca.UnknownAuthorityText),
		tlstest.Bad("no TLS asked of a TLS server", func(c *Config) { c.CAFile = "" }, tlsca.UnknownAuthorityText),
		tlstest.Bad("plain server", func(c *Config) { c.Address = plain.Addr() }, "secure connection not available"),
	})
	if got := msgs(); got != 1 {
		t.Errorf("stream: got %d messages, want only the first", got)
	}
}

// TestMutualTLS publishes to a server that verifies client certificates.
func TestMutualTLS(t *testing.T) {
	s := tlsca.New(t, "")
	n := tlsserver.StartNATS(t, s, tlsserver.NATSOptions{RequireClientCert: true})
	msgs := stream(t, n, natsgo.RootCAs(s.CA.File), natsgo.ClientCert(s.Client.Cert, s.Client.Key))
	base := Config{Address: n.Addr(), Subject: tlsSubject, JetStream: JetStreamConfig{Enable: true},
		TLSFiles: kit.TLSFiles{CAFile: s.CA.File, ClientCert: s.Client.Cert, ClientKey: s.Client.Key}}
	checker.MutualTLS(t, s, base, func(c *Config, cert, key string) { c.ClientCert, c.ClientKey = cert, key })
	if got := msgs(); got != 1 {
		t.Errorf("stream: got %d messages, want 1", got)
	}
}

// TestNKey authenticates with an nkey seed file over TLS.
func TestNKey(t *testing.T) {
	s := tlsca.New(t, "")
	n := tlsserver.StartNATS(t, s, tlsserver.NATSOptions{Auth: tlsserver.NATSNKey})
	nkey, err := natsgo.NkeyOptionFromSeed(n.NKeySeedFile)
	if err != nil {
		t.Fatal(err)
	}
	msgs := stream(t, n, natsgo.RootCAs(s.CA.File), nkey)
	base := Config{Address: n.Addr(), Subject: tlsSubject, JetStream: JetStreamConfig{Enable: true},
		TLSFiles: kit.TLSFiles{CAFile: s.CA.File}, NKeySeed: n.NKeySeedFile}
	if err := checker.Send(t, base, 0); err != nil {
		t.Fatalf("send with the user's nkey: %v", err)
	}
	wrong := base
	wrong.NKeySeed = n.WrongNKeySeedFile
	none := base
	none.NKeySeed = ""
	for i, cfg := range []Config{wrong, none} {
		err := checker.Send(t, cfg, i+1)
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
			t.Errorf("nkeySeed %q: got %v, want an authorization violation", cfg.NKeySeed, err)
		}
		checkNoSeed(t, err, n.NKeySeedFile, n.WrongNKeySeedFile)
	}
	if got := msgs(); got != 1 {
		t.Errorf("stream: got %d messages, want 1", got)
	}
}

// TestCredentials authenticates with a credentials file against a server
// in operator (JWT) mode, over TLS.
func TestCredentials(t *testing.T) {
	s := tlsca.New(t, "")
	n := tlsserver.StartNATS(t, s, tlsserver.NATSOptions{Auth: tlsserver.NATSJWT})
	msgs := stream(t, n, natsgo.RootCAs(s.CA.File), natsgo.UserCredentials(n.CredsFile))
	base := Config{Address: n.Addr(), Subject: tlsSubject, JetStream: JetStreamConfig{Enable: true},
		TLSFiles: kit.TLSFiles{CAFile: s.CA.File}, Credentials: n.CredsFile}
	if err := checker.Send(t, base, 0); err != nil {
		t.Fatalf("send with the credentials file: %v", err)
	}
	wrong := base
	wrong.Credentials = n.WrongCredsFile
	err := checker.Send(t, wrong, 1)
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
		t.Errorf("credentials of an unknown account: got %v, want an authorization violation", err)
	}
	checkNoSeed(t, err, n.CredsFile, n.WrongCredsFile)
	if got := msgs(); got != 1 {
		t.Errorf("stream: got %d messages, want 1", got)
	}
}

// checkNoSeed fails t if err quotes a seed or JWT from one of files.
func checkNoSeed(t *testing.T, err error, files ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, f := range files {
		b, rerr := os.ReadFile(f)
		if rerr != nil {
			t.Fatal(rerr)
		}
		for _, line := range strings.Fields(string(b)) {
			if len(line) > 20 && strings.Contains(err.Error(), line) {
				t.Errorf("error quotes a secret of %s: %v", f, err)
			}
		}
	}
}

// TestAuthFiles checks Validate's and New's errors for the nkey seed and
// the credentials file: exclusive with other credentials, unreadable or
// wrong content named by field, the content never quoted.
func TestAuthFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	secret := "SUSECRETSECRETSECRETSECRETSECRETSECRETSECRETSECRETSECRETX"
	garbage := write("garbage", secret+"\n")
	base := Config{Address: "127.0.0.1:4222", Subject: "s"}
	for _, c := range []struct {
		name  string
		cfg   func(c *Config)
		field string
	}{
		{"seed with username", func(c *Config) { c.NKeySeed, c.Username = garbage, "u" }, "nkeySeed"},
		{"seed with token", func(c *Config) { c.NKeySeed, c.Token = garbage, "tok" }, "nkeySeed"},
		{"credentials with username", func(c *Config) { c.Credentials, c.Username = garbage, "u" }, "credentials"},
		{"seed and credentials", func(c *Config) { c.Credentials, c.NKeySeed = garbage, garbage }, "credentials"},
		{"seed missing", func(c *Config) { c.NKeySeed = dir + "/missing" }, "nkeySeed"},
		{"seed not a seed", func(c *Config) { c.NKeySeed = garbage }, "nkeySeed"},
		{"credentials missing", func(c *Config) { c.Credentials = dir + "/missing" }, "credentials"},
		{"credentials not credentials", func(c *Config) { c.Credentials = garbage }, "credentials"},
	} {
		cfg := base
		c.cfg(&cfg)
		_, err := New(cfg, nil)
		var fe *kit.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: got %v, want an error on %s", c.name, err, c.field)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("%s: error quotes the file's content: %v", c.name, err)
		}
	}
}

package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/testkit/tlsca"
	"github.com/bucketrelay/bucketrelay/testkit/tlstest"
)

const tlsTopic = "bucketevents"

// checker sends through new kafka targets.
var checker = tlstest.Checker[Config]{New: func(c Config) (delivery.Target, error) { return New(c, nil) }}

// countRecords reads the topic from its start with franz-go, with opts
// (TLS, SASL), until it has want records or 20 s pass, and returns how many
// it read; it reads for another 300 ms after reaching want, so that an
// extra record is counted too.
func countRecords(t *testing.T, addr string, want int, opts ...kgo.Opt) int {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.ConsumeTopics(tlsTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	n := 0
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(*kgo.Record) { n++ })
		if n >= want && fs.NumRecords() == 0 {
			break
		}
	}
	return n
}

// tlsBroker starts kfake with TLS (s.Server) and extra options, and
// returns its address.
func tlsBroker(t *testing.T, s *tlsca.Set, requireClientCert bool, extra ...kfake.Opt) string {
	t.Helper()
	return NewBroker(t, tlsTopic, false, append([]kfake.Opt{kfake.TLS(s.ServerConfig(t, requireClientCert))}, extra...)...).Addr
}

// TestTLS produces to kfake's TLS listener and checks that a wrong CA, a
// wrong host name and a plain broker fail, saying so.
func TestTLS(t *testing.T) {
	s := tlsca.New(t, "")
	addr := tlsBroker(t, s, false)
	base := Config{Brokers: []string{addr}, Topic: tlsTopic, TLS: TLSConfig{Enable: true, TLSFiles: kit.TLSFiles{CAFile: s.CA.File}}}
	if err := checker.Send(t, base, 0); err != nil {
		t.Fatalf("send over TLS with the right CA: %v", err)
	}
	plain := NewBroker(t, tlsTopic, false).Addr
	_, port, _ := strings.Cut(addr, ":")
	checker.Fails(t, base, 1, []tlstest.Case[Config]{
		tlstest.Bad("wrong CA", func(c *Config) { c.TLS.CAFile = s.WrongCA.File }, tlsca.UnknownAuthorityText),
		tlstest.Bad("wrong host name", func(c *Config) { c.Brokers = []string{tlsca.WrongHost + ":" + port} }, tlsca.WrongHostText),
		tlstest.Bad("system CAs", func(c *Config) { c.TLS.CAFile = "" }, tlsca.UnknownAuthorityText),
		// A plain listener waits for the rest of the "request" the
		// ClientHello seems to start: this failed at the read timeout
		// saying only "i/o timeout".
		tlstest.Bad("plain broker", func(c *Config) { c.Brokers = []string{plain} }, "no TLS handshake"),
	})
	if n := countRecords(t, addr, 1, kgo.DialTLSConfig(&tls.Config{RootCAs: s.Pool(t)})); n != 1 {
		t.Errorf("topic: got %d records, want 1", n)
	}
	if n := countRecords(t, plain, 0); n != 0 {
		t.Errorf("plain broker's topic: got %d records, want 0", n)
	}
}

// TestTLSFilesNeedEnable checks that TLS files without tls.enable are a
// configuration error: they used to be ignored, and the target connected in
// plain text.
func TestTLSFilesNeedEnable(t *testing.T) {
	for _, c := range []struct {
		tls   TLSConfig
		field string
	}{
		{TLSConfig{TLSFiles: kit.TLSFiles{CAFile: "ca.pem"}}, "tls.caFile"},
		{TLSConfig{TLSFiles: kit.TLSFiles{ClientCert: "c.pem", ClientKey: "k.pem"}}, "tls.clientCert"},
		{TLSConfig{SkipVerify: true}, "tls.skipVerify"},
	} {
		cfg := Config{Brokers: []string{"127.0.0.1:9092"}, Topic: tlsTopic, TLS: c.tls}
		var fe *kit.FieldError
		if err := cfg.Validate(); !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("Validate(tls %+v): got %v, want an error on %s", c.tls, err, c.field)
		}
	}
}

// TestMutualTLS produces to a TLS listener that requires a client
// certificate.
func TestMutualTLS(t *testing.T) {
	s := tlsca.New(t, "")
	addr := tlsBroker(t, s, true)
	base := Config{Brokers: []string{addr}, Topic: tlsTopic,
		TLS: TLSConfig{Enable: true, TLSFiles: kit.TLSFiles{CAFile: s.CA.File, ClientCert: s.Client.Cert, ClientKey: s.Client.Key}}}
	checker.MutualTLS(t, s, base, func(c *Config, cert, key string) { c.TLS.ClientCert, c.TLS.ClientKey = cert, key })
	cert, err := tls.LoadX509KeyPair(s.Client.Cert, s.Client.Key)
	if err != nil {
		t.Fatal(err)
	}
	if n := countRecords(t, addr, 1, kgo.DialTLSConfig(&tls.Config{RootCAs: s.Pool(t), Certificates: []tls.Certificate{cert}})); n != 1 {
		t.Errorf("topic: got %d records, want 1", n)
	}
}

// TestSCRAMOverTLS authenticates with SASL SCRAM-SHA-256 and -512 over TLS,
// as a production cluster is set up, and checks that a wrong password
// fails without being quoted.
func TestSCRAMOverTLS(t *testing.T) {
	s := tlsca.New(t, "")
	addr := tlsBroker(t, s, false, kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-256", "user256", "pass-256"),
		kfake.Superuser("SCRAM-SHA-512", "user512", "pass-512"))
	tlsOn := TLSConfig{Enable: true, TLSFiles: kit.TLSFiles{CAFile: s.CA.File}}
	for i, sc := range []SASLConfig{
		{Enable: true, Username: "user256", Password: "pass-256", Mechanism: "sha256"},
		{Enable: true, Username: "user512", Password: "pass-512", Mechanism: "sha512"},
	} {
		if err := checker.Send(t, Config{Brokers: []string{addr}, Topic: tlsTopic, TLS: tlsOn, SASL: sc}, i); err != nil {
			t.Fatalf("%s over TLS: %v", sc.Mechanism, err)
		}
		bad := sc
		bad.Password = "wrong-" + sc.Password
		err := checker.Send(t, Config{Brokers: []string{addr}, Topic: tlsTopic, TLS: tlsOn, SASL: bad}, 10+i)
		t.Logf("%s with a wrong password: %v", sc.Mechanism, err)
		if err == nil || strings.Contains(err.Error(), bad.Password) {
			t.Errorf("%s with a wrong password: got %v, want an error without the password", sc.Mechanism, err)
		}
		// SCRAM-SHA-256 credentials do not authenticate with SHA-512.
		other := sc
		other.Mechanism = map[string]string{"sha256": "sha512", "sha512": "sha256"}[sc.Mechanism]
		if err := checker.Send(t, Config{Brokers: []string{addr}, Topic: tlsTopic, TLS: tlsOn, SASL: other}, 20+i); err == nil {
			t.Errorf("%s credentials with %s: got nil, want an error", sc.Mechanism, other.Mechanism)
		}
	}
	auth := scram.Auth{User: "user512", Pass: "pass-512"}
	if n := countRecords(t, addr, 2, kgo.DialTLSConfig(&tls.Config{RootCAs: s.Pool(t)}), kgo.SASL(auth.AsSha512Mechanism())); n != 2 {
		t.Errorf("topic: got %d records, want 2", n)
	}
}

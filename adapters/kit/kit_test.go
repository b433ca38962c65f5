package kit

import (
	"context"
	"crypto/tls"
	"errors"
	"github.com/bucketrelay/bucketrelay/testkit/tlsca"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
)

func TestEventTime(t *testing.T) {
	et := time.Date(2026, 11, 25, 12, 0, 0, 1000, time.FixedZone("x", 3600))
	at := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		name string
		it   delivery.Item
		want time.Time
	}{
		{"item's EventTime", delivery.Item{EventTime: et, AppendTime: at, Record: []byte(`{"eventTime":"2001-01-01T00:00:00Z"}`)}, et.UTC()},
		{"record's eventTime", delivery.Item{AppendTime: at, Record: []byte(`{"eventVersion":"2.0","eventTime":"2026-11-25T11:00:00.000001Z"}`)}, et.UTC()},
		{"no eventTime: append time", delivery.Item{AppendTime: at, Record: []byte(`{"eventVersion":"2.0"}`)}, at},
		{"bad eventTime: append time", delivery.Item{AppendTime: at, Record: []byte(`{"eventTime":"yesterday"}`)}, at},
		{"eventTime not a string: append time", delivery.Item{AppendTime: at, Record: []byte(`{"eventTime":12}`)}, at},
		{"nothing: zero, never now", delivery.Item{Record: []byte(`{}`)}, time.Time{}},
	} {
		got := EventTime(&c.it)
		if !got.Equal(c.want) || (!got.IsZero() && got.Location() != time.UTC) {
			t.Errorf("%s: got %v, want %v in UTC", c.name, got, c.want)
		}
	}
}

func TestNewest(t *testing.T) {
	items := []delivery.Item{{Key: "a"}, {Key: "b"}, {Key: "a"}, {Key: "c"}, {Key: "b"}}
	if got, want := Newest(items), []int{2, 3, 4}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Newest: got %v, want %v", got, want)
	}
	if got := Newest(nil); len(got) != 0 {
		t.Fatalf("Newest(nil): got %v, want none", got)
	}
}

func TestFormat(t *testing.T) {
	for _, c := range []struct {
		f        Format
		ns, ok   bool
		wantName string
	}{
		{"", true, true, "namespace"},
		{FormatNamespace, true, true, "namespace"},
		{FormatAccess, false, true, "access"},
		{"Access", true, false, "namespace"},
	} {
		err := c.f.Validate()
		var fe *FieldError
		if c.ok != (err == nil) || (err != nil && (!errors.As(err, &fe) || fe.Field != "format")) {
			t.Errorf("Format(%q).Validate() = %v, want ok=%v (or an error on format)", c.f, err, c.ok)
		}
		if c.f.Namespace() != c.ns || (c.ok && c.f.Name() != c.wantName) {
			t.Errorf("Format(%q): Namespace %v, Name %q; want %v, %q", c.f, c.f.Namespace(), c.f.Name(), c.ns, c.wantName)
		}
	}
}

// writeCert writes a self-signed CA certificate and its key to dir.
func writeCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	// A leaf of a test CA serves as both the CA file and the client pair:
	// the tests check parsing and loading, not a chain.
	p := tlsca.NewCA(t, dir, "ca").Client(t, "client", "kit test")
	return p.Cert, p.Key
}

func TestTLSFiles(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeCert(t, dir)
	var zero TLSFiles
	if zero.IsSet() || zero.Validate("") != nil {
		t.Fatalf("zero TLSFiles: IsSet %v, Validate %v; want false, nil", zero.IsSet(), zero.Validate(""))
	}
	f := TLSFiles{CAFile: cert, ClientCert: cert, ClientKey: key}
	tc, err := f.Config("", "broker.example")
	if err != nil {
		t.Fatalf("Config: %v", err)
	}
	if tc.RootCAs == nil || len(tc.Certificates) != 1 || tc.ServerName != "broker.example" || tc.MinVersion != tls.VersionTLS12 {
		t.Fatalf("Config: got RootCAs %v, %d certificates, ServerName %q, MinVersion %x", tc.RootCAs, len(tc.Certificates), tc.ServerName, tc.MinVersion)
	}
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("no"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		f      TLSFiles
		prefix string
		field  string
	}{
		{"cert without key", TLSFiles{ClientCert: cert}, "", "clientCert"},
		{"key without cert", TLSFiles{ClientKey: key}, "tls.", "tls.clientCert"},
		{"CA missing", TLSFiles{CAFile: filepath.Join(dir, "missing.pem")}, "", "caFile"},
		{"CA not PEM", TLSFiles{CAFile: notPEM}, "tls.", "tls.caFile"},
		{"key is a certificate", TLSFiles{ClientCert: cert, ClientKey: cert}, "", "clientCert"},
	} {
		tc, err := c.f.Config(c.prefix, "")
		var fe *FieldError
		if tc != nil || !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: got %v, %v; want nil and an error on %s", c.name, tc, err, c.field)
		}
	}
}

// fakeConfig and fakeTarget make a kind for the Kind tests.
type fakeConfig struct {
	Enable bool   `json:"enable"`
	Format string `json:"format"`
	URL    string `json:"url"`
	TLSFiles
	Nested struct {
		On   bool   `json:"on"`
		Name string `json:"name,omitempty"`
	} `json:"nested"`
	Ignored string `json:"-"`
}

func (c *fakeConfig) Validate() error {
	if c.URL == "" {
		return Fieldf("url", "required")
	}
	return nil
}
func (c *fakeConfig) Namespace() bool { return Format(c.Format).Namespace() }

type fakeTarget struct{ cfg fakeConfig }

func (*fakeTarget) Send(context.Context, []delivery.Item) error { return nil }
func (*fakeTarget) Close() error                                { return nil }

func newFake(cfg fakeConfig, _ *slog.Logger) (*fakeTarget, error) { return &fakeTarget{cfg}, nil }

func TestKind(t *testing.T) {
	k := Define[fakeConfig](Kind{Name: "fake", Namespace: true, MaxBatch: 7, Params: []Param{
		{Name: "enable"}, {Name: "format"}, {Name: "url"}, {Name: "caFile"}, {Name: "clientCert,clientKey"},
		{Name: "nested.on"}, {Name: "nested.name"},
	}}, newFake)
	if err := k.CheckParams(); err != nil {
		t.Fatalf("CheckParams: %v", err)
	}
	cfg := k.NewConfig()
	if _, ok := cfg.(*fakeConfig); !ok {
		t.Fatalf("NewConfig: got %T, want *fakeConfig", cfg)
	}
	cfg.(*fakeConfig).URL = "http://x"
	if !k.IsNamespace(cfg) {
		t.Fatal("IsNamespace with an empty format: got false, want true")
	}
	cfg.(*fakeConfig).Format = "access"
	if k.IsNamespace(cfg) {
		t.Fatal("IsNamespace with format access: got true, want false")
	}
	tg, err := k.Build(cfg, nil)
	if err != nil || tg.(*fakeTarget).cfg.URL != "http://x" {
		t.Fatalf("Build(pointer): got %v, %v", tg, err)
	}
	if tg, err = k.Build(fakeConfig{URL: "v"}, nil); err != nil || tg.(*fakeTarget).cfg.URL != "v" {
		t.Fatalf("Build(value): got %v, %v", tg, err)
	}
	if _, err := k.Build(struct{}{}, nil); err == nil {
		t.Fatal("Build of a foreign configuration succeeded")
	}

	k.Params = append(k.Params[1:], Param{Name: "bogus"}, Param{Name: "url"})
	err = k.CheckParams()
	for _, want := range []string{"enable in Config but not documented", "bogus documented but not in Config", "url documented twice"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckParams: got %v, want it to say %q", err, want)
		}
	}
	noFormat := Kind{Name: "plain"}
	if noFormat.IsNamespace(cfg) {
		t.Error("IsNamespace of a kind without the format option: got true")
	}
}

package webhook

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/testkit/tlsca"
	"github.com/bucketrelay/bucketrelay/testkit/tlstest"
)

// TestTLSFailures checks that a wrong CA, a wrong host name and a plain
// endpoint fail with errors that say so, and that TLS files on an http://
// endpoint are refused rather than ignored.
func TestTLSFailures(t *testing.T) {
	s := tlsca.New(t, "")
	var hits atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	srv.TLS = s.ServerConfig(t, false)
	srv.StartTLS()
	defer srv.Close()
	plain := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer plain.Close()
	port := srv.Listener.Addr().String()[strings.LastIndex(srv.Listener.Addr().String(), ":")+1:]

	k := tlstest.Checker[Config]{New: func(c Config) (delivery.Target, error) { return New(c, nil) }}
	base := Config{Endpoint: srv.URL, TLSFiles: kit.TLSFiles{CAFile: s.CA.File}}
	if err := k.Send(t, base, 0); err != nil {
		t.Fatalf("send with the right CA: %v", err)
	}
	k.Fails(t, base, 0, []tlstest.Case[Config]{
		tlstest.Bad("wrong CA", func(c *Config) { c.CAFile = s.WrongCA.File }, tlsca.UnknownAuthorityText),
		tlstest.Bad("wrong host name", func(c *Config) { c.Endpoint = fmt.Sprintf("https://%s:%s", tlsca.WrongHost, port) }, tlsca.WrongHostText),
		tlstest.Bad("system CAs", func(c *Config) { c.CAFile = "" }, tlsca.UnknownAuthorityText),
		tlstest.Bad("plain endpoint", func(c *Config) { c.Endpoint = strings.Replace(plain.URL, "http://", "https://", 1) }, "server gave HTTP response to HTTPS client"),
	})
	if n := hits.Load(); n != 1 {
		t.Errorf("requests served: got %d, want 1", n)
	}
	var fe *kit.FieldError
	if _, err := New(Config{Endpoint: plain.URL, TLSFiles: kit.TLSFiles{CAFile: s.CA.File}}, nil); !errors.As(err, &fe) || fe.Field != "caFile" {
		t.Errorf("caFile with an http:// endpoint: got %v, want an error on caFile", err)
	}
}

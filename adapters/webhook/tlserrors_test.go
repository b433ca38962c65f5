package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/testkit/tlsca"
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

	send := func(cfg Config) error {
		tg, err := New(cfg, nil)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		defer tg.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return tg.Send(ctx, []delivery.Item{targettest.Item("tls", "k", event.ObjectCreatedPut, 0)})
	}
	if err := send(Config{Endpoint: srv.URL, TLSFiles: kit.TLSFiles{CAFile: s.CA.File}}); err != nil {
		t.Fatalf("send with the right CA: %v", err)
	}
	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"wrong CA", Config{Endpoint: srv.URL, TLSFiles: kit.TLSFiles{CAFile: s.WrongCA.File}}, tlsca.UnknownAuthorityText},
		{"wrong host name", Config{Endpoint: fmt.Sprintf("https://%s:%s", tlsca.WrongHost, port), TLSFiles: kit.TLSFiles{CAFile: s.CA.File}}, tlsca.WrongHostText},
		{"system CAs", Config{Endpoint: srv.URL}, tlsca.UnknownAuthorityText},
		{"plain endpoint", Config{Endpoint: strings.Replace(plain.URL, "http://", "https://", 1), TLSFiles: kit.TLSFiles{CAFile: s.CA.File}}, "server gave HTTP response to HTTPS client"},
	} {
		err := send(c.cfg)
		t.Logf("%s: %v", c.name, err)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("requests served: got %d, want 1", n)
	}
	var fe *kit.FieldError
	if _, err := New(Config{Endpoint: plain.URL, TLSFiles: kit.TLSFiles{CAFile: s.CA.File}}, nil); !errors.As(err, &fe) || fe.Field != "caFile" {
		t.Errorf("caFile with an http:// endpoint: got %v, want an error on caFile", err)
	}
}

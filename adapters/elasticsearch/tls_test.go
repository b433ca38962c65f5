package elasticsearch

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/adapters/elasticsearch/esfake"
	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/testkit/tlsca"
)

// TestTLS indexes into the stand-in node served over TLS with the test
// CA's certificate, and checks that a wrong CA, a wrong
// host name and a plain node fail, saying so, and that caFile with an
// http:// url is refused rather than ignored.
func TestTLS(t *testing.T) {
	s := tlsca.New(t, "")
	node, err := esfake.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer node.Stop()
	// The same node behind a TLS listener.
	front := httptest.NewUnstartedServer(node)
	front.TLS = s.ServerConfig(t, false)
	front.StartTLS()
	defer front.Close()
	port := front.Listener.Addr().String()[strings.LastIndex(front.Listener.Addr().String(), ":")+1:]

	send := func(cfg Config, i int) error {
		tg, err := New(cfg, nil)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		defer tg.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return tg.Send(ctx, []delivery.Item{targettest.Item("tls", fmt.Sprintf("k%d", i), event.ObjectCreatedPut, i)})
	}
	base := Config{Format: "access", URL: front.URL, Index: "relay-tls", CAFile: s.CA.File}
	if err := send(base, 0); err != nil {
		t.Fatalf("send over TLS with the right CA: %v", err)
	}
	for i, c := range []struct {
		name string
		cfg  func(c *Config)
		want string
	}{
		{"wrong CA", func(c *Config) { c.CAFile = s.WrongCA.File }, tlsca.UnknownAuthorityText},
		{"wrong host name", func(c *Config) { c.URL = fmt.Sprintf("https://%s:%s", tlsca.WrongHost, port) }, tlsca.WrongHostText},
		{"system CAs", func(c *Config) { c.CAFile = "" }, tlsca.UnknownAuthorityText},
		{"plain node", func(c *Config) { c.URL = strings.Replace(node.URL(), "http://", "https://", 1) }, "does not look like a TLS handshake"},
	} {
		cfg := base
		c.cfg(&cfg)
		err := send(cfg, 1+i)
		t.Logf("%s: %v", c.name, err)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
	if docs := node.Docs("relay-tls"); len(docs) != 1 {
		t.Errorf("index: got %d documents, want 1", len(docs))
	}
	var fe *kit.FieldError
	if _, err := New(Config{Format: "access", URL: node.URL(), Index: "relay-tls", CAFile: s.CA.File}, nil); !errors.As(err, &fe) || fe.Field != "caFile" {
		t.Errorf("caFile with an http:// url: got %v, want an error on caFile", err)
	}
}

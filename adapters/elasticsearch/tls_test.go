package elasticsearch

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bucketrelay/bucketrelay/adapters/elasticsearch/esfake"
	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/testkit/tlsca"
	"github.com/bucketrelay/bucketrelay/testkit/tlstest"
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

	k := tlstest.Checker[Config]{New: func(c Config) (delivery.Target, error) { return New(c, nil) }}
	base := Config{Format: "access", URL: front.URL, Index: "relay-tls", CAFile: s.CA.File}
	if err := k.Send(t, base, 0); err != nil {
		t.Fatalf("send over TLS with the right CA: %v", err)
	}
	k.Fails(t, base, 1, []tlstest.Case[Config]{
		tlstest.Bad("wrong CA", func(c *Config) { c.CAFile = s.WrongCA.File }, tlsca.UnknownAuthorityText),
		tlstest.Bad("wrong host name", func(c *Config) { c.URL = fmt.Sprintf("https://%s:%s", tlsca.WrongHost, port) }, tlsca.WrongHostText),
		tlstest.Bad("system CAs", func(c *Config) { c.CAFile = "" }, tlsca.UnknownAuthorityText),
		tlstest.Bad("plain node", func(c *Config) { c.URL = strings.Replace(node.URL(), "http://", "https://", 1) }, "does not look like a TLS handshake"),
	})
	if docs := node.Docs("relay-tls"); len(docs) != 1 {
		t.Errorf("index: got %d documents, want 1", len(docs))
	}
	var fe *kit.FieldError
	if _, err := New(Config{Format: "access", URL: node.URL(), Index: "relay-tls", CAFile: s.CA.File}, nil); !errors.As(err, &fe) || fe.Field != "caFile" {
		t.Errorf("caFile with an http:// url: got %v, want an error on caFile", err)
	}
}

package relay

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/testkit/tlsca"
)

// TestClientCAReload: a replaced relay.tls.clientCA file takes effect at
// the next handshake, without a restart: clients of the new CA get in,
// those of the old one no longer do; a replacement that does not load is
// logged once and the previous CAs stay.
func TestClientCAReload(t *testing.T) {
	dir := t.TempDir()
	oldCA, newCA := tlsca.NewCA(t, dir, "old"), tlsca.NewCA(t, dir, "new")
	server := oldCA.Server(t, "relay", tlsca.Loopback...)
	oldClient, newClient := oldCA.Client(t, "old-client", "a"), newCA.Client(t, "new-client", "b")
	caFile := filepath.Join(dir, "clientCA.pem")
	bump := time.Now()
	install := func(pem []byte) {
		t.Helper()
		if err := os.WriteFile(caFile, pem, 0o600); err != nil {
			t.Fatal(err)
		}
		// A distinct modification time even on a coarse clock.
		bump = bump.Add(time.Second)
		if err := os.Chtimes(caFile, bump, bump); err != nil {
			t.Fatal(err)
		}
	}
	read := func(f string) []byte {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	install(read(oldCA.File))

	var logs bytes.Buffer
	tc, err := ServerTLSConfig(TLSSettings{Cert: server.Cert, Key: server.Key, ClientCA: caFile}, newTestLogger(&logs))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) }))
	srv.TLS = tc
	srv.StartTLS()
	t.Cleanup(srv.Close)

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(read(oldCA.File))
	// admitted reports whether a new connection with the client's
	// certificate gets a response.
	admitted := func(p tlsca.Pair) bool {
		t.Helper()
		cert, err := tls.LoadX509KeyPair(p.Cert, p.Key)
		if err != nil {
			t.Fatal(err)
		}
		c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			DisableKeepAlives: true,
			TLSClientConfig:   &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}},
		}}
		resp, err := c.Get(srv.URL)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	check := func(when string, wantOld, wantNew bool) {
		t.Helper()
		if got := admitted(oldClient); got != wantOld {
			t.Errorf("%s: client of the old CA admitted %v, want %v", when, got, wantOld)
		}
		if got := admitted(newClient); got != wantNew {
			t.Errorf("%s: client of the new CA admitted %v, want %v", when, got, wantNew)
		}
	}

	check("at start", true, false)
	install(read(newCA.File))
	check("after the file changed to the new CA", false, true)
	install([]byte("not a certificate"))
	check("after a broken CA file", false, true)
	if n := strings.Count(logs.String(), "does not load"); n != 1 {
		t.Fatalf("got %d error lines for one bad change, want 1:\n%s", n, logs.String())
	}
	install(append(read(oldCA.File), read(newCA.File)...))
	check("after the file holds both CAs", true, true)
}

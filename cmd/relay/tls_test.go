package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/testkit/syncbuf"
	"github.com/bucketrelay/bucketrelay/testkit/tlsca"
)

// tlsRelay is a relay served over HTTPS by `relay serve`, with files made
// by a test CA.
type tlsRelay struct {
	url                       string
	dir                       string
	ca                        *tlsca.CA
	certFile, keyFile         string
	cliCert, cliKey           string
	otherCA                   *tlsca.CA // a CA the relay does not trust
	strangerCert, strangerKey string
}

// serveTLS serves a relay with relay.tls (and relay.tls.clientCA when
// mutual) and one webhook target to endpoint routed from bucket images.
func serveTLS(t *testing.T, endpoint string, mutual bool) *tlsRelay {
	t.Helper()
	tr := &tlsRelay{dir: t.TempDir()}
	tr.ca = tlsca.NewCA(t, tr.dir, "ca")
	srv := tr.ca.Server(t, "relay", tlsca.Loopback...)
	tr.certFile, tr.keyFile = srv.Cert, srv.Key
	cli := tr.ca.Client(t, "operator", "operator")
	tr.cliCert, tr.cliKey = cli.Cert, cli.Key
	tr.otherCA = tlsca.NewCA(t, tr.dir, "other-ca")
	stranger := tr.otherCA.Client(t, "stranger", "stranger")
	tr.strangerCert, tr.strangerKey = stranger.Cert, stranger.Key
	clientCA := ""
	if mutual {
		clientCA = fmt.Sprintf(`,"clientCA":%q`, tr.ca.File)
	}
	path := filepath.Join(tr.dir, "relay.json")
	os.WriteFile(path, []byte(fmt.Sprintf(`{"relay":{"dataDir":%q,"listen":"127.0.0.1:0","minBackoff":"10ms","maxBackoff":"100ms",
"tls":{"cert":%q,"key":%q%s}},
"notify":{"webhook":{"1":{"enable":true,"endpoint":%q}}},
"buckets":{"images":[{"arn":%q,"events":["put"]}]}}`, filepath.Join(tr.dir, "data"), tr.certFile, tr.keyFile, clientCA, endpoint, hookARN)), 0o600)
	tr.url = "https://" + runServe(t, "--config", path)
	return tr
}

// client returns an HTTPS client trusting caFile ("" : the system's CAs)
// and presenting cert/key when given.
func tlsClient(t *testing.T, caFile, cert, key string) *http.Client {
	t.Helper()
	tc := &tls.Config{}
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			t.Fatal(err)
		}
		tc.RootCAs = x509.NewCertPool()
		tc.RootCAs.AppendCertsFromPEM(b)
	}
	if cert != "" {
		kp, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		tc.Certificates = []tls.Certificate{kp}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc, DisableKeepAlives: true}, Timeout: 10 * time.Second}
}

// TestHTTPS: relay.tls serves the API over HTTPS; a client trusting the
// CA gets answers, one without it is refused by its own verification, and
// plain HTTP gets no API.
func TestHTTPS(t *testing.T) {
	tr := serveTLS(t, newTestReceiver(t).URL(), false)
	resp, err := tlsClient(t, tr.ca.File, "", "").Get(tr.url + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz with the CA: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("GET /healthz: got %s (TLS %v), want 200 over TLS", resp.Status, resp.TLS != nil)
	}
	if _, err := tlsClient(t, "", "", "").Get(tr.url + "/healthz"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("GET without the CA: got %v, want a certificate error", err)
	}
	if _, err := tlsClient(t, tr.otherCA.File, "", "").Get(tr.url + "/healthz"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("GET trusting another CA: got %v, want a certificate error", err)
	}
	plain := strings.Replace(tr.url, "https://", "http://", 1)
	if resp, err := http.Get(plain + "/v1/targets"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatalf("plain HTTP to the HTTPS port: got %s, want no API answer", resp.Status)
		}
	}
}

// TestMutualTLS: with relay.tls.clientCA a client without a certificate,
// or with one from another CA, cannot complete a request; one with a
// certificate from the CA can.
func TestMutualTLS(t *testing.T) {
	tr := serveTLS(t, newTestReceiver(t).URL(), true)
	get := func(cert, key string) error {
		resp, err := tlsClient(t, tr.ca.File, cert, key).Get(tr.url + "/v1/targets")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s", resp.Status)
		}
		return nil
	}
	if err := get("", ""); err == nil {
		t.Fatal("GET without a client certificate: got 200, want refused")
	}
	if err := get(tr.strangerCert, tr.strangerKey); err == nil {
		t.Fatal("GET with a certificate of another CA: got 200, want refused")
	}
	if err := get(tr.cliCert, tr.cliKey); err != nil {
		t.Fatalf("GET with the operator's certificate: %v", err)
	}
}

// TestCertificateRotation: replacing the certificate files is picked up
// by the running relay at the next handshake; a broken replacement keeps
// the previous certificate in service.
func TestCertificateRotation(t *testing.T) {
	tr := serveTLS(t, newTestReceiver(t).URL(), false)
	served := func() string {
		t.Helper()
		resp, err := tlsClient(t, tr.ca.File, "", "").Get(tr.url + "/healthz")
		if err != nil {
			t.Fatalf("GET /healthz: %v", err)
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].SerialNumber.String()
	}
	first := tlsca.Serial(t, tr.certFile).String()
	if got := served(); got != first {
		t.Fatalf("served certificate serial: got %s, want %s", got, first)
	}
	// A half-rotated pair (a key that does not match) is not served.
	strayKey := tr.ca.Server(t, "stray", tlsca.Loopback...).Key
	b, _ := os.ReadFile(strayKey)
	os.WriteFile(tr.keyFile+".new", b, 0o600)
	os.Rename(tr.keyFile+".new", tr.keyFile)
	if got := served(); got != first {
		t.Fatalf("after a mismatched key: served %s, want the previous %s", got, first)
	}
	// The new pair, written where the configuration points.
	tr.ca.Server(t, "relay", tlsca.Loopback...)
	second := tlsca.Serial(t, tr.certFile).String()
	if second == first {
		t.Fatal("the test CA reissued the same serial")
	}
	eventually(t, "the new certificate served", func() bool { return served() == second })
}

// TestCLIOverHTTPS: the commands that call the API work against an HTTPS
// relay with --cacert (or RELAY_CACERT) and, for mutual TLS, --cert and
// --key; without the CA they fail naming the certificate problem.
func TestCLIOverHTTPS(t *testing.T) {
	rcv := newTestReceiver(t)
	tr := serveTLS(t, rcv.URL(), true)
	tlsArgs := []string{"--server", tr.url, "--cacert", tr.ca.File, "--cert", tr.cliCert, "--key", tr.cliKey}

	var out bytes.Buffer
	if err := (&eventsCommand{out: &out}).Run(context.Background(), append([]string{"add", "docs", hookARN, "--suffix", ".pdf"}, tlsArgs...)); err != nil {
		t.Fatalf("events add over HTTPS: %v", err)
	}
	out.Reset()
	if err := (&eventsCommand{out: &out}).Run(context.Background(), append([]string{"list", "docs"}, tlsArgs...)); err != nil || !strings.Contains(out.String(), hookARN) {
		t.Fatalf("events list over HTTPS: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := (&targetsCommand{out: &out}).Run(context.Background(), append([]string{"--json"}, tlsArgs...)); err != nil || !strings.Contains(out.String(), `"arn":"`+hookARN+`"`) {
		t.Fatalf("targets over HTTPS: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := (&quarantineCommand{out: &out, errOut: &out}).Run(context.Background(), append([]string{"list", hookARN}, tlsArgs...)); err != nil {
		t.Fatalf("quarantine list over HTTPS: %v\n%s", err, out.String())
	}

	// The environment instead of flags.
	t.Setenv("RELAY_CACERT", tr.ca.File)
	t.Setenv("RELAY_CERT", tr.cliCert)
	t.Setenv("RELAY_KEY", tr.cliKey)
	out.Reset()
	if err := (&targetsCommand{out: &out}).Run(context.Background(), []string{"--json", "--server", tr.url}); err != nil {
		t.Fatalf("targets with RELAY_CACERT/RELAY_CERT/RELAY_KEY: %v", err)
	}

	// watch streams over HTTPS.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wout := &syncbuf.Buffer{}
	wdone := make(chan error, 1)
	go func() { wdone <- (&watchCommand{out: wout}).Run(ctx, []string{"images", "--server", tr.url}) }()
	eventually(t, "the watch printing an event", func() bool {
		postTLS(t, tr, 1)
		return strings.Contains(wout.String(), "images/obj-1.jpg")
	})
	cancel()
	if err := <-wdone; err != nil {
		t.Fatalf("watch over HTTPS: %v", err)
	}

	// rewind and the commands that change targets go through the same
	// client: they used http.DefaultClient, which ignored --cacert.
	out.Reset()
	// What the relay answers depends on what it still retains; that it
	// answered is the point.
	if err := (&targetsCommand{out: &out}).Run(context.Background(), append([]string{"rewind", hookARN, "--to-seq", "1"}, tlsArgs...)); err != nil && !strings.Contains(err.Error(), "(HTTP ") {
		t.Fatalf("targets rewind over HTTPS: got %v, want the relay's answer\n%s", err, out.String())
	}
	if err := (&targetsCommand{out: &out}).Run(context.Background(), append([]string{"remove", "arn:minio:sqs::9:webhook"}, tlsArgs...)); err == nil || !strings.Contains(err.Error(), "no such target") {
		t.Fatalf("targets remove of an unknown target over HTTPS: got %v, want the relay's \"no such target\"", err)
	}

	t.Setenv("RELAY_CACERT", "")
	err := (&targetsCommand{out: &out}).Run(context.Background(), []string{"--server", tr.url})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("targets without the CA: got %v, want a certificate error", err)
	}
	err = (&targetsCommand{out: &out}).Run(context.Background(), []string{"--server", tr.url, "--cacert", filepath.Join(tr.dir, "missing.pem")})
	if err == nil || !strings.Contains(err.Error(), "--cacert") {
		t.Fatalf("targets with a missing --cacert: got %v, want an error naming --cacert", err)
	}
	t.Setenv("RELAY_KEY", "")
	if code := run(context.Background(), []string{"targets", "--server", tr.url, "--cert", tr.cliCert}); code != 2 {
		t.Fatalf("--cert without --key: exit %d, want 2", code)
	}
}

// postTLS posts event n for images/obj-n.jpg to the HTTPS relay with the
// operator's certificate.
func postTLS(t *testing.T, tr *tlsRelay, n int) {
	t.Helper()
	body := fmt.Sprintf(`{"Records":[{"eventVersion":"2.0","eventSource":"minio:s3","eventTime":"2026-01-01T00:00:00Z","eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"images"},"object":{"key":"obj-%d.jpg","size":1}}}]}`, n)
	resp, err := tlsClient(t, tr.ca.File, tr.cliCert, tr.cliKey).Post(tr.url+"/v1/events", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /v1/events: %s", resp.Status)
	}
}

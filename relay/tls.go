package relay

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// TLSSettings is the file's "relay.tls" object: the API is served over
// HTTPS with the certificate and key in Cert and Key, and, when ClientCA
// is set, only to clients presenting a certificate signed by one of its
// CAs (mutual TLS). relay.metricsListen stays plain HTTP.
type TLSSettings struct {
	// Cert is the PEM file of the server's certificate (its chain may
	// follow it); required.
	Cert string `json:"cert"`
	// Key is the PEM file of the certificate's private key; required.
	Key string `json:"key"`
	// ClientCA, if set, is a PEM file of CAs: every client must present a
	// certificate they signed; empty means client certificates are
	// neither asked for nor checked. It is read again after it changed,
	// as Cert and Key are.
	ClientCA string `json:"clientCA,omitempty"`
}

// validate checks the block and reads its files once, so that a bad path
// or a mismatched pair is refused at start with the field that names it.
func (s *TLSSettings) validate() error {
	if s.Cert == "" {
		return &ConfigError{Path: "relay.tls.cert", Msg: "required (a PEM certificate file)"}
	}
	if s.Key == "" {
		return &ConfigError{Path: "relay.tls.key", Msg: "required (the PEM file of the certificate's private key)"}
	}
	for _, f := range []struct{ path, file string }{{"relay.tls.cert", s.Cert}, {"relay.tls.key", s.Key}} {
		if _, err := os.Stat(f.file); err != nil {
			return &ConfigError{Path: f.path, Msg: err.Error()}
		}
	}
	if _, err := tls.LoadX509KeyPair(s.Cert, s.Key); err != nil {
		return &ConfigError{Path: "relay.tls.cert", Msg: fmt.Sprintf("with relay.tls.key: %v", err)}
	}
	if s.ClientCA != "" {
		if _, err := loadPool(s.ClientCA); err != nil {
			return &ConfigError{Path: "relay.tls.clientCA", Msg: err.Error()}
		}
	}
	return nil
}

func loadPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("no PEM certificate in %s", file)
	}
	return pool, nil
}

// ServerTLSConfig returns the server TLS configuration (TLS 1.2 at least)
// for s. The certificate and key are read now and read again at a
// handshake after either file changed (size or modification time): a
// renewed certificate is served without a restart. A new pair that does
// not load (unreadable, mismatched, half written) is logged on lg (nil:
// slog.Default()) and the previous pair is served until the files change
// again. With ClientCA, clients must present a certificate it verifies;
// the file is read again at a handshake after it changed, and a new file
// that does not load is logged and the previous CAs kept, likewise.
func ServerTLSConfig(s TLSSettings, lg *slog.Logger) (*tls.Config, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	if lg == nil {
		lg = slog.Default()
	}
	cr := &certReloader{certFile: s.Cert, keyFile: s.Key, lg: lg}
	if err := cr.load(); err != nil {
		return nil, err
	}
	tc := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: cr.get,
		NextProtos:     []string{"h2", "http/1.1"},
	}
	if s.ClientCA != "" {
		pool, err := loadPool(s.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("relay: relay.tls.clientCA: %w", err)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
		newCAReloader(tc, s.ClientCA, lg)
	}
	return tc, nil
}

// fileStamp tells whether a file changed.
type fileStamp struct {
	size int64
	mod  time.Time
}

func stampOf(file string) (fileStamp, error) {
	fi, err := os.Stat(file)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi.Size(), fi.ModTime()}, nil
}

// certReloader serves a certificate pair and reloads it when its files
// change.
type certReloader struct {
	certFile, keyFile string
	lg                *slog.Logger

	mu   sync.Mutex
	cert *tls.Certificate
	// seen are the stamps of the files last tried, loaded or not: a bad
	// pair is tried (and logged) once per change, not at every handshake.
	seen [2]fileStamp
}

// load reads the pair; on failure the pair served stays.
func (c *certReloader) load() error {
	cs, err1 := stampOf(c.certFile)
	ks, err2 := stampOf(c.keyFile)
	if err1 == nil && err2 == nil {
		c.seen = [2]fileStamp{cs, ks}
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("relay: relay.tls: loading the certificate and key: %w", err)
	}
	c.cert = &cert
	return nil
}

// get is tls.Config.GetCertificate: it checks the files' stamps (two
// stats, no read) and reloads the pair when they changed.
func (c *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs, err1 := stampOf(c.certFile)
	ks, err2 := stampOf(c.keyFile)
	if err1 == nil && err2 == nil && [2]fileStamp{cs, ks} != c.seen {
		if err := c.load(); err != nil {
			c.lg.Error("the new TLS certificate does not load; serving the previous one", "cert", c.certFile, "key", c.keyFile, "err", err)
		} else {
			c.lg.Info("TLS certificate reloaded", "cert", c.certFile, "notAfter", c.cert.Leaf.NotAfter)
		}
	}
	return c.cert, nil
}

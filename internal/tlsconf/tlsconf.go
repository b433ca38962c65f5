// Package tlsconf reads the PEM files of a client TLS configuration. It is
// the file-reading half of the adapters' TLS block (adapters/kit.TLSFiles),
// kept apart so that it depends on nothing of the relay's.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// Error is a failure to use one of the files. Field is "caFile" or
// "clientCert", the parameter that named the file.
type Error struct {
	Field string
	Err   error
}

// Error names the field and the failure.
func (e *Error) Error() string { return "tlsconf: " + e.Field + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Load returns a client TLS configuration (TLS 1.2 at least) that trusts
// the CAs in caFile instead of the system's, and presents the certificate
// in certFile with the key in keyFile. An empty caFile keeps the system's
// CAs; an empty certFile presents no certificate. With all three empty it
// returns that bare configuration, never nil: whether TLS is used at all,
// and the ServerName or InsecureSkipVerify, is the caller's to set.
//
// Errors are *Error with Field "caFile" (unreadable file, no PEM
// certificate in it) or "clientCert" (unreadable or mismatched certificate
// and key, or a certificate without its key).
func Load(caFile, certFile, keyFile string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, &Error{Field: "caFile", Err: err}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &Error{Field: "caFile", Err: fmt.Errorf("no PEM certificate in %s", caFile)}
		}
		tc.RootCAs = pool
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, &Error{Field: "clientCert", Err: err}
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Package tlsconf builds the client TLS configuration the adapters share
// from the PEM files named in a target's configuration.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"os"

	"github.com/bucketrelay/bucketrelay/delivery"
)

// Load returns a client TLS configuration (TLS 1.2 at least) that trusts
// the CAs in caFile instead of the system's, and presents the certificate
// in certFile with the key in keyFile. An empty caFile keeps the system's
// CAs; an empty certFile presents no certificate. With all three empty it
// returns that bare configuration, never nil: whether TLS is used at all,
// and the ServerName or InsecureSkipVerify, is the caller's to set.
//
// Errors are *delivery.FieldError naming prefix+"caFile" (unreadable file,
// no PEM certificate in it) or prefix+"clientCert" (unreadable or
// mismatched certificate and key, or a certificate without its key), where
// prefix is the path of the fields' object in the configuration file: ""
// for top-level fields, "tls." for kafka's.
func Load(prefix, caFile, certFile, keyFile string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, delivery.Fieldf(prefix+"caFile", "%v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, delivery.Fieldf(prefix+"caFile", "no PEM certificate in %s", caFile)
		}
		tc.RootCAs = pool
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, delivery.Fieldf(prefix+"clientCert", "%v", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

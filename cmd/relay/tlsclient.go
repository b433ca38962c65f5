package main

import (
	"errors"
	"flag"
	"net/http"

	"github.com/bucketrelay/bucketrelay/internal/tlsconf"
)

// tlsFlags are the TLS settings of the commands that call a relay's API
// over HTTPS (relay.tls): the CA to trust and, for a relay that requires
// client certificates (relay.tls.clientCA), the certificate to present.
type tlsFlags struct {
	cacert, cert, key string
}

// register adds --cacert, --cert and --key to fs. Their defaults come
// from RELAY_CACERT, RELAY_CERT and RELAY_KEY when the flags are not given.
func (t *tlsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&t.cacert, "cacert", "", "PEM file of the CA that signed the relay's certificate, for https (default $RELAY_CACERT, else the system's CAs)")
	fs.StringVar(&t.cert, "cert", "", "PEM client certificate, for a relay with relay.tls.clientCA (default $RELAY_CERT)")
	fs.StringVar(&t.key, "key", "", "PEM key of --cert (default $RELAY_KEY)")
}

// httpClient returns the client for the relay's API: http.DefaultClient
// when no TLS setting is given, else one trusting --cacert and presenting
// --cert. Errors name the flag and are usage errors.
func (t *tlsFlags) httpClient() (*http.Client, error) {
	ca := envOr(t.cacert, "RELAY_CACERT", "")
	cert := envOr(t.cert, "RELAY_CERT", "")
	key := envOr(t.key, "RELAY_KEY", "")
	if ca == "" && cert == "" && key == "" {
		return http.DefaultClient, nil
	}
	if (cert == "") != (key == "") {
		return nil, usagef("--cert and --key go together (or RELAY_CERT and RELAY_KEY)")
	}
	tc, err := tlsconf.Load(ca, cert, key)
	if err != nil {
		var te *tlsconf.Error
		if errors.As(err, &te) {
			flagName := "--cacert"
			if te.Field == "clientCert" {
				flagName = "--cert"
			}
			return nil, usagef("%s: %v", flagName, te.Err)
		}
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return &http.Client{Transport: tr}, nil
}

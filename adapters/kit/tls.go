package kit

import (
	"crypto/tls"
	"errors"

	"github.com/bucketrelay/bucketrelay/internal/tlsconf"
)

// TLSFiles is the TLS block of a target's configuration: the PEM files of
// the CAs to trust and of the client certificate. Adapters embed it in
// their Config, so its fields sit beside the others in the file
// ("caFile", "clientCert", "clientKey"), or in a "tls" object (Kafka).
// The zero value trusts the system's CAs and presents no certificate.
type TLSFiles struct {
	// CAFile is a PEM file of CAs to trust instead of the system's; empty
	// means the system's.
	CAFile string `json:"caFile,omitempty"`
	// ClientCert and ClientKey are PEM files for TLS client
	// authentication; both or neither (empty: no client certificate).
	ClientCert string `json:"clientCert,omitempty"`
	ClientKey  string `json:"clientKey,omitempty"`
}

// IsSet reports whether any file is named: several adapters turn TLS on
// when one is.
func (f *TLSFiles) IsSet() bool { return f.CAFile != "" || f.ClientCert != "" || f.ClientKey != "" }

// Validate checks that ClientCert and ClientKey go together. prefix is the
// path of the block's object in the target's configuration: "" for
// top-level fields, "tls." for Kafka's. Errors are *FieldError.
func (f *TLSFiles) Validate(prefix string) error {
	if (f.ClientCert == "") != (f.ClientKey == "") {
		return Fieldf(prefix+"clientCert", "clientCert and clientKey go together")
	}
	return nil
}

// Config reads the files and returns a client TLS configuration (TLS 1.2 at
// least) for serverName (empty: the caller's dialer sets it). Errors are
// *FieldError naming prefix+"caFile" (unreadable, or no PEM certificate
// in it) or prefix+"clientCert" (unreadable, mismatched or missing key).
func (f *TLSFiles) Config(prefix, serverName string) (*tls.Config, error) {
	if err := f.Validate(prefix); err != nil {
		return nil, err
	}
	tc, err := tlsconf.Load(f.CAFile, f.ClientCert, f.ClientKey)
	if err != nil {
		var te *tlsconf.Error
		if errors.As(err, &te) {
			return nil, Fieldf(prefix+te.Field, "%v", te.Err)
		}
		return nil, err
	}
	tc.ServerName = serverName
	return tc, nil
}

// RequireTLSScheme returns a *FieldError on caFile or clientCert when one
// is named but the target's URL does not use TLS (secure false): the
// files would be ignored and events sent in plain text. what names the
// URL that is needed, for the message ("an https:// endpoint").
func RequireTLSScheme(f *TLSFiles, secure bool, what string) error {
	switch {
	case secure:
		return nil
	case f.CAFile != "":
		return Fieldf("caFile", "needs %s (the file would be ignored over plain text)", what)
	case f.ClientCert != "":
		return Fieldf("clientCert", "needs %s (the file would be ignored over plain text)", what)
	}
	return nil
}

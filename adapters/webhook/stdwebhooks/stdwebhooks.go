// Package stdwebhooks signs and verifies webhook requests as Standard
// Webhooks 1.0 specifies (https://www.standardwebhooks.com).
//
// A signed request carries three headers: webhook-id (the message id, the
// same on every retry, so a receiver can drop duplicates), webhook-timestamp
// (Unix seconds of this attempt) and webhook-signature, a space-separated
// list of "v1,<base64 HMAC-SHA256>" signatures of "id.timestamp.body", one
// per secret. Secrets are given in the "whsec_<base64>" form; several
// secrets at once let an endpoint rotate its secret without losing requests.
package stdwebhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of the specification.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every secret in its textual form.
const SecretPrefix = "whsec_"

// DefaultTolerance is how far a request's timestamp may be from the
// receiver's clock, in either direction, before Verify rejects it.
const DefaultTolerance = 5 * time.Minute

// Errors returned by Verify.
var (
	// ErrMissingHeader is returned when one of the three headers is absent.
	ErrMissingHeader = errors.New("stdwebhooks: missing header")
	// ErrTimestamp is returned when the timestamp is malformed or outside
	// the tolerance (a replayed or delayed request).
	ErrTimestamp = errors.New("stdwebhooks: timestamp outside the tolerance")
	// ErrSignature is returned when no signature matches any secret.
	ErrSignature = errors.New("stdwebhooks: no matching signature")
)

// ParseSecret decodes a secret in the "whsec_<base64>" form (the prefix may
// be omitted). The error never contains the secret.
func ParseSecret(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, SecretPrefix))
	if err != nil {
		return nil, errors.New("stdwebhooks: secret is not whsec_ followed by base64")
	}
	if len(key) == 0 {
		return nil, errors.New("stdwebhooks: empty secret")
	}
	return key, nil
}

// Signer signs requests with one or more secrets. It is safe for
// concurrent use.
type Signer struct {
	keys [][]byte
}

// NewSigner returns a signer for the given secrets ("whsec_<base64>"). An
// error names the position of the malformed secret, never its value.
func NewSigner(secrets ...string) (*Signer, error) {
	if len(secrets) == 0 {
		return nil, errors.New("stdwebhooks: no secret")
	}
	s := &Signer{}
	for i, sec := range secrets {
		k, err := ParseSecret(sec)
		if err != nil {
			return nil, fmt.Errorf("secret %d: %w", i+1, err)
		}
		s.keys = append(s.keys, k)
	}
	return s, nil
}

// Sign returns the webhook-signature value for a message: one
// "v1,<signature>" per secret, separated by spaces.
func (s *Signer) Sign(id string, ts time.Time, body []byte) string {
	var b strings.Builder
	unix := strconv.FormatInt(ts.Unix(), 10)
	for i, k := range s.keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("v1,")
		b.WriteString(sign(k, id, unix, body))
	}
	return b.String()
}

// SetHeaders sets the three headers of a signed request on h.
func (s *Signer) SetHeaders(h http.Header, id string, ts time.Time, body []byte) {
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, s.Sign(id, ts, body))
}

func sign(key []byte, id, unix string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(unix))
	m.Write([]byte{'.'})
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Verify checks a received request as a consumer would: the three headers
// present, the timestamp within tolerance of now (0 means
// DefaultTolerance), and at least one v1 signature made with one of the
// secrets. It is here for receivers written in Go and for tests.
func Verify(h http.Header, body []byte, now time.Time, tolerance time.Duration, secrets ...string) error {
	id, ts, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || ts == "" || sigs == "" {
		return ErrMissingHeader
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrTimestamp
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if d := now.Sub(time.Unix(unix, 0)); d > tolerance || d < -tolerance {
		return ErrTimestamp
	}
	for _, sec := range secrets {
		k, err := ParseSecret(sec)
		if err != nil {
			return err
		}
		want := sign(k, id, ts, body)
		for _, f := range strings.Fields(sigs) {
			v, sig, ok := strings.Cut(f, ",")
			if ok && v == "v1" && hmac.Equal([]byte(sig), []byte(want)) {
				return nil
			}
		}
	}
	return ErrSignature
}

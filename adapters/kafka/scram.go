package kafka

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

// scramClient is the client side of SASL SCRAM (RFC 5802) for sarama's
// SCRAMClient interface, with SHA-256 or SHA-512. Passwords are used as
// given (no SASLprep), which is exact for ASCII passwords.
type scramClient struct {
	newHash func() hash.Hash
	user    string
	pass    string
	authz   string

	step       int
	nonce      string
	firstBare  string // client-first-message-bare
	serverSig  []byte
	done       bool
	fixedNonce string // tests only
}

func newSCRAM256() *scramClient { return &scramClient{newHash: sha256.New} }
func newSCRAM512() *scramClient { return &scramClient{newHash: sha512.New} }

var errSCRAM = errors.New("kafka: sasl scram")

// Begin prepares the exchange for user and password.
func (c *scramClient) Begin(user, pass, authz string) error {
	c.user, c.pass, c.authz = user, pass, authz
	c.step, c.done = 0, false
	return nil
}

func saslName(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}

func (c *scramClient) gs2Header() string {
	if c.authz == "" {
		return "n,,"
	}
	return "n,a=" + saslName(c.authz) + ","
}

// Step answers the server's challenge; the first call takes "".
func (c *scramClient) Step(challenge string) (string, error) {
	c.step++
	switch c.step {
	case 1:
		c.nonce = c.fixedNonce
		if c.nonce == "" {
			b := make([]byte, 24)
			if _, err := rand.Read(b); err != nil {
				return "", fmt.Errorf("%w: nonce: %v", errSCRAM, err)
			}
			c.nonce = base64.RawStdEncoding.EncodeToString(b)
		}
		c.firstBare = "n=" + saslName(c.user) + ",r=" + c.nonce
		return c.gs2Header() + c.firstBare, nil
	case 2:
		return c.final(challenge)
	case 3:
		c.done = true
		if strings.HasPrefix(challenge, "e=") {
			return "", fmt.Errorf("%w: server: %s", errSCRAM, challenge[2:])
		}
		v, ok := strings.CutPrefix(challenge, "v=")
		if !ok {
			return "", fmt.Errorf("%w: unexpected server-final message", errSCRAM)
		}
		sig, err := base64.StdEncoding.DecodeString(v)
		if err != nil || !hmac.Equal(sig, c.serverSig) {
			return "", fmt.Errorf("%w: the server's signature does not match", errSCRAM)
		}
		return "", nil
	}
	return "", fmt.Errorf("%w: unexpected step", errSCRAM)
}

// final computes the client-final message from the server-first one.
func (c *scramClient) final(serverFirst string) (string, error) {
	var nonce, salt64, iters string
	for _, attr := range strings.Split(serverFirst, ",") {
		k, v, _ := strings.Cut(attr, "=")
		switch k {
		case "r":
			nonce = v
		case "s":
			salt64 = v
		case "i":
			iters = v
		case "e":
			return "", fmt.Errorf("%w: server: %s", errSCRAM, v)
		}
	}
	if !strings.HasPrefix(nonce, c.nonce) || len(nonce) == len(c.nonce) {
		return "", fmt.Errorf("%w: the server's nonce does not extend ours", errSCRAM)
	}
	salt, err := base64.StdEncoding.DecodeString(salt64)
	if err != nil {
		return "", fmt.Errorf("%w: bad salt", errSCRAM)
	}
	n, err := strconv.Atoi(iters)
	if err != nil || n < 1 {
		return "", fmt.Errorf("%w: bad iteration count", errSCRAM)
	}
	salted, err := pbkdf2.Key(c.newHash, c.pass, salt, n, c.newHash().Size())
	if err != nil {
		return "", fmt.Errorf("%w: %v", errSCRAM, err)
	}
	withoutProof := "c=" + base64.StdEncoding.EncodeToString([]byte(c.gs2Header())) + ",r=" + nonce
	authMsg := c.firstBare + "," + serverFirst + "," + withoutProof
	clientKey := c.hmac(salted, "Client Key")
	h := c.newHash()
	h.Write(clientKey)
	storedKey := h.Sum(nil)
	sig := c.hmac(storedKey, authMsg)
	proof := make([]byte, len(clientKey))
	for i := range proof {
		proof[i] = clientKey[i] ^ sig[i]
	}
	c.serverSig = c.hmac(c.hmac(salted, "Server Key"), authMsg)
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
}

func (c *scramClient) hmac(key []byte, msg string) []byte {
	m := hmac.New(c.newHash, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// Done reports whether the exchange is over.
func (c *scramClient) Done() bool { return c.done }

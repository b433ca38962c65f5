package nats

import (
	"errors"
	"os"
	"strings"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
)

// validateAuth checks that at most one way of authenticating is set.
func (c *Config) validateAuth() error {
	for _, f := range []struct {
		name string
		set  bool
	}{{"nkeySeed", c.NKeySeed != ""}, {"credentials", c.Credentials != ""}} {
		if !f.set {
			continue
		}
		switch {
		case c.Username != "":
			return kit.Fieldf(f.name, "%s and username are exclusive", f.name)
		case c.Token != "":
			return kit.Fieldf(f.name, "%s and token are exclusive", f.name)
		}
	}
	if c.NKeySeed != "" && c.Credentials != "" {
		return kit.Fieldf("credentials", "credentials and nkeySeed are exclusive (a credentials file holds its own seed)")
	}
	return nil
}

// authOption reads the nkey seed or the credentials file and returns the
// client option that authenticates with it; nil when neither is set.
// Errors name the field and the file, never the file's content.
func (c *Config) authOption() (natsgo.Option, error) {
	switch {
	case c.NKeySeed != "":
		b, err := os.ReadFile(c.NKeySeed)
		if err != nil {
			return nil, kit.Fieldf("nkeySeed", "%v", err)
		}
		kp, err := nkeys.ParseDecoratedNKey(b)
		if err != nil {
			return nil, kit.Fieldf("nkeySeed", "%s holds no nkey seed", c.NKeySeed)
		}
		pub, err := kp.PublicKey()
		if err != nil || !strings.HasPrefix(pub, "U") {
			return nil, kit.Fieldf("nkeySeed", "%s is not a user seed (SU…)", c.NKeySeed)
		}
		if _, err := kp.Seed(); err != nil {
			return nil, kit.Fieldf("nkeySeed", "%s holds a public key, not a seed", c.NKeySeed)
		}
		return natsgo.Nkey(pub, kp.Sign), nil
	case c.Credentials != "":
		b, err := os.ReadFile(c.Credentials)
		if err != nil {
			return nil, kit.Fieldf("credentials", "%v", err)
		}
		if err := checkCreds(b); err != nil {
			return nil, kit.Fieldf("credentials", "%s: %v", c.Credentials, err)
		}
		// The client reads the file at every connection.
		return natsgo.UserCredentials(c.Credentials), nil
	}
	return nil, nil
}

// checkCreds checks that b holds a user JWT and a user seed.
func checkCreds(b []byte) error {
	if jwt, err := nkeys.ParseDecoratedJWT(b); err != nil || strings.Count(jwt, ".") != 2 {
		return errors.New("no user JWT in it (a credentials file as nsc writes it)")
	}
	if _, err := nkeys.ParseDecoratedUserNKey(b); err != nil {
		return errors.New("no user nkey seed in it (a credentials file as nsc writes it)")
	}
	return nil
}

package tlsserver

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"

	"github.com/bucketrelay/bucketrelay/testkit/tlsca"
)

// NATSAuth selects how a NATS server authenticates clients.
type NATSAuth int

// NATS authentication modes.
const (
	// NATSNoAuth lets every client in.
	NATSNoAuth NATSAuth = iota
	// NATSNKey admits one user by its nkey (NATS.NKeySeedFile).
	NATSNKey
	// NATSJWT runs the server in operator mode (decentralised JWT
	// authentication, memory resolver) with one account that has
	// JetStream and one user whose credentials file is NATS.CredsFile.
	NATSJWT
)

// NATSOptions configures StartNATS. The zero value is a TLS server
// without client certificates or authentication.
type NATSOptions struct {
	// Plain turns TLS off (the tls block is left out).
	Plain bool
	// RequireClientCert refuses clients without a certificate signed by
	// the set's CA (tls { verify: true }).
	RequireClientCert bool
	// Auth is the authentication mode.
	Auth NATSAuth
}

// NATS is a running nats-server with JetStream.
type NATS struct {
	// Port is the client port on 127.0.0.1.
	Port int
	// NKeySeedFile holds the seed of the admitted user (NATSNKey), and
	// WrongNKeySeedFile that of a user the server does not know.
	NKeySeedFile, WrongNKeySeedFile string
	// CredsFile is the user's credentials file (NATSJWT), and
	// WrongCredsFile one for a user of an account the server does not
	// know.
	CredsFile, WrongCredsFile string
}

// Addr returns 127.0.0.1:Port.
func (n *NATS) Addr() string { return addr(n.Port) }

// StartNATS starts nats-server with JetStream, and unless o.Plain a tls
// block with s.Server (s may be nil when o.Plain).
func StartNATS(t testing.TB, s *tlsca.Set, o NATSOptions) *NATS {
	t.Helper()
	bin := binary(t, "nats", []string{"nats-server"}, "/usr/sbin")
	dir := t.TempDir()
	n := &NATS{Port: freePorts(t, 1)[0]}
	var conf strings.Builder
	fmt.Fprintf(&conf, "listen: %q\nserver_name: relay_tls_test\njetstream { store_dir: %q }\n", n.Addr(), filepath.Join(dir, "js"))
	if !o.Plain {
		fmt.Fprintf(&conf, "tls {\n  cert_file: %q\n  key_file: %q\n  ca_file: %q\n  verify: %t\n  timeout: 5\n}\n",
			s.Server.Cert, s.Server.Key, s.CA.File, o.RequireClientCert)
	}
	switch o.Auth {
	case NATSNKey:
		pub := n.nkeyUser(t, dir, "user.nk")
		n.WrongNKeySeedFile = filepath.Join(dir, "wrong.nk")
		n.nkeyUser(t, dir, "wrong.nk")
		fmt.Fprintf(&conf, "authorization { users: [ { nkey: %q } ] }\n", pub)
	case NATSJWT:
		n.operator(t, dir, &conf)
	}
	confFile := filepath.Join(dir, "nats.conf")
	writeFile(t, confFile, conf.String())
	p := startProc(t, "nats", filepath.Join(dir, "nats.log"), exec.Command(bin, "-c", confFile))
	p.waitPorts(t, n.Addr())
	return n
}

// nkeyUser makes a user key pair, writes its seed to dir/name and returns
// its public key.
func (n *NATS) nkeyUser(t testing.TB, dir, name string) string {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatalf("tlsserver: %v", err)
	}
	seed, _ := kp.Seed()
	pub, _ := kp.PublicKey()
	file := filepath.Join(dir, name)
	writeFile(t, file, string(seed)+"\n")
	if n.NKeySeedFile == "" {
		n.NKeySeedFile = file
	}
	return pub
}

// operator writes the operator mode part of the configuration, and the
// credentials files.
func (n *NATS) operator(t testing.TB, dir string, conf *strings.Builder) {
	t.Helper()
	must := func(err error) {
		if err != nil {
			t.Fatalf("tlsserver: nats credentials: %v", err)
		}
	}
	okp, err := nkeys.CreateOperator()
	must(err)
	opub, _ := okp.PublicKey()
	oc := jwt.NewOperatorClaims(opub)
	oc.Name = "relay-test-operator"
	ojwt, err := oc.Encode(okp)
	must(err)

	account := func(name string, js bool) (nkeys.KeyPair, string, string) {
		akp, err := nkeys.CreateAccount()
		must(err)
		apub, _ := akp.PublicKey()
		ac := jwt.NewAccountClaims(apub)
		ac.Name = name
		if js {
			ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
		}
		ajwt, err := ac.Encode(okp)
		must(err)
		return akp, apub, ajwt
	}
	creds := func(akp nkeys.KeyPair, file string) {
		ukp, err := nkeys.CreateUser()
		must(err)
		upub, _ := ukp.PublicKey()
		uc := jwt.NewUserClaims(upub)
		uc.Name = "relay"
		ujwt, err := uc.Encode(akp)
		must(err)
		seed, _ := ukp.Seed()
		b, err := jwt.FormatUserConfig(ujwt, seed)
		must(err)
		writeFile(t, file, string(b))
	}
	akp, apub, ajwt := account("relay", true)
	n.CredsFile = filepath.Join(dir, "relay.creds")
	creds(akp, n.CredsFile)
	// An account signed by the same operator but not preloaded: the server
	// cannot resolve it, so its user is refused.
	wkp, _, _ := account("unknown", true)
	n.WrongCredsFile = filepath.Join(dir, "wrong.creds")
	creds(wkp, n.WrongCredsFile)

	// JetStream needs a system account in operator mode.
	_, spub, sjwt := account("SYS", false)

	opFile := filepath.Join(dir, "operator.jwt")
	writeFile(t, opFile, ojwt)
	fmt.Fprintf(conf, "operator: %q\nsystem_account: %s\nresolver: MEMORY\nresolver_preload: {\n  %s: %q\n  %s: %q\n}\n",
		opFile, spub, apub, ajwt, spub, sjwt)
}

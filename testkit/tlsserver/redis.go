package tlsserver

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/bucketrelay/bucketrelay/testkit/tlsca"
)

// Redis is a running redis-server with a TLS port and a plain one.
type Redis struct {
	// TLSPort takes TLS connections, PlainPort plain ones, both on
	// 127.0.0.1.
	TLSPort, PlainPort int
}

// TLSAddr returns 127.0.0.1:TLSPort.
func (r *Redis) TLSAddr() string { return addr(r.TLSPort) }

// PlainAddr returns 127.0.0.1:PlainPort.
func (r *Redis) PlainAddr() string { return addr(r.PlainPort) }

// StartRedis starts redis-server (built with TLS, as Debian's is) with
// s.Server on its tls-port. With requireClientCert it refuses TLS clients
// without a certificate signed by s.CA (tls-auth-clients yes).
func StartRedis(t testing.TB, s *tlsca.Set, requireClientCert bool) *Redis {
	t.Helper()
	bin := binary(t, "redis", []string{"redis-server"})
	dir := t.TempDir()
	ports := freePorts(t, 2)
	r := &Redis{TLSPort: ports[0], PlainPort: ports[1]}
	auth := "no"
	if requireClientCert {
		auth = "yes"
	}
	p := startProc(t, "redis", filepath.Join(dir, "redis.log"), exec.Command(bin,
		"--bind", "127.0.0.1", "--port", strconv.Itoa(r.PlainPort), "--tls-port", strconv.Itoa(r.TLSPort),
		"--tls-cert-file", s.Server.Cert, "--tls-key-file", s.Server.Key, "--tls-ca-cert-file", s.CA.File,
		"--tls-auth-clients", auth, "--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no"))
	p.waitPorts(t, r.TLSAddr(), r.PlainAddr())
	return r
}

package tlsserver

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/bucketrelay/bucketrelay/testkit/tlsca"
)

// Mosquitto is a running mosquitto with a TLS listener and a plain one.
type Mosquitto struct {
	// TLSPort takes TLS connections, PlainPort plain ones, both on
	// 127.0.0.1.
	TLSPort, PlainPort int
}

// TLSAddr returns 127.0.0.1:TLSPort.
func (m *Mosquitto) TLSAddr() string { return addr(m.TLSPort) }

// PlainAddr returns 127.0.0.1:PlainPort.
func (m *Mosquitto) PlainAddr() string { return addr(m.PlainPort) }

// StartMosquitto starts mosquitto with s.Server on its TLS listener. With
// requireClientCert the TLS listener refuses clients without a certificate
// signed by s.CA; anonymous clients are allowed otherwise.
func StartMosquitto(t testing.TB, s *tlsca.Set, requireClientCert bool) *Mosquitto {
	t.Helper()
	bin := binary(t, "mosquitto", []string{"mosquitto"}, "/usr/sbin")
	dir := t.TempDir()
	ports := freePorts(t, 2)
	m := &Mosquitto{TLSPort: ports[0], PlainPort: ports[1]}
	conf := fmt.Sprintf(`per_listener_settings false
allow_anonymous true
persistence false
user root
log_dest stdout
listener %d 127.0.0.1
cafile %s
certfile %s
keyfile %s
require_certificate %t
listener %d 127.0.0.1
`, m.TLSPort, s.CA.File, s.Server.Cert, s.Server.Key, requireClientCert, m.PlainPort)
	confFile := filepath.Join(dir, "mosquitto.conf")
	writeFile(t, confFile, conf)
	p := startProc(t, "mosquitto", filepath.Join(dir, "mosquitto.log"), exec.Command(bin, "-c", confFile))
	p.waitPorts(t, m.TLSAddr(), m.PlainAddr())
	return m
}

package tlsserver

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/bucketrelay/bucketrelay/testkit/tlsca"
)

// RabbitMQ is a running RabbitMQ node of its own, beside the shared one.
type RabbitMQ struct {
	// TLSPort is its amqps listener, PlainPort its amqp one, both on
	// 127.0.0.1.
	TLSPort, PlainPort int
	// User and Password are its default user's, with every permission on
	// the vhost "/".
	User, Password string
}

// TLSAddr returns 127.0.0.1:TLSPort.
func (r *RabbitMQ) TLSAddr() string { return addr(r.TLSPort) }

// PlainAddr returns 127.0.0.1:PlainPort.
func (r *RabbitMQ) PlainAddr() string { return addr(r.PlainPort) }

// StartRabbitMQ starts a second RabbitMQ node (its own node name,
// distribution port, configuration, data and logs in a temporary directory,
// no plugins, so not the management listener either) with an amqps
// listener presenting s.Server. With requireClientCert the listener refuses
// clients without a certificate signed by s.CA (verify_peer,
// fail_if_no_peer_cert). Starting takes several seconds.
func StartRabbitMQ(t testing.TB, s *tlsca.Set, requireClientCert bool) *RabbitMQ {
	t.Helper()
	// The script under /usr/lib runs the node as the calling user; the one
	// in /usr/sbin switches to the rabbitmq user, which could not read
	// the test's files.
	bin := binary(t, "rabbitmq", []string{"rabbitmq-server"}, "/usr/lib/rabbitmq/bin")
	if lib := "/usr/lib/rabbitmq/bin/rabbitmq-server"; fileExists(lib) {
		bin = lib
	}
	dir := t.TempDir()
	ports := freePorts(t, 3)
	r := &RabbitMQ{TLSPort: ports[0], PlainPort: ports[1], User: "relay", Password: "tls-test-password"}
	conf := fmt.Sprintf(`listeners.tcp.default = 127.0.0.1:%d
listeners.ssl.default = 127.0.0.1:%d
ssl_options.cacertfile = %s
ssl_options.certfile = %s
ssl_options.keyfile = %s
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = %t
default_user = %s
default_pass = %s
loopback_users = none
`, r.PlainPort, r.TLSPort, s.CA.File, s.Server.Cert, s.Server.Key, requireClientCert, r.User, r.Password)
	confFile := filepath.Join(dir, "rabbitmq.conf")
	writeFile(t, confFile, conf)
	plugins := filepath.Join(dir, "enabled_plugins")
	writeFile(t, plugins, "[].\n")
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"HOME="+dir, // its own Erlang cookie
		"RABBITMQ_NODENAME=relaytls"+strconv.Itoa(r.TLSPort)+"@localhost",
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT="+strconv.Itoa(r.PlainPort),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(ports[2]),
		"RABBITMQ_CONFIG_FILE="+confFile,
		"RABBITMQ_ADVANCED_CONFIG_FILE="+filepath.Join(dir, "advanced.config"),
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(dir, "rabbitmq-env.conf"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+plugins,
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"RABBITMQ_PID_FILE="+filepath.Join(dir, "rabbitmq.pid"),
		"RABBITMQ_LOGS=-", // to the process's output
	)
	p := startProc(t, "rabbitmq", filepath.Join(dir, "rabbitmq.out"), cmd)
	p.waitPorts(t, r.PlainAddr(), r.TLSAddr())
	return r
}

func fileExists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}

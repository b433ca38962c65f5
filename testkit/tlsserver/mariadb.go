package tlsserver

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/bucketrelay/bucketrelay/testkit/tlsca"
)

// MariaDB is a running MariaDB server of its own.
type MariaDB struct {
	// Port is its port on 127.0.0.1.
	Port int
	// User and Password authenticate with a password; Database is theirs.
	User, Password, Database string
	// CertUser (tlsca.ClientName) has no password and must present a
	// client certificate signed by the CA (REQUIRE X509).
	CertUser string
}

// Addr returns 127.0.0.1:Port.
func (m *MariaDB) Addr() string { return addr(m.Port) }

// StartMariaDB creates a data directory with mariadb-install-db in a
// temporary directory and starts mariadbd on a free port. Unless s is nil
// it has s.Server, s.CA and require_secure_transport = ON (plain TCP
// connections are refused); with s nil, TLS is off.
func StartMariaDB(t testing.TB, s *tlsca.Set) *MariaDB {
	t.Helper()
	install := binary(t, "mariadb", []string{"mariadb-install-db", "mysql_install_db"})
	server := binary(t, "mariadb", []string{"mariadbd", "mysqld"}, "/usr/sbin")
	client := binary(t, "mariadb", []string{"mariadb", "mysql"})
	dir := t.TempDir()
	data, sock := filepath.Join(dir, "data"), filepath.Join(dir, "mysqld.sock")
	m := &MariaDB{Port: freePorts(t, 1)[0], User: "relay_pw", Password: "tls-test-password", Database: "relay", CertUser: tlsca.ClientName}
	run(t, exec.Command(install, "--no-defaults", "--datadir="+data, "--user=root", "--skip-test-db",
		"--auth-root-authentication-method=socket"))
	args := []string{"--no-defaults", "--datadir=" + data, "--socket=" + sock, "--port=" + strconv.Itoa(m.Port),
		"--bind-address=127.0.0.1", "--user=root", "--pid-file=" + filepath.Join(dir, "mysqld.pid"),
		"--skip-name-resolve", "--skip-log-bin", "--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M",
		"--innodb-flush-log-at-trx-commit=0", "--max-connections=30", "--log-error=" + filepath.Join(dir, "error.log")}
	if s != nil {
		args = append(args, "--ssl-ca="+s.CA.File, "--ssl-cert="+s.Server.Cert, "--ssl-key="+s.Server.Key,
			"--require-secure-transport=ON")
	}
	p := startProc(t, "mariadb", filepath.Join(dir, "mysqld.out"), exec.Command(server, args...))
	p.log = filepath.Join(dir, "error.log")
	p.waitPorts(t, m.Addr())
	sql := fmt.Sprintf(`CREATE DATABASE %[1]s;
CREATE USER '%[2]s'@'127.0.0.1' IDENTIFIED BY '%[3]s';
GRANT ALL ON %[1]s.* TO '%[2]s'@'127.0.0.1';
CREATE USER '%[4]s'@'127.0.0.1' REQUIRE X509;
GRANT ALL ON %[1]s.* TO '%[4]s'@'127.0.0.1';`, m.Database, m.User, m.Password, m.CertUser)
	run(t, exec.Command(client, "--no-defaults", "--socket="+sock, "-uroot", "-e", sql))
	return m
}

package tlsserver

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/bucketrelay/bucketrelay/testkit/tlsca"
)

// Postgres is a running PostgreSQL cluster of its own.
type Postgres struct {
	// Port is its port on 127.0.0.1.
	Port int
	// User and Password authenticate with a password (scram-sha-256),
	// over TLS only unless the cluster is plain; Database is theirs.
	User, Password, Database string
	// CertUser (tlsca.ClientName) authenticates with its client
	// certificate alone (pg_hba "cert").
	CertUser string
}

// Addr returns 127.0.0.1:Port.
func (p *Postgres) Addr() string { return addr(p.Port) }

// StartPostgres creates a cluster with initdb as the postgres user in a
// temporary directory and starts it on a free port. Unless s is nil it has
// ssl = on with s.Server and s.CA, and pg_hba.conf takes only TLS
// connections from 127.0.0.1 (hostssl; plain ones are rejected); with s
// nil, ssl is off.
func StartPostgres(t testing.TB, s *tlsca.Set) *Postgres {
	t.Helper()
	initdb := binary(t, "postgres", []string{"initdb"}, "/usr/lib/postgresql/*/bin")
	postgres := binary(t, "postgres", []string{"postgres"}, filepath.Dir(initdb), "/usr/lib/postgresql/*/bin")
	runuser := binary(t, "postgres", []string{"runuser"}, "/usr/sbin", "/sbin")
	psql := binary(t, "postgres", []string{"psql"}, filepath.Dir(initdb), "/usr/lib/postgresql/*/bin")
	pu, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("tlsserver: postgres: %v", err)
	}
	uid, _ := strconv.Atoi(pu.Uid)
	gid, _ := strconv.Atoi(pu.Gid)

	// t.TempDir is root's (mode 0700): the cluster needs a directory of
	// the postgres user's.
	dir, err := os.MkdirTemp("", "relay-tls-postgres-")
	if err != nil {
		t.Fatalf("tlsserver: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	chown := func(name string) {
		if err := os.Chown(name, uid, gid); err != nil {
			t.Fatalf("tlsserver: %v", err)
		}
	}
	chown(dir)
	data := filepath.Join(dir, "data")
	pg := &Postgres{Port: freePorts(t, 1)[0], User: "relay_pw", Password: "tls-test-password", Database: "relay", CertUser: tlsca.ClientName}
	as := func(bin string, args ...string) *exec.Cmd {
		return exec.Command(runuser, append([]string{"-u", "postgres", "--", bin}, args...)...)
	}
	run(t, as(initdb, "-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"))

	conf := fmt.Sprintf("port = %d\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\nfsync = off\nmax_connections = 20\nshared_buffers = 16MB\n",
		pg.Port, dir)
	hba := "local all all trust\n"
	if s != nil {
		for src, dst := range map[string]string{s.Server.Cert: "server.crt", s.Server.Key: "server.key", s.CA.File: "root.crt"} {
			copyFile(t, src, filepath.Join(data, dst))
			chown(filepath.Join(data, dst))
		}
		conf += "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nssl_ca_file = 'root.crt'\n"
		hba += fmt.Sprintf("hostssl all %s 127.0.0.1/32 cert\nhostssl all all 127.0.0.1/32 scram-sha-256\nhostnossl all all 127.0.0.1/32 reject\n", pg.CertUser)
	} else {
		conf += "ssl = off\n"
		hba += "host all all 127.0.0.1/32 scram-sha-256\n"
	}
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(conf)
		f.Close()
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(data, "pg_hba.conf"), []byte(hba), 0o600)
	}
	if err != nil {
		t.Fatalf("tlsserver: postgres: %v", err)
	}
	chown(filepath.Join(data, "pg_hba.conf"))

	logFile := filepath.Join(dir, "postgres.log")
	p := startProc(t, "postgres", logFile, as(postgres, "-D", data))
	p.sig = syscall.SIGINT // fast shutdown: SIGTERM waits for clients to leave
	p.waitPorts(t, pg.Addr())
	psqlArgs := func(db string, stmts ...string) []string {
		args := []string{"-h", dir, "-p", strconv.Itoa(pg.Port), "-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1", "-q"}
		for _, st := range stmts {
			args = append(args, "-c", st) // one by one: CREATE DATABASE cannot run in a transaction
		}
		return args
	}
	run(t, as(psql, psqlArgs("postgres",
		fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", pg.User, pg.Password),
		fmt.Sprintf("CREATE ROLE %s LOGIN", pg.CertUser),
		fmt.Sprintf("CREATE DATABASE %s OWNER %s", pg.Database, pg.User),
		fmt.Sprintf("GRANT ALL ON DATABASE %s TO %s", pg.Database, pg.CertUser))...))
	// The certificate user writes in the public schema of the password
	// user's database.
	run(t, as(psql, psqlArgs(pg.Database, fmt.Sprintf("GRANT ALL ON SCHEMA public TO %s", pg.CertUser))...))
	return pg
}

package mysql

import (
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/testkit/tlsca"
	"github.com/bucketrelay/bucketrelay/testkit/tlsserver"
	"github.com/bucketrelay/bucketrelay/testkit/tlstest"
)

const tlsTable = "relay_tls"

// checker sends through new mysql targets; New's errors count (the
// driver checks TLS settings when the target is built).
func checker(secret string) tlstest.Checker[Config] {
	return tlstest.Checker[Config]{New: func(c Config) (delivery.Target, error) { return New(c, nil) }, NewMayFail: true, Secret: secret}
}

// countRows counts the table's rows as user over TLS (tc).
func countRows(t *testing.T, m *tlsserver.MariaDB, user, password string, tc *tls.Config) int {
	t.Helper()
	mc := mysql.NewConfig()
	mc.Net, mc.Addr, mc.User, mc.Passwd, mc.DBName, mc.TLS = "tcp", m.Addr(), user, password, m.Database, tc
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM " + tlsTable).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestTLS writes through a MariaDB with require_secure_transport, and
// checks that a wrong CA, a wrong host name and a server without TLS fail,
// saying so; caFile forbids the fallback to plain text tls=preferred
// allows.
func TestTLS(t *testing.T) {
	s := tlsca.New(t, "")
	m := tlsserver.StartMariaDB(t, s)
	base := Config{Format: "access", Table: tlsTable, Host: tlsca.ServerIP, Port: strconv.Itoa(m.Port),
		User: m.User, Password: m.Password, Database: m.Database, CAFile: s.CA.File}
	k := checker(m.Password)
	if err := k.Send(t, base, 0); err != nil {
		t.Fatalf("send over TLS with the right CA: %v", err)
	}
	plain := tlsserver.StartMariaDB(t, nil)
	k.Fails(t, base, 1, []tlstest.Case[Config]{
		tlstest.Bad("wrong CA", func(c *Config) { c.CAFile = s.WrongCA.File }, tlsca.UnknownAuthorityText),
		tlstest.Bad("wrong host name", func(c *Config) { c.Host = tlsca.WrongHost }, tlsca.WrongHostText),
		tlstest.Bad("system CAs (tls=true)", func(c *Config) {
			c.CAFile = ""
			c.DSNString = fmt.Sprintf("%s:%s@tcp(%s)/%s?tls=true", m.User, m.Password, m.Addr(), m.Database)
		}, tlsca.UnknownAuthorityText),
		// MariaDB says only "access denied" to a plain connection under
		// require_secure_transport.
		tlstest.Bad("no TLS asked", func(c *Config) { c.CAFile = "" }, "Access denied"),
		tlstest.Bad("server without TLS", func(c *Config) { c.Port = strconv.Itoa(plain.Port) }, "TLS requested but server does not support TLS"),
		// tls=preferred falls back to plain text against a server without
		// TLS; with caFile it must not.
		tlstest.Bad("server without TLS, tls=preferred", func(c *Config) {
			c.DSNString = fmt.Sprintf("%s:%s@tcp(%s)/%s?tls=preferred", plain.User, plain.Password, plain.Addr(), plain.Database)
		}, "TLS requested but server does not support TLS"),
	})
	if n := countRows(t, m, m.User, m.Password, &tls.Config{RootCAs: s.Pool(t), ServerName: tlsca.ServerIP}); n != 1 {
		t.Errorf("table: got %d rows, want 1", n)
	}
}

// TestMutualTLS writes as a user created with REQUIRE X509, which has no
// password: the client certificate is its credential.
func TestMutualTLS(t *testing.T) {
	s := tlsca.New(t, "")
	m := tlsserver.StartMariaDB(t, s)
	base := Config{Format: "access", Table: tlsTable, Host: tlsca.ServerIP, Port: strconv.Itoa(m.Port),
		User: m.CertUser, Database: m.Database, CAFile: s.CA.File, ClientCert: s.Client.Cert, ClientKey: s.Client.Key}
	checker("").MutualTLS(t, s, base, func(c *Config, cert, key string) { c.ClientCert, c.ClientKey = cert, key })
	cert, err := tls.LoadX509KeyPair(s.Client.Cert, s.Client.Key)
	if err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, m, m.CertUser, "", &tls.Config{RootCAs: s.Pool(t), ServerName: tlsca.ServerIP, Certificates: []tls.Certificate{cert}}); n != 1 {
		t.Errorf("table: got %d rows, want 1", n)
	}
}

// TestClientCertValidate checks that clientCert and clientKey go together.
func TestClientCertValidate(t *testing.T) {
	for _, cfg := range []Config{
		{Table: "t", Database: "d", ClientCert: "c.pem"},
		{Table: "t", Database: "d", ClientKey: "k.pem"},
	} {
		var fe *kit.FieldError
		if err := cfg.Validate(); !errors.As(err, &fe) || fe.Field != "clientCert" {
			t.Errorf("Validate(%+v): got %v, want an error on clientCert", cfg, err)
		}
	}
}

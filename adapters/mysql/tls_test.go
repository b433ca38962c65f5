package mysql

import (
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/testkit/tlsca"
	"github.com/bucketrelay/bucketrelay/testkit/tlsserver"
)

const tlsTable = "relay_tls"

// tlsSend sends one event through a new target for cfg.
func tlsSend(t *testing.T, cfg Config, i int) error {
	t.Helper()
	tg, err := New(cfg, nil)
	if err != nil {
		return err
	}
	defer tg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return tg.Send(ctx, []delivery.Item{targettest.Item("tls", fmt.Sprintf("k%d", i), event.ObjectCreatedPut, i)})
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
	if err := tlsSend(t, base, 0); err != nil {
		t.Fatalf("send over TLS with the right CA: %v", err)
	}
	plain := tlsserver.StartMariaDB(t, nil)
	cases := []struct {
		name string
		cfg  func(c *Config)
		want string
	}{
		{"wrong CA", func(c *Config) { c.CAFile = s.WrongCA.File }, tlsca.UnknownAuthorityText},
		{"wrong host name", func(c *Config) { c.Host = tlsca.WrongHost }, tlsca.WrongHostText},
		{"system CAs (tls=true)", func(c *Config) {
			c.CAFile = ""
			c.DSNString = fmt.Sprintf("%s:%s@tcp(%s)/%s?tls=true", m.User, m.Password, m.Addr(), m.Database)
		}, tlsca.UnknownAuthorityText},
		// MariaDB says only "access denied" to a plain connection under
		// require_secure_transport.
		{"no TLS asked", func(c *Config) { c.CAFile = "" }, "Access denied"},
		{"server without TLS", func(c *Config) { c.Port = strconv.Itoa(plain.Port) }, "TLS requested but server does not support TLS"},
		// tls=preferred falls back to plain text against a server without
		// TLS; with caFile it must not.
		{"server without TLS, tls=preferred", func(c *Config) {
			c.DSNString = fmt.Sprintf("%s:%s@tcp(%s)/%s?tls=preferred", plain.User, plain.Password, plain.Addr(), plain.Database)
		}, "TLS requested but server does not support TLS"},
	}
	for i, c := range cases {
		cfg := base
		c.cfg(&cfg)
		err := tlsSend(t, cfg, 1+i)
		t.Logf("%s: %v", c.name, err)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), m.Password) {
			t.Errorf("%s: the error quotes the password: %v", c.name, err)
		}
	}
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
	if err := tlsSend(t, base, 0); err != nil {
		t.Fatalf("send with the client certificate: %v", err)
	}
	none := base
	none.ClientCert, none.ClientKey = "", ""
	wrong := base
	wrong.ClientCert, wrong.ClientKey = s.WrongClient.Cert, s.WrongClient.Key
	for i, cfg := range []Config{none, wrong} {
		err := tlsSend(t, cfg, 1+i)
		t.Logf("client certificate %q: %v", cfg.ClientCert, err)
		if err == nil {
			t.Errorf("client certificate %q: got nil, want an error", cfg.ClientCert)
		}
	}
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

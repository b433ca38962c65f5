package postgresql

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

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

// rows counts the rows of the table, connecting with the connection string
// cs.
func rows(t *testing.T, cs string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM "+tlsTable).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestTLS writes through a cluster with ssl = on, connecting with sslmode
// verify-full, and checks that a wrong CA, a wrong host name (also when the
// host field overrides a URL's) and a cluster without TLS fail, saying so.
func TestTLS(t *testing.T) {
	s := tlsca.New(t, "")
	pg := tlsserver.StartPostgres(t, s)
	port := strconv.Itoa(pg.Port)
	base := Config{Format: "access", Table: tlsTable, Timeout: "10s",
		ConnectionString: "sslmode=verify-full sslrootcert=" + s.CA.File,
		Host:             tlsca.ServerIP, Port: port, User: pg.User, Password: pg.Password, Database: pg.Database}
	if err := tlsSend(t, base, 0); err != nil {
		t.Fatalf("send with sslmode=verify-full and the right CA: %v", err)
	}
	urlForm := func(host string) string {
		return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=verify-full&sslrootcert=%s", pg.User, host, pg.Port, pg.Database, s.CA.File)
	}
	// The host field overrides the URL's host: the certificate must be
	// checked for the host connected to.
	viaURL := Config{Format: "access", Table: tlsTable, Timeout: "10s", ConnectionString: urlForm(tlsca.WrongHost), Host: tlsca.ServerIP, Password: pg.Password}
	if err := tlsSend(t, viaURL, 1); err != nil {
		t.Fatalf("URL for %s with host %s: %v", tlsca.WrongHost, tlsca.ServerIP, err)
	}

	plain := tlsserver.StartPostgres(t, nil)
	cases := []struct {
		name string
		cfg  func(c *Config)
		want string
	}{
		{"wrong CA", func(c *Config) { c.ConnectionString = "sslmode=verify-full sslrootcert=" + s.WrongCA.File }, tlsca.UnknownAuthorityText},
		{"wrong host name", func(c *Config) { c.Host = tlsca.WrongHost }, tlsca.WrongHostText},
		{"URL with a host field of the wrong name", func(c *Config) {
			c.ConnectionString, c.Host, c.Port, c.User, c.Database = urlForm(tlsca.ServerIP), tlsca.WrongHost, "", "", ""
		}, tlsca.WrongHostText},
		{"plain cluster", func(c *Config) { c.Port = strconv.Itoa(plain.Port) }, "server refused TLS connection"},
		{"no TLS asked", func(c *Config) { c.ConnectionString = "sslmode=disable" }, "no encryption"},
	}
	for i, c := range cases {
		cfg := base
		c.cfg(&cfg)
		err := tlsSend(t, cfg, 2+i)
		t.Logf("%s: %v", c.name, err)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), pg.Password) {
			t.Errorf("%s: the error quotes the password: %v", c.name, err)
		}
	}
	if n := rows(t, fmt.Sprintf("host=127.0.0.1 port=%d user=%s password=%s dbname=%s sslmode=verify-full sslrootcert=%s",
		pg.Port, pg.User, pg.Password, pg.Database, s.CA.File)); n != 2 {
		t.Errorf("table: got %d rows, want 2", n)
	}
}

// TestMutualTLS authenticates with a client certificate alone (pg_hba
// "cert"): sslcert and sslkey in the connection string.
func TestMutualTLS(t *testing.T) {
	s := tlsca.New(t, "")
	pg := tlsserver.StartPostgres(t, s)
	cs := func(cert, key string) string {
		c := fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=verify-full sslrootcert=%s", tlsca.ServerIP, pg.Port, pg.CertUser, pg.Database, s.CA.File)
		if cert != "" {
			c += fmt.Sprintf(" sslcert=%s sslkey=%s", cert, key)
		}
		return c
	}
	cfg := Config{Format: "access", Table: tlsTable, Timeout: "10s", ConnectionString: cs(s.Client.Cert, s.Client.Key)}
	if err := tlsSend(t, cfg, 0); err != nil {
		t.Fatalf("send with the client certificate: %v", err)
	}
	for i, c := range [][2]string{{"", ""}, {s.WrongClient.Cert, s.WrongClient.Key}} {
		cfg.ConnectionString = cs(c[0], c[1])
		err := tlsSend(t, cfg, 1+i)
		t.Logf("client certificate %q: %v", c[0], err)
		if err == nil {
			t.Errorf("client certificate %q: got nil, want an error", c[0])
		}
	}
	if n := rows(t, cs(s.Client.Cert, s.Client.Key)); n != 1 {
		t.Errorf("table: got %d rows, want 1", n)
	}
}

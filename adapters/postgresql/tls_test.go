package postgresql

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/testkit/tlsca"
	"github.com/bucketrelay/bucketrelay/testkit/tlsserver"
	"github.com/bucketrelay/bucketrelay/testkit/tlstest"
)

const tlsTable = "relay_tls"

// checker sends through new postgresql targets; New's errors count
// (pgx parses the connection string when the target is built).
func checker(secret string) tlstest.Checker[Config] {
	return tlstest.Checker[Config]{New: func(c Config) (delivery.Target, error) { return New(c, nil) }, NewMayFail: true, Secret: secret}
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
	k := checker(pg.Password)
	if err := k.Send(t, base, 0); err != nil {
		t.Fatalf("send with sslmode=verify-full and the right CA: %v", err)
	}
	urlForm := func(host string) string {
		return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=verify-full&sslrootcert=%s", pg.User, host, pg.Port, pg.Database, s.CA.File)
	}
	// The host field overrides the URL's host: the certificate must be
	// checked for the host connected to.
	viaURL := Config{Format: "access", Table: tlsTable, Timeout: "10s", ConnectionString: urlForm(tlsca.WrongHost), Host: tlsca.ServerIP, Password: pg.Password}
	if err := k.Send(t, viaURL, 1); err != nil {
		t.Fatalf("URL for %s with host %s: %v", tlsca.WrongHost, tlsca.ServerIP, err)
	}

	plain := tlsserver.StartPostgres(t, nil)
	k.Fails(t, base, 2, []tlstest.Case[Config]{
		tlstest.Bad("wrong CA", func(c *Config) { c.ConnectionString = "sslmode=verify-full sslrootcert=" + s.WrongCA.File }, tlsca.UnknownAuthorityText),
		tlstest.Bad("wrong host name", func(c *Config) { c.Host = tlsca.WrongHost }, tlsca.WrongHostText),
		tlstest.Bad("URL with a host field of the wrong name", func(c *Config) {
			c.ConnectionString, c.Host, c.Port, c.User, c.Database = urlForm(tlsca.ServerIP), tlsca.WrongHost, "", "", ""
		}, tlsca.WrongHostText),
		tlstest.Bad("plain cluster", func(c *Config) { c.Port = strconv.Itoa(plain.Port) }, "server refused TLS connection"),
		tlstest.Bad("no TLS asked", func(c *Config) { c.ConnectionString = "sslmode=disable" }, "no encryption"),
	})
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
	checker("").MutualTLS(t, s, cfg, func(c *Config, cert, key string) { c.ConnectionString = cs(cert, key) })
	if n := rows(t, cs(s.Client.Cert, s.Client.Key)); n != 1 {
		t.Errorf("table: got %d rows, want 1", n)
	}
}

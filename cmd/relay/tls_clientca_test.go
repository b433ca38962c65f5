package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestClientCARotation: replacing the relay.tls.clientCA file is picked up
// by the running relay at the next handshake: clients of the CA it now
// names get in, those of the CA it dropped no longer do.
func TestClientCARotation(t *testing.T) {
	tr := serveTLS(t, newTestReceiver(t).URL(), true)
	// The clients keep trusting the server's CA, whose file is the one
	// rewritten below.
	root := filepath.Join(tr.dir, "server-root.pem")
	b, err := os.ReadFile(tr.ca.File)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(root, b, 0o600); err != nil {
		t.Fatal(err)
	}
	admitted := func(cert, key string) bool {
		t.Helper()
		resp, err := tlsClient(t, root, cert, key).Get(tr.url + "/v1/targets")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}
	if !admitted(tr.cliCert, tr.cliKey) || admitted(tr.strangerCert, tr.strangerKey) {
		t.Fatal("at start: want the operator admitted and the stranger refused")
	}
	other, err := os.ReadFile(tr.otherCA.File)
	if err != nil {
		t.Fatal(err)
	}
	// Written aside and renamed, as a rotation should be.
	if err := os.WriteFile(tr.ca.File+".new", other, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tr.ca.File+".new", tr.ca.File); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the stranger's CA trusted", func() bool { return admitted(tr.strangerCert, tr.strangerKey) })
	if admitted(tr.cliCert, tr.cliKey) {
		t.Fatal("after the rotation: the operator, whose CA was dropped, is still admitted")
	}
}

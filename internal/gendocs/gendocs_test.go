package main

import (
	"bytes"
	"testing"

	"github.com/bucketrelay/bucketrelay/relay"
)

// TestDocsUpToDate fails when README.md or a docs/targets page differs from
// what go run ./internal/gendocs writes from the adapters' Kind: a
// parameter added to a Config without documentation, or documentation
// edited by hand, shows here.
func TestDocsUpToDate(t *testing.T) {
	files, err := generate("../..", relay.Kinds())
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1+len(relay.Kinds()) {
		t.Fatalf("got %d files, want README and one page per kind (%d)", len(files), len(relay.Kinds()))
	}
	for _, f := range files {
		if !bytes.Equal(f.old, f.new) {
			t.Errorf("%s is out of date: run go run ./internal/gendocs (first difference at line %d)", f.path, firstDiffLine(f.old, f.new))
		}
	}
}

// TestParamsMatchConfigs: every JSON field of every adapter's Config is
// documented exactly once, and nothing else is.
func TestParamsMatchConfigs(t *testing.T) {
	for _, k := range relay.Kinds() {
		if err := k.CheckParams(); err != nil {
			t.Error(err)
		}
		if k.Delivery == "" || k.MaxBatch <= 0 || k.NewConfig == nil || k.Build == nil {
			t.Errorf("%s: incomplete description: %+v", k.Name, k)
		}
	}
}

func TestNameList(t *testing.T) {
	var got string
	for _, k := range relay.Kinds() {
		if k.Name == "kafka" {
			got = nameList(k.Params[1:]) // without enable
		}
	}
	want := "`brokers`, `topic`, `tls{enable, skipVerify, caFile, clientCert/clientKey}`, `sasl{enable, username, password, mechanism (plain, sha256, sha512)}`, `compression`, `version`, `format`, `cloudeventsMode`"
	if got != want {
		t.Errorf("kafka's parameter names: got %s, want %s", got, want)
	}
}

func firstDiffLine(a, b []byte) int {
	la, lb := bytes.Split(a, []byte("\n")), bytes.Split(b, []byte("\n"))
	for i := range min(len(la), len(lb)) {
		if !bytes.Equal(la[i], lb[i]) {
			return i + 1
		}
	}
	return min(len(la), len(lb)) + 1
}

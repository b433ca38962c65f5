package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/relay"
	"github.com/bucketrelay/bucketrelay/wal"
)

func TestRelease(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "relay.json")
	// Disabling a target takes its rules out too: a rule naming a disabled
	// target is refused.
	writeConfig := func(enabled bool) {
		rule := `"buckets":{"images":[{"arn":"arn:minio:sqs::1:webhook","events":["put"]}]}`
		if !enabled {
			rule = `"buckets":{}`
		}
		doc := fmt.Sprintf(`{"relay":{"dataDir":%q},
"notify":{"webhook":{"1":{"enable":%v,"endpoint":"http://127.0.0.1:1/"},"2":{"enable":true,"endpoint":"http://127.0.0.1:1/"}}},
%s}`, filepath.Join(dir, "data"), enabled, rule)
		if err := os.WriteFile(config, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig(true)
	cfg, err := relay.LoadConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	r, err := relay.Open(cfg, relay.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var recs []event.Record
	for i := 0; i < 5; i++ {
		recs = append(recs, targettest.Record("images", fmt.Sprintf("p%d.jpg", i), event.ObjectCreatedPut, i))
	}
	if err := r.Publish(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}
	export := filepath.Join(dir, "released.jsonl")
	const arn = "arn:minio:sqs::1:webhook"
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := (&releaseCommand{out: &out}).Run(context.Background(), args)
		return out.String(), err
	}

	// While the relay runs, the log is locked.
	writeConfig(false)
	if _, err := run("--config", config, arn, "--export", export); err == nil || !strings.Contains(err.Error(), "stop the relay") {
		t.Fatalf("release while the relay runs: err %v, want one saying to stop the relay", err)
	}
	if _, err := os.Stat(export); !os.IsNotExist(err) {
		t.Fatalf("a failed release left the export file: %v", err)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	// A target still enabled is refused.
	writeConfig(true)
	if _, err := run("--config", config, arn, "--export", export); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "enabled") {
		t.Fatalf("release of an enabled target: err %v, want a usage error saying it is enabled", err)
	}

	writeConfig(false)
	out, err := run("--config", config, arn, "--export", export)
	if err != nil {
		t.Fatal(err)
	}
	if want := "exported 5 events of " + arn; !strings.Contains(out, want) {
		t.Fatalf("output %q lacks %q", out, want)
	}
	b, err := os.ReadFile(export)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("export has %d lines, want 5", len(lines))
	}
	for i, line := range lines {
		var x struct {
			Seq    uint64       `json:"seq"`
			Key    string       `json:"key"`
			Name   string       `json:"eventName"`
			Record event.Record `json:"record"`
		}
		if err := json.Unmarshal([]byte(line), &x); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if x.Seq != uint64(i+1) || x.Key != fmt.Sprintf("images/p%d.jpg", i) || x.Name != "s3:ObjectCreated:Put" || x.Record.S3.Object.Key != fmt.Sprintf("p%d.jpg", i) {
			t.Errorf("line %d got %s", i, line)
		}
	}
	l, err := wal.OpenReadOnly(filepath.Join(dir, "data", "wal.db"))
	if err != nil {
		t.Fatal(err)
	}
	_, ok := l.Cursor(arn)
	events := l.Events()
	l.Close()
	if ok || events != 0 {
		t.Fatalf("after release: cursor present %v, %d events held; want none, 0", ok, events)
	}

	// The export file is never overwritten, and a released target has
	// nothing left.
	if _, err := run("--config", config, arn, "--export", export); err == nil {
		t.Fatal("a second release succeeded")
	}
	if b2, _ := os.ReadFile(export); !bytes.Equal(b, b2) {
		t.Fatal("a second release changed the export file")
	}
}

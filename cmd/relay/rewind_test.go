package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/relay"
	"github.com/bucketrelay/bucketrelay/testkit/webhookrecv"
)

// serveRetaining serves a relay like serveOperate, keeping an hour of
// delivered history (relay.retention), its webhook posting one event at a
// time ("concurrency": 1): the tests check the log order across objects.
func serveRetaining(t *testing.T, endpoint string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "relay.json")
	os.WriteFile(path, []byte(fmt.Sprintf(`{"relay":{"dataDir":%q,"listen":"127.0.0.1:0","minBackoff":"10ms","maxBackoff":"100ms","retention":{"age":"1h"}},
"notify":{"webhook":{"1":{"enable":true,"endpoint":%q,"concurrency":1}}},
"buckets":{"images":[{"arn":%q,"events":["put"]}]}}`, t.TempDir(), endpoint, hookARN)), 0o600)
	addr := runServe(t, "--config", path)
	return "http://" + addr
}

// numbers returns the numbers the received events were built with.
func numbers(t *testing.T, rcv *webhookrecv.Receiver) []int {
	t.Helper()
	var out []int
	for _, b := range rcv.Bodies() {
		var m struct{ Records []event.Record }
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("bad body %.100s: %v", b, err)
		}
		for _, r := range m.Records {
			out = append(out, int(r.S3.Object.Size-1000))
		}
	}
	return out
}

// TestTargetsRewind: rewind by time re-delivers exactly the retained
// events logged after that time, once; by sequence likewise; bad input
// exits 2, a refused rewind 1.
func TestTargetsRewind(t *testing.T) {
	rcv := newTestReceiver(t)
	server := serveRetaining(t, rcv.URL())
	postEvents(t, server, 1, 3)
	eventually(t, "3 events", func() bool { return len(numbers(t, rcv)) == 3 })
	time.Sleep(20 * time.Millisecond)
	mid := time.Now().UTC()
	time.Sleep(20 * time.Millisecond)
	postEvents(t, server, 4, 3)
	eventually(t, "6 events", func() bool { return len(numbers(t, rcv)) == 6 })
	cursorAt := func(want uint64) func() bool {
		return func() bool {
			var doc struct{ Targets []relay.TargetStatus }
			if err := (&opClient{base: server}).getJSON(context.Background(), "/v1/targets", &doc); err != nil {
				t.Fatal(err)
			}
			return len(doc.Targets) == 1 && doc.Targets[0].Cursor == want && doc.Targets[0].Lag == 0
		}
	}
	eventually(t, "the cursor past every event", cursorAt(7))

	var out bytes.Buffer
	err := (&targetsCommand{out: &out}).Run(context.Background(), []string{"rewind", hookARN, "--to-time", mid.Format(time.RFC3339Nano), "--server", server})
	want := fmt.Sprintf("Rewound %s from sequence 7 to 4 (the first event logged at or after %s): 3 event(s) will be delivered again.\n", hookARN, mid.Format(time.RFC3339))
	if err != nil || out.String() != want {
		t.Fatalf("rewind --to-time: %v\n%s\nwant\n%s", err, out.String(), want)
	}
	eventually(t, "the re-delivered events", func() bool { return len(numbers(t, rcv)) >= 9 })
	eventually(t, "the cursor past every event", cursorAt(7))
	time.Sleep(100 * time.Millisecond)
	if got := numbers(t, rcv); !slices.Equal(got, []int{1, 2, 3, 4, 5, 6, 4, 5, 6}) {
		t.Fatalf("received %v, want 1..6 then 4..6 again", got)
	}

	out.Reset()
	err = (&targetsCommand{out: &out}).Run(context.Background(), []string{"rewind", hookARN, "--to-seq", "6", "--json", "--server", server})
	var res relay.RewindResult
	if err != nil || json.Unmarshal(out.Bytes(), &res) != nil || res.FromSeq != 7 || res.ToSeq != 6 || res.Redeliver != 1 {
		t.Fatalf("rewind --to-seq --json: %v\n%s", err, out.String())
	}
	eventually(t, "the re-delivered event", func() bool { return len(numbers(t, rcv)) >= 10 })
	if got := numbers(t, rcv); got[9] != 6 {
		t.Fatalf("received %v, want 6 last", got)
	}

	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"targets", "rewind", hookARN}, 2},
		{[]string{"targets", "rewind", hookARN, "--to-seq", "1", "--to-time", "2026-12-01T10:00:00Z"}, 2},
		{[]string{"targets", "rewind", hookARN, "--to-time", "yesterday"}, 2},
		{[]string{"targets", "rewind", "not-an-arn", "--to-seq", "1"}, 2},
		{[]string{"targets", "rewind", "arn:minio:sqs::9:webhook", "--to-seq", "1"}, 1},
		{[]string{"targets", "rewind", hookARN, "--to-seq", "99"}, 1},
	} {
		if got := run(context.Background(), append(c.args, "--server", server)); got != c.code {
			t.Errorf("relay %s: exit %d, want %d", strings.Join(c.args, " "), got, c.code)
		}
	}
}

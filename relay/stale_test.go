package relay

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/bucketrelay/bucketrelay/rules"
)

// TestStaleTargetWarnsOnlyWithPending: a target removed from the file
// gets the "pending events are kept" WARN at start only when events are
// pending for it.
func TestStaleTargetWarnsOnlyWithPending(t *testing.T) {
	dir := t.TempDir()
	rcv := newTestReceiver(t)
	both := fmt.Sprintf(`{"relay":{"dataDir":%q},"notify":{"webhook":{"1":{"enable":true,"endpoint":%q},"2":{"enable":true,"endpoint":%q}}}}`, dir, rcv.URL(), rcv.URL())
	one := fmt.Sprintf(`{"relay":{"dataDir":%q},"notify":{"webhook":{"1":{"enable":true,"endpoint":%q}}}}`, dir, rcv.URL())
	open := func(doc string) (*Relay, *strings.Builder) {
		c, err := ParseConfig([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		var logs strings.Builder
		r, err := Open(c, Options{Logger: newTestLogger(&logs)})
		if err != nil {
			t.Fatal(err)
		}
		return r, &logs
	}
	r, _ := open(both)
	r.Close(context.Background())
	r, logs := open(one)
	r.Close(context.Background())
	if l := logs.String(); strings.Contains(l, "pending events are kept") || !strings.Contains(l, "nothing is pending for it") {
		t.Fatalf("logs with nothing pending for the removed target:\n%s\nwant no \"pending events are kept\" WARN", l)
	}

	r, _ = open(both)
	if err := r.Pause("arn:minio:sqs::2:webhook"); err != nil {
		t.Fatal(err)
	}
	if err := r.SetBucketRules("images", []rules.Rule{{ARN: "arn:minio:sqs::2:webhook"}}); err != nil {
		t.Fatal(err)
	}
	if err := r.Publish(context.Background(), records("images", 1, 2)...); err != nil {
		t.Fatal(err)
	}
	r.Close(context.Background())
	r, logs = open(one)
	r.Close(context.Background())
	if l := logs.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "pending events are kept") || !strings.Contains(l, "pending=2") {
		t.Fatalf("logs with 2 events pending for the removed target:\n%s\nwant the WARN with pending=2", l)
	}
}

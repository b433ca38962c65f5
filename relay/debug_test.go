package relay

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestDebugLevelAddsLines: with logLevel debug the relay logs each
// publish (records, routed, duration) and each send (target, events,
// duration); at info it logs neither.
func TestDebugLevelAddsLines(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelDebug, slog.LevelInfo} {
		rcv := newTestReceiver(t)
		c, err := ParseConfig([]byte(fmt.Sprintf(`{"relay":{"dataDir":%q},"notify":{"webhook":{"1":{"enable":true,"endpoint":%q}}},
"buckets":{"images":[{"arn":"arn:minio:sqs::1:webhook"}]}}`, t.TempDir(), rcv.URL())))
		if err != nil {
			t.Fatal(err)
		}
		var logs strings.Builder
		r, err := Open(c, Options{Logger: slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, &slog.HandlerOptions{Level: level}))})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Publish(context.Background(), records("images", 1, 3)...); err != nil {
			t.Fatal(err)
		}
		waitBodies(t, rcv, 3, 10*time.Second)
		r.Close(context.Background())
		l := logs.String()
		logged := strings.Contains(l, `msg="events logged" records=3 routed=3 duration=`)
		sent := strings.Contains(l, `msg=sent target=arn:minio:sqs::1:webhook`) && strings.Contains(l, "first_seq=1")
		if level == slog.LevelDebug && (!logged || !sent) {
			t.Fatalf("debug logs:\n%s\nwant an \"events logged\" line and a \"sent\" line for the target", l)
		}
		if level == slog.LevelInfo && (logged || sent) {
			t.Fatalf("info logs:\n%s\nwant no debug lines", l)
		}
	}
}

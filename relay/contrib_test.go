package relay

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestTargetExamplesLoad: testdata/targets has a configuration of every
// kind of target, and each loads with its target and bucket rule.
func TestTargetExamplesLoad(t *testing.T) {
	for _, kind := range kindNames() {
		t.Run(kind, func(t *testing.T) {
			c, err := LoadConfig(filepath.Join("..", "testdata", "targets", kind+".json"))
			if err != nil {
				t.Fatalf("got %v, want testdata/targets/%s.json to load", err, kind)
			}
			arn := "arn:minio:sqs::1:" + kind
			if got := c.EnabledARNs(); len(got) != 1 || got[0] != arn {
				t.Fatalf("enabled targets %v, want [%s]", got, arn)
			}
			if rs := c.Buckets["images"]; len(rs) != 1 || rs[0].ARN != arn {
				t.Fatalf("rules %v, want one for %s", rs, arn)
			}
		})
	}
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "targets", "*.json"))
	if len(files) != len(kindNames()) {
		t.Fatalf("testdata/targets has %d files, want one per kind (%v)", len(files), kindNames())
	}
}

// TestAlertRulesUseExportedMetrics: every relay_ metric the Prometheus
// alerting rules in contrib/ use is one the relay exports.
func TestAlertRulesUseExportedMetrics(t *testing.T) {
	rulesDoc, err := os.ReadFile(filepath.Join("..", "contrib", "prometheus", "relay.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	used := regexp.MustCompile(`\brelay_[a-z_]+`).FindAllString(string(rulesDoc), -1)
	if len(used) == 0 {
		t.Fatal("the rules use no relay_ metric")
	}
	r := openRelay(t, testConfig(t, t.TempDir(), "http://127.0.0.1:1/", `,"queueLimit":5000`))
	if err := r.Publish(context.Background(), records("images", 0, 1)...); err != nil {
		t.Fatal(err)
	}
	m := do(t, r.Handler(), "GET", "/metrics", "").Body.String()
	for _, name := range used {
		if !regexp.MustCompile(`(?m)^` + name + `[{ ]`).MatchString(m) {
			t.Errorf("the alert rules use %s, which the relay does not export", name)
		}
	}
	if !strings.Contains(m, "relay_wal_limit_events 5000\n") || !strings.Contains(m, "relay_wal_limit_bytes 4.294967296e+09\n") {
		t.Errorf("metrics lack the log's limits (queueLimit 5000, default bytes):\n%s", m)
	}
}

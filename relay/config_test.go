package relay

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bucketrelay/bucketrelay/rules"
)

// seedDoc wraps one of the seed guide's "notify" fragments (testdata/seed,
// copied verbatim from the guide) into a configuration document. A
// fragment's trailing comma separates it from the next kind in the guide's
// full file, so it is dropped.
func seedDoc(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "seed", name))
	if err != nil {
		t.Fatal(err)
	}
	frag := strings.TrimRight(string(b), " \n")
	frag = strings.TrimSuffix(frag, ",")
	return []byte("{\n\"relay\": {\"dataDir\": \"x\"},\n\"notify\": {\n" + frag + "\n}}\n")
}

func TestSeedExamplesLoad(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "seed", "*.json"))
	if len(files) < 10 {
		t.Fatalf("found %d seed examples, want 10", len(files))
	}
	for _, f := range files {
		name := filepath.Base(f)
		if strings.HasPrefix(name, "nats") || name == "webhook.json" {
			continue // not valid JSON in the guide; see TestSeedInvalidExamples
		}
		t.Run(name, func(t *testing.T) {
			c, err := ParseConfig(seedDoc(t, name))
			if err != nil {
				t.Fatalf("seed example %s: %v", name, err)
			}
			kind := strings.TrimSuffix(name, ".json")
			if len(c.Targets) != 1 || c.Targets[0].Kind != kind || !c.Targets[0].Enabled {
				t.Fatalf("targets = %+v, want one enabled %s", c.Targets, kind)
			}
			if got, want := c.Targets[0].ARN, "arn:minio:sqs::1:"+kind; got != want {
				t.Fatalf("ARN = %s, want %s", got, want)
			}
		})
	}
}

func TestSeedInvalidExamples(t *testing.T) {
	for _, c := range []struct {
		file      string
		line, col int
	}{
		// The NATS examples lack a comma after "pingInterval": 0; the error
		// is where "streaming" starts (line 14 of the wrapped document).
		{"nats.json", 14, 9},
		{"nats2.json", 14, 9},
		// The webhook example lacks its closing brace: the document ends early.
		{"webhook.json", 10, 1},
	} {
		_, err := ParseConfig(seedDoc(t, c.file))
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Fatalf("%s: err %v, want a ConfigError", c.file, err)
		}
		if ce.Line != c.line || ce.Column != c.col {
			t.Errorf("%s: error at %d:%d (%v), want %d:%d", c.file, ce.Line, ce.Column, err, c.line, c.col)
		}
	}
	// With the comma added, the NATS example loads.
	doc := strings.Replace(string(seedDoc(t, "nats.json")), `"pingInterval": 0`, `"pingInterval": 0,`, 1)
	if _, err := ParseConfig([]byte(doc)); err != nil {
		t.Fatalf("NATS example with the comma added: %v", err)
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	for _, c := range []struct{ doc, path string }{
		{`{"notify":{"webhook":{"1":{"enable":true}}}}`, "notify.webhook.1.endpoint"},
		{`{"notify":{"webhook":{"1":{"enable":true,"endpoint":"http://x/","bogus":1}}}}`, "notify.webhook.1.bogus"},
		{`{"notify":{"webhook":{"1":{"enable":"yes","endpoint":"http://x/"}}}}`, "notify.webhook.1.enable"},
		{`{"notify":{"webhook":{"1":{"endpoint":"http://x/"}}}}`, "notify.webhook.1.enable"},
		{`{"notify":{"webhook":{"1":{"enable":true,"endpoint":42}}}}`, "notify.webhook.1.endpoint"},
		{`{"notify":{"carrierpigeon":{}}}`, "notify.carrierpigeon"},
		{`{"relay":{"listen":"0.0.0.0:9900"}}`, "relay.accessToken"},
		{`{"relay":{"maxBackoff":"soon"}}`, "relay.maxBackoff"},
		{`{"relay":{"dataDir":"x","colour":"red"}}`, "relay.colour"},
		{`{"notify":{"webhook":{"1":{"enable":true,"endpoint":"http://x/"}}},"buckets":{"images":[{"arn":"arn:minio:sqs::2:webhook","events":["put"]}]}}`, "buckets.images.0.arn"},
		{`{"notify":{"webhook":{"1":{"enable":true,"endpoint":"http://x/"}}},"buckets":{"images":[{"arn":"arn:minio:sqs::1:webhook","events":["s3:Bogus"]}]}}`, "buckets.images.0"},
		{`{"extra":1}`, "extra"},
	} {
		_, err := ParseConfig([]byte(c.doc))
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Path != c.path {
			t.Errorf("ParseConfig(%s) = %v, want an error at %s", c.doc, err, c.path)
		}
	}
}

func TestDisabledTargetsParsedNotStarted(t *testing.T) {
	c := parseConfig(t, `{"relay":{"dataDir":"`+t.TempDir()+`"},"notify":{"webhook":{"1":{"enable":true,"endpoint":"http://127.0.0.1:1/"},"2":{"enable":false,"endpoint":"http://127.0.0.1:2/"}}}}`)
	if len(c.Targets) != 2 {
		t.Fatalf("parsed %d targets, want 2", len(c.Targets))
	}
	r := openRelay(t, c)
	if got := r.ARNs(); len(got) != 1 || got[0] != "arn:minio:sqs::1:webhook" {
		t.Fatalf("ARNs = %v, want only the enabled target", got)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"relay":{"dataDir":"d","listen":"127.0.0.1:9900"},"notify":{"webhook":{"1":{"enable":true,"endpoint":"http://localhost:3000/"}}},"buckets":{"images":[{"arn":"arn:minio:sqs::1:webhook","events":["put"],"suffix":".jpg"}]}}`))
	f.Add([]byte(`{"notify":{"webhook":{"1":{"enable":true}}}}`))
	f.Add([]byte(`{"notify":{"redis":{"1":{"enable":true,"format":"namespace","address":"127.0.0.1:6379","password":"yoursecret","key":"bucketevents"}}}}`))
	f.Add([]byte("{\n\"notify\": {\n\"webhook\": {\n\"1\": {\n}"))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error is not a ConfigError: %T %v", err, err)
			}
			if ce.Path == "" && ce.Line == 0 {
				t.Fatalf("error locates nothing: %v", err)
			}
			return
		}
		for _, tc := range c.Targets {
			if tc.ARN == "" || tc.Params == nil {
				t.Fatalf("target without ARN or params: %+v", tc)
			}
		}
	})
}

// TestExampleConfig loads the README's example configuration.
func TestExampleConfig(t *testing.T) {
	c, err := LoadConfig(filepath.Join("..", "testdata", "relay.example.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.EnabledARNs(), " "); got != "arn:minio:sqs::1:redis arn:minio:sqs::1:webhook" {
		t.Fatalf("ARNs = %s", got)
	}
	if len(c.Buckets["images"]) != 2 || c.Buckets["images"][0].Suffix != ".jpg" {
		t.Fatalf("buckets = %+v", c.Buckets)
	}
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	example, _ := os.ReadFile(filepath.Join("..", "testdata", "relay.example.json"))
	if !strings.Contains(string(readme), string(example)) {
		t.Fatal("README.md's example configuration differs from testdata/relay.example.json")
	}
}

// TestGoRuleDefaultsMatchFileRules: a rule without events set through
// SetBucketRules gets the same events as the same rule from the file.
func TestGoRuleDefaultsMatchFileRules(t *testing.T) {
	dir := t.TempDir()
	c := parseConfig(t, `{"relay":{"dataDir":"`+dir+`"},
"notify":{"webhook":{"1":{"enable":true,"endpoint":"http://127.0.0.1:1/"}}},
"buckets":{"images":[{"arn":"arn:minio:sqs::1:webhook","suffix":".jpg"}]}}`)
	file := c.Buckets["images"]
	r := openRelay(t, c)
	if err := r.SetBucketRules("docs", []rules.Rule{{ARN: "arn:minio:sqs::1:webhook", Suffix: ".jpg"}}); err != nil {
		t.Fatalf("SetBucketRules of a rule without events: %v", err)
	}
	if got, want := fmt.Sprint(r.BucketRules("docs")), fmt.Sprint(file); got != want {
		t.Fatalf("Go-built rule = %s, want the file rule's %s", got, want)
	}
}

// TestConfigRefusedNotIgnored: configurations once accepted silently are
// refused with the path of the offending field.
func TestConfigRefusedNotIgnored(t *testing.T) {
	const hook = `"notify":{"webhook":{"1":{"enable":true,"endpoint":"http://x/"},"2":{"enable":false,"endpoint":"http://y/"}}}`
	for _, c := range []struct{ doc, path, want string }{
		{`{"relay":{"minBackoff":"10h","maxBackoff":"1ms"}}`, "relay.minBackoff", "10h is greater than relay.maxBackoff 1ms"},
		{`{"relay":{"minBackoff":"10s"}}`, "relay.minBackoff", "5s (the default)"},
		{`{"relay":{"maxBackoff":"50ms"}}`, "relay.minBackoff", "100ms (the default) is greater"},
		{`{` + hook + `,"buckets":{"images":[{"arn":"arn:minio:sqs::2:webhook"}]}}`, "buckets.images.0.arn", "notify.webhook.2.enable is false"},
	} {
		_, err := ParseConfig([]byte(c.doc))
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Path != c.path || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseConfig(%s) = %v, want an error at %s with %q", c.doc, err, c.path, c.want)
		}
	}
	path := filepath.Join(t.TempDir(), "relay.json")
	os.WriteFile(path, []byte("\n  null\n"), 0o600)
	_, err := LoadConfig(path)
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Line != 2 || ce.Column != 3 || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "not null") {
		t.Errorf("LoadConfig of null = %v, want an error at %s:2:3", err, path)
	}
	if _, err := ParseConfig([]byte(`{"relay":{"minBackoff":"1s","maxBackoff":"1s"},` + hook + `,"buckets":{"images":[{"arn":"arn:minio:sqs::1:webhook"}]}}`)); err != nil {
		t.Errorf("equal backoffs and a rule to an enabled target: %v", err)
	}
}

// TestEmptyConfigWarns: {} starts a relay (it takes and drops events) and
// says at start that no target is enabled.
func TestEmptyConfigWarns(t *testing.T) {
	c := parseConfig(t, `{}`)
	c.Relay.DataDir = t.TempDir()
	var logs strings.Builder
	r, err := Open(c, Options{Logger: newTestLogger(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "no target is enabled") {
		t.Fatalf("logs at start:\n%s\nwant a WARN that no target is enabled", logs.String())
	}
}

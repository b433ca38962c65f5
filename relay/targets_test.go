package relay

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/internal/testenv"
)

// TestEveryKindOpensWithoutWaiting: the guide's example of every kind
// opens at once and lists its ARN. Targets connect lazily, so one whose
// server is down (most of the guide's addresses are) never delays startup.
func TestEveryKindOpensWithoutWaiting(t *testing.T) {
	var frags []string
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "seed", "*.json"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		frag := strings.TrimSuffix(strings.TrimRight(string(b), " \n"), ",")
		switch filepath.Base(f) {
		case "nats2.json":
			continue
		case "nats.json":
			frag = strings.Replace(frag, `"pingInterval": 0`, `"pingInterval": 0,`, 1)
		case "webhook.json":
			frag += "}"
		}
		frags = append(frags, frag)
	}
	doc := `{"relay":{"dataDir":"` + t.TempDir() + `"},"notify":{` + strings.Join(frags, ",") + `}}`
	c := parseConfig(t, doc)
	start := time.Now()
	r := openRelay(t, c)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Open took %v with every server down", d)
	}
	want := []string{"amqp", "elasticsearch", "kafka", "mqtt", "mysql", "nats", "postgresql", "redis", "webhook"}
	var got []string
	for _, a := range r.ARNs() {
		got = append(got, a[strings.LastIndexByte(a, ':')+1:])
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ARNs of kinds %v, want %v", got, want)
	}
}

// TestRedisThroughTheRelay runs a store target end to end through the
// relay's configuration, rules and HTTP API against the real Redis.
func TestRedisThroughTheRelay(t *testing.T) {
	addr := testenv.Getenv("RELAY_TEST_REDIS_ADDR", "127.0.0.1:6379")
	testenv.Require(t, "redis", addr)
	key := fmt.Sprintf("relay-test-%d", time.Now().UnixNano())
	doc := fmt.Sprintf(`{"relay":{"dataDir":%q},
"notify":{"redis":{"1":{"enable":true,"format":"namespace","address":%q,"key":%q}}},
"buckets":{"images":[{"arn":"arn:minio:sqs::1:redis","events":["put","delete"],"suffix":".jpg"}]}}`, t.TempDir(), addr, key)
	c := parseConfig(t, doc)
	r := openRelay(t, c)
	ctx := context.Background()
	err := r.Publish(ctx,
		targettest.Record("images", "a.jpg", event.ObjectCreatedPut, 0),
		targettest.Record("images", "b.jpg", event.ObjectCreatedPut, 1),
		targettest.Record("images", "notes.txt", event.ObjectCreatedPut, 2),
		targettest.Record("images", "a.jpg", event.ObjectRemovedDelete, 3),
	)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := redis.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	defer conn.Do("DEL", key)
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := redis.StringMap(conn.Do("HGETALL", key))
		if err != nil {
			t.Fatal(err)
		}
		if len(m) == 1 && strings.Contains(m["images/b.jpg"], `"Records":[`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hash %s = %v, want only images/b.jpg", key, m)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

package redis

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	redigo "github.com/gomodule/redigo/redis"

	"github.com/bucketrelay/bucketrelay/internal/testenv"
)

// addr is the test server: scripts/services.sh starts it without a password.
var addr = testenv.Getenv("RELAY_TEST_REDIS", "127.0.0.1:6379")

// dataDir is where the test server keeps its RDB file across the restarts
// the tests cause: services.sh starts redis-server in the current
// directory, and the tests start it here, so a restart reloads what the
// server had acknowledged (SHUTDOWN SAVE), as a server with persistence
// does.
const dataDir = "/tmp/bucketrelay-redis-test"

func requireRedis(t testing.TB) {
	t.Helper()
	testenv.Require(t, "redis", addr)
}

func dial(t testing.TB) redigo.Conn {
	t.Helper()
	c, err := redigo.Dial("tcp", addr, redigo.DialConnectTimeout(5*time.Second))
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	return c
}

func do(t testing.TB, cmd string, args ...any) any {
	t.Helper()
	c := dial(t)
	defer c.Close()
	r, err := c.Do(cmd, args...)
	if err != nil {
		t.Fatalf("%s %v: %v", cmd, args, err)
	}
	return r
}

// uniqueKey returns a fresh key, deleted when the test ends.
func uniqueKey(t testing.TB, name string) string {
	t.Helper()
	k := fmt.Sprintf("relaytest-%s-%d-%d", name, os.Getpid(), time.Now().UnixNano())
	do(t, "DEL", k)
	t.Cleanup(func() {
		if c, err := redigo.Dial("tcp", addr); err == nil {
			c.Do("DEL", k)
			c.Close()
		}
	})
	return k
}

// hash returns HGETALL key.
func hash(t testing.TB, key string) map[string][]byte {
	t.Helper()
	m, err := redigo.StringMap(do(t, "HGETALL", key), nil)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]byte, len(m))
	for k, v := range m {
		out[k] = []byte(v)
	}
	return out
}

// list returns LRANGE key 0 -1, each item split into its time and body.
func list(t testing.TB, key string) (times []string, bodies [][]byte) {
	t.Helper()
	vals, err := redigo.ByteSlices(do(t, "LRANGE", key, 0, -1), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vals {
		var item []json.RawMessage
		var ts string
		if err := json.Unmarshal(v, &item); err != nil || len(item) != 2 || json.Unmarshal(item[0], &ts) != nil {
			t.Fatalf("list item is not [time, body]: %v: %.200s", err, v)
		}
		times = append(times, ts)
		bodies = append(bodies, item[1])
	}
	return times, bodies
}

// stopRedis shuts the server down, saving its data to dataDir first.
func stopRedis(t testing.TB) {
	t.Helper()
	c := dial(t)
	cfg, err := redigo.StringMap(c.Do("CONFIG", "GET", "*"))
	if err != nil {
		c.Close()
		t.Fatalf("CONFIG GET: %v", err)
	}
	c.Do("SHUTDOWN", "SAVE") // the server closes the connection
	c.Close()
	for i := 0; ; i++ {
		c, err := redigo.Dial("tcp", addr, redigo.DialConnectTimeout(time.Second))
		if err != nil {
			break
		}
		c.Close()
		if i > 100 {
			t.Fatal("redis did not stop")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The first restart moves the RDB file from wherever the server was
	// started (services.sh: the caller's directory) to dataDir.
	if dir, name := cfg["dir"], cfg["dbfilename"]; dir != "" && dir != dataDir && name != "" {
		if err := moveFile(filepath.Join(dir, name), filepath.Join(dataDir, "dump.rdb")); err != nil {
			t.Logf("moving the RDB file: %v", err)
		}
	}
	services(t, "stop")
}

// startRedis starts the server in dataDir, so it loads the saved data.
func startRedis(t testing.TB) {
	t.Helper()
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	services(t, "start")
	for i := 0; ; i++ {
		c, err := redigo.Dial("tcp", addr)
		if err == nil {
			_, err = c.Do("PING") // LOADING while the RDB file is read
			c.Close()
			if err == nil {
				return
			}
		}
		if i > 200 {
			t.Fatalf("redis did not come back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// services runs scripts/services.sh verb redis in dataDir, where the
// server it starts keeps its RDB file.
func services(t testing.TB, verb string) {
	t.Helper()
	cmd := exec.Command(testenv.ServicesScript(t), verb, "redis")
	cmd.Dir = dataDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("services.sh %s redis: %v: %s", verb, err, out)
	}
}

func moveFile(from, to string) error {
	if err := os.Rename(from, to); err == nil {
		return nil
	}
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Remove(from)
}

package relay

import (
	"fmt"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/bucketrelay/bucketrelay/internal/testenv"
)

// testRedis connects to the shared Redis (RELAY_TEST_REDIS_ADDR) and
// returns its address, the connection and a key of the test's own
// ("relay-test-NAME-N"), deleted with the connection closed when the
// test ends.
func testRedis(t *testing.T, name string) (addr string, conn redis.Conn, key string) {
	t.Helper()
	addr = testenv.Getenv("RELAY_TEST_REDIS_ADDR", "127.0.0.1:6379")
	testenv.Require(t, "redis", addr)
	key = fmt.Sprintf("relay-test-%s-%d", name, time.Now().UnixNano())
	conn, err := redis.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Do("DEL", key); conn.Close() })
	return addr, conn, key
}

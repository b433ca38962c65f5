package main

// Scenario "redis": the Redis target in both formats against the real
// server at 127.0.0.1:6379 (scripts/services.sh start redis): delivered
// rate through log + engine + target beside a direct redigo client sending
// the same batches, and the drain after the server was stopped while a
// backlog built up. The code shared with the other store scenarios is in
// stores.go.

import (
	"context"
	"fmt"
	"os"
	"time"

	redigo "github.com/gomodule/redigo/redis"

	"github.com/bucketrelay/bucketrelay/adapters/redis"
	"github.com/bucketrelay/bucketrelay/bench/harness"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/event"
)

func init() { harness.Register("redis", runRedis) }

const benchRedisAddr = "127.0.0.1:6379"

func runRedis(ctx context.Context, o harness.Options) (harness.Result, error) {
	// Keys carry the process id, so concurrent runs do not share data.
	key := func(ns bool) string {
		if ns {
			return fmt.Sprintf("relaybench-ns-%d", os.Getpid())
		}
		return fmt.Sprintf("relaybench-access-%d", os.Getpid())
	}
	do := func(cmd string, args ...any) (any, error) {
		c, err := redigo.Dial("tcp", benchRedisAddr, redigo.DialConnectTimeout(5*time.Second))
		if err != nil {
			return nil, err
		}
		defer c.Close()
		return c.Do(cmd, args...)
	}
	sb := &storeBench{
		name:   "redis",
		client: "redigo, RPUSH (access) or MULTI/HSET/EXEC (namespace) per batch,",
		// The kind's default window (adapters/redis/kind.go); the direct
		// client sends on as many connections, each a batch at a time.
		inFlight: redis.Kind.InFlight,
		rateGoal: func(float64) string { return "≥ 50000" },
		newTarget: func(ns bool) (delivery.Target, error) {
			f := "access"
			if ns {
				f = "namespace"
			}
			return redis.New(redis.Config{Enable: true, Format: f, Address: benchRedisAddr, Key: key(ns)}, harness.QuietLogger())
		},
		reset: func(ns bool) error { _, err := do("DEL", key(ns)); return err },
		direct: func(ns bool) (func(context.Context, []delivery.Item) error, func(), error) {
			c, err := redigo.Dial("tcp", benchRedisAddr)
			if err != nil {
				return nil, nil, err
			}
			k := key(ns)
			var buf []byte
			send := func(ctx context.Context, items []delivery.Item) error {
				buf = buf[:0]
				args := make([]any, 1, 1+2*len(items))
				args[0] = k
				for i := range items {
					start := len(buf)
					if ns {
						buf = event.AppendRecords(buf, items[i].Record)
						args = append(args, items[i].Key, buf[start:len(buf):len(buf)])
					} else {
						buf = redis.AppendAccessItem(buf, &items[i])
						args = append(args, buf[start:len(buf):len(buf)])
					}
				}
				if !ns {
					_, err := c.Do("RPUSH", args...)
					return err
				}
				c.Send("MULTI")
				c.Send("HSET", args...)
				_, err := c.Do("EXEC")
				return err
			}
			return send, func() { c.Close() }, nil
		},
		stop:  func() error { return harness.Services("stop", "redis") },
		start: func() error { return harness.Services("start", "redis") },
		ids: func(ns bool) (map[string]uint64, []uint64, error) {
			if ns {
				m, err := redigo.StringMap(do("HGETALL", key(ns)))
				if err != nil {
					return nil, nil, err
				}
				out := make(map[string]uint64, len(m))
				for k, v := range m {
					out[k], _ = requestID([]byte(v))
				}
				return out, nil, nil
			}
			n, err := redigo.Int(do("LLEN", key(ns)))
			if err != nil {
				return nil, nil, err
			}
			var ids []uint64
			for i := 0; i < n; i += 10_000 {
				vals, err := redigo.ByteSlices(do("LRANGE", key(ns), i, i+9_999))
				if err != nil {
					return nil, nil, err
				}
				for _, v := range vals {
					id, _ := requestID(v)
					ids = append(ids, id)
				}
			}
			return nil, ids, nil
		},
	}
	if _, err := do("PING"); err != nil {
		return harness.Result{}, fmt.Errorf("redis is not reachable at %s (scripts/services.sh start redis): %w", benchRedisAddr, err)
	}
	return sb.run(ctx, o)
}

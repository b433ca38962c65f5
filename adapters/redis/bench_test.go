package redis

import (
	"context"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	redigo "github.com/gomodule/redigo/redis"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
)

// BenchmarkSend measures one Send of 1,000 realistic events: the rate, and
// the CPU time per event of this process and of redis-server (INFO cpu),
// which are steadier than the rate on a shared machine.
func BenchmarkSend(b *testing.B) {
	requireRedis(b)
	for _, format := range []string{"namespace", "access"} {
		b.Run(format, func(b *testing.B) {
			key := uniqueKey(b, "bench")
			tg := newTarget(b, Config{Format: format, Address: addr, Key: key})
			defer tg.Close()
			items := make([]delivery.Item, 1000)
			for i := range items {
				items[i] = targettest.Item("images", "photos/"+string(rune('a'+i%26))+string(rune('a'+i/26)), event.ObjectCreatedPut, i)
			}
			b.SetBytes(int64(len(items) * len(items[0].Record)))
			self0, server0 := processCPU(), serverCPU(b)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := tg.Send(context.Background(), items); err != nil {
					b.Fatal(err)
				}
				if format == "access" && i%50 == 49 {
					do(b, "DEL", key)
				}
			}
			b.StopTimer()
			n := float64(b.N * len(items))
			b.ReportMetric(n/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64((processCPU()-self0).Nanoseconds())/n, "client-cpu-ns/event")
			b.ReportMetric(float64((serverCPU(b)-server0).Nanoseconds())/n, "server-cpu-ns/event")
		})
	}
}

// processCPU returns the CPU time (user and system) this process used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverCPU returns the CPU time redis-server used (INFO cpu).
func serverCPU(t testing.TB) time.Duration {
	info, err := redigo.String(do(t, "INFO", "cpu"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for _, line := range strings.Split(info, "\r\n") {
		k, v, _ := strings.Cut(line, ":")
		if k == "used_cpu_sys" || k == "used_cpu_user" {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return time.Duration(total * float64(time.Second))
}

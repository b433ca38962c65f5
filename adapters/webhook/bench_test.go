package webhook

import (
	"context"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
)

// BenchmarkRequest measures the CPU the webhook spends per event building
// a POST (body, headers, id, signature) in each format, beside the plain
// guide's body: what CloudEvents and signing cost. The HTTP exchange
// itself is the same for all of them and is left out. Run with
//
//	go test -run '^$' -bench Request -benchtime 2s ./adapters/webhook
//
// and read cpu-µs/event: the process's CPU time (user and system, GC
// included) per event.
func BenchmarkRequest(b *testing.B) {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"plain", Config{}},
		{"cloudevents-binary", Config{Format: kit.FormatCloudEvents}},
		{"cloudevents-structured", Config{Format: kit.FormatCloudEvents, CloudEventsMode: kit.CloudEventsStructured}},
		{"signed", Config{SigningSecrets: []string{secret}}},
		{"signed-cloudevents-binary", Config{Format: kit.FormatCloudEvents, SigningSecrets: []string{secret}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			cfg := c.cfg
			cfg.Enable, cfg.Endpoint = true, "http://127.0.0.1:1/hook"
			tg, err := New(cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			it := targettest.Item("images", "2026/11/photo 1.jpg", event.ObjectCreatedPut, 7)
			it.LogID = "3f9a0c1d2e4b5a69"
			ctx := context.Background()
			b.ReportAllocs()
			b.SetBytes(int64(len(it.Record)))
			b.ResetTimer()
			cpu0 := cpuTime()
			for range b.N {
				req, err := tg.request(ctx, &it)
				if err != nil {
					b.Fatal(err)
				}
				// Read the body as the transport would.
				if _, err := io.Copy(io.Discard, req.Body); err != nil {
					b.Fatal(err)
				}
			}
			// CPU time, GC included, is steadier than ns/op on a machine
			// other processes load.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/event")
		})
	}
}

// cpuTime returns the CPU time the process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

package webhook

import (
	"context"
	"fmt"
	"github.com/bucketrelay/bucketrelay/delivery"
	"io"
	"net/http"
	"net/http/httptest"
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

// BenchmarkSend measures a whole Send of 500 events to a loopback endpoint
// that reads each body and answers 200: request building, the HTTP
// exchange (both sides: the endpoint runs in this process) and the
// answer, with h1 (plain http://) and with net/http's client (https, or
// a proxy). cpu-µs/event is the process's CPU per event; events/s the
// rate.
//
//	go test -run '^$' -bench Send -benchtime 3x ./adapters/webhook
func BenchmarkSend(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	const n = 500
	items := make([]delivery.Item, n)
	for i := range items {
		items[i] = targettest.Item("images", fmt.Sprintf("2026/11/photo %d.jpg", i), event.ObjectCreatedPut, i)
	}
	for _, c := range []struct {
		client string
		conc   int
	}{{"h1", 1}, {"h1", 4}, {"h1", 16}, {"net-http", 4}} {
		b.Run(fmt.Sprintf("%s-concurrency-%d", c.client, c.conc), func(b *testing.B) {
			tg, err := New(Config{Enable: true, Endpoint: srv.URL + "/hook", Concurrency: c.conc}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer tg.Close()
			if c.client == "net-http" {
				tg.h1 = nil // what an https endpoint or a proxy uses
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			for range b.N {
				if err := tg.Send(ctx, items); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(b.N*n), "cpu-µs/event")
			b.ReportMetric(float64(b.N*n)/time.Since(start).Seconds(), "events/s")
		})
	}
}

package webhook

import (
	"context"
	"io"
	"testing"

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
// and read ns/op as CPU per event (one goroutine, no I/O).
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
		})
	}
}

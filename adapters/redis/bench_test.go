package redis

import (
	"context"
	"testing"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
)

// BenchmarkSend measures one Send of 1,000 realistic events.
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
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := tg.Send(context.Background(), items); err != nil {
					b.Fatal(err)
				}
				if format == "access" && i%50 == 49 {
					do(b, "DEL", key)
				}
			}
			b.ReportMetric(float64(b.N*len(items))/b.Elapsed().Seconds(), "events/s")
		})
	}
}

package postgresql

import (
	"context"
	"fmt"
	"testing"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
)

// BenchmarkSend measures one Send of 1,000 realistic events.
func BenchmarkSend(b *testing.B) {
	requirePostgres(b)
	for _, format := range []string{"namespace", "access"} {
		b.Run(format, func(b *testing.B) {
			table := uniqueTable(b, "bench")
			tg := newTarget(b, seedConfig(format, table))
			defer tg.Close()
			items := make([]delivery.Item, 1000)
			for i := range items {
				items[i] = targettest.Item("images", fmt.Sprintf("photos/%04d.jpg", i), event.ObjectCreatedPut, i)
			}
			b.SetBytes(int64(len(items) * len(items[0].Record)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := tg.Send(context.Background(), items); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(items))/b.Elapsed().Seconds(), "events/s")
		})
	}
}

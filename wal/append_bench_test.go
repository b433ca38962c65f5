package wal

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkAppend100 appends 100 entries of about 1 KiB per call from
// 16 goroutines (b.SetParallelism over 2 CPUs: 8 per CPU), fsync on, while
// a reader reads and acknowledges them: the log alone under the bench's
// "16 × 100" load.
func BenchmarkAppend100(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "wal.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	cursor := l.Register("t")
	es := make([]*Entry, 100)
	pad := bytes.Repeat([]byte("x"), 900)
	for i := range es {
		es[i] = &Entry{Targets: []string{"t"}, Key: fmt.Sprintf("images/photos/%d.jpg", i), Name: "s3:ObjectCreated:Put",
			Data: fmt.Appendf(nil, `{"eventName":"s3:ObjectCreated:Put","s3":{"object":{"key":"photos/%d.jpg","size":%d}},"pad":%q}`, i, i*100, pad)}
	}
	stop := make(chan struct{})
	read := make(chan struct{})
	go func() {
		defer close(read)
		for {
			wake := l.Appended()
			next, err := l.Read(context.Background(), cursor, "t", func(Record) bool { return true })
			if err == nil && next > cursor {
				cursor = next
				l.Advance("t", cursor)
				continue
			}
			select {
			case <-wake:
			case <-stop:
				return
			}
		}
	}()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Append(context.Background(), es...); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	close(stop)
	<-read
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
}

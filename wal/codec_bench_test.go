//go:build codecbench

// The codec benchmark runs on the bench's own records (bench/harness, a
// large import): go test -tags codecbench -run '^$' -bench Codec ./wal/

package wal_test

import (
	"testing"

	"github.com/bucketrelay/bucketrelay/bench/harness"
	"github.com/bucketrelay/bucketrelay/testkit/cpuclock"
	"github.com/bucketrelay/bucketrelay/wal"
)

// BenchmarkCodec encodes and decodes one 512 KiB frame (the size group
// commits are cut at) of the bench's ~1 KiB S3 records, with each codec:
// cpu-ns/event is the process's CPU time per event (steady on a loaded
// machine, where ns/event, wall time, is not) of the frame code (records,
// CRC-32C and compression, garbage collection included); ratio is the
// records' bytes over the frame's.
func BenchmarkCodec(b *testing.B) {
	pool := harness.NewPool(512)
	entries := make([]*wal.Entry, 0, len(pool.Raws))
	raw := 0
	for i, data := range pool.Raws {
		if raw >= 512<<10 {
			break
		}
		entries = append(entries, &wal.Entry{Targets: []string{"arn:minio:sqs::bench:nats"}, Key: pool.Keys[i], Name: "s3:ObjectCreated:Put", Data: data})
		raw += len(data) + len(pool.Keys[i]) + len("s3:ObjectCreated:Put")
	}
	for _, c := range []wal.Compression{wal.CompressionZstd, wal.CompressionS2, wal.CompressionNone} {
		v := wal.EncodeFrameForBench(c, entries)
		ratio := float64(raw) / float64(len(v))
		b.Run("encode/"+string(c), func(b *testing.B) {
			b.SetBytes(int64(raw))
			cpu0 := cpuclock.Process()
			for b.Loop() {
				wal.EncodeFrameForBench(c, entries)
			}
			b.ReportMetric(float64(cpuclock.Process()-cpu0)/float64(b.N*len(entries)), "cpu-ns/event")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(entries)), "ns/event")
			b.ReportMetric(ratio, "ratio")
		})
		b.Run("decode/"+string(c), func(b *testing.B) {
			b.SetBytes(int64(raw))
			cpu0 := cpuclock.Process()
			for b.Loop() {
				if _, err := wal.DecodeFrameForBench(v); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuclock.Process()-cpu0)/float64(b.N*len(entries)), "cpu-ns/event")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(entries)), "ns/event")
			b.ReportMetric(ratio, "ratio")
		})
	}
}

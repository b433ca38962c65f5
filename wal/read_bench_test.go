package wal

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// BenchmarkRead reads a backlog of about 1 KiB records through Read, as a
// delivery loop does (windows of 1,600 records), with a callback that keeps
// nothing: the log's own read cost per record, decompression, checksums,
// decoding and garbage collection included (cpu-ns/event, steady on a
// loaded machine). Each pass decodes every frame again: the backlog holds
// more frames than the decoded-frame cache.
func BenchmarkRead(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "wal.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	l.Register("t")
	es := make([]*Entry, 1000)
	for i := range es {
		es[i] = &Entry{Targets: []string{"t"}, Key: fmt.Sprintf("images/photos/%d.jpg", i), Name: "s3:ObjectCreated:Put", EventTime: time.Now(), Data: benchRecord(i)}
	}
	const backlog = 20_000
	for range backlog / len(es) {
		if _, err := l.Append(context.Background(), es...); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	b.ResetTimer()
	cpu0 := cpuTimeBench()
	n, from := 0, uint64(1)
	for n < b.N {
		got := 0
		next, err := l.Read(ctx, from, "t", func(r Record) bool {
			got++
			return got < 1600
		})
		if err != nil {
			b.Fatal(err)
		}
		n += got
		from = next
		if from > l.LastSeq() {
			from = 1
		}
	}
	b.ReportMetric(float64(cpuTimeBench()-cpu0)/float64(n), "cpu-ns/event")
}

// benchRecord is an S3 event record of about 1 KiB, shaped like the ones
// object stores send (and compressing like them).
func benchRecord(i int) []byte {
	return fmt.Appendf(nil, `{"eventVersion":"2.0","eventSource":"minio:s3","awsRegion":"","eventTime":"2026-11-25T12:00:%02d.%06dZ",`+
		`"eventName":"s3:ObjectCreated:Put","userIdentity":{"principalId":"minio"},"requestParameters":{"principalId":"minio","region":"","sourceIPAddress":"127.0.0.1:%d"},`+
		`"responseElements":{"x-amz-id-2":"%x","x-amz-request-id":"%016X","x-minio-deployment-id":"5d2b3c6e-8f0a-4b1c-9d7e-%012x","x-minio-origin-endpoint":"http://127.0.0.1:9000"},`+
		`"s3":{"s3SchemaVersion":"1.0","configurationId":"Config","bucket":{"name":"images","ownerIdentity":{"principalId":"minio"},"arn":"arn:aws:s3:::images"},`+
		`"object":{"key":"photos%%2F%d.jpg","size":%d,"eTag":"%032x","contentType":"image/jpeg","userMetadata":{"content-type":"image/jpeg"},"sequencer":"%016X"}},`+
		`"source":{"host":"127.0.0.1","port":"%d","userAgent":"MinIO (linux; amd64) minio-go/v7.0.70 mc/RELEASE.2024-06-12T14-34-03Z"}}`,
		i%60, i*7919%1000000, 30000+i%30000, uint64(i)*0x9E3779B97F4A7C15, uint64(i)*0xC2B2AE3D27D4EB4F, i*31, i, 1000+i*37, uint64(i)*0x165667B19E3779F9, uint64(i)*0x27D4EB2F165667C5, 30000+i%30000)
}

func cpuTimeBench() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

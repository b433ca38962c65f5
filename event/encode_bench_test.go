package event

import (
	"encoding/json"
	"testing"

	"github.com/bucketrelay/bucketrelay/testkit/cpuclock"
)

func BenchmarkAppendJSON(b *testing.B) {
	r := benchRecord()
	buf := make([]byte, 0, 4096)
	b.SetBytes(int64(len(r.AppendJSON(nil))))
	c := cpuclock.Start(b)
	for b.Loop() {
		buf = r.AppendJSON(buf[:0])
	}
	c.Report(b, 1, "op")
}

func BenchmarkMarshal(b *testing.B) {
	r := benchRecord()
	b.SetBytes(int64(len(r.AppendJSON(nil))))
	c := cpuclock.Start(b)
	for b.Loop() {
		json.Marshal(&r)
	}
	c.Report(b, 1, "op")
}

// benchRecord is like the ingest scenario's records: about 1 KiB of JSON.
func benchRecord() Record {
	r := NewRecord(ObjectCreatedPut, ObjectInfo{Bucket: "images", Key: "photos/2026/11/25/IMG_00001234.jpg", Size: 2345, ETag: "0123456789abcdef0123456789abcdef", ContentType: "image/jpeg"}, Request{})
	r.RequestParameters = map[string]string{"sourceIPAddress": "127.0.0.1:38062"}
	r.ResponseElements = map[string]string{"x-amz-request-id": "00000000000004D2", "x-minio-origin-endpoint": "http://127.0.0.1:9000"}
	r.S3.Object.UserMetadata = map[string]string{
		"X-Amz-Meta-Camera":   "NIKON D850 / AF-S NIKKOR 24-70mm f/2.8E ED VR",
		"X-Amz-Meta-Uploader": "ingest-pipeline-07.eu-west.example.internal",
		"X-Amz-Meta-Checksum": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
	}
	r.Source = &Source{Host: "127.0.0.1", Port: "38062", UserAgent: "MinIO (linux; amd64) minio-go/v7.0.0 mc/RELEASE"}
	return r
}

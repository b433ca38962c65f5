// Package benchrec makes the S3 event records that benchmarks and bench/
// publish: one generator, so a micro-benchmark and the scenario it stands
// for measure the same bodies.
package benchrec

import (
	"encoding/json"
	"fmt"

	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
)

// Bucket is the bucket every record is in.
const Bucket = "images"

// padding is user metadata that brings a record's JSON to about 1 KiB,
// the size of a MinIO record with a few x-amz-meta headers.
var padding = map[string]string{
	"X-Amz-Meta-Camera":   "NIKON D850 / AF-S NIKKOR 24-70mm f/2.8E ED VR",
	"X-Amz-Meta-Uploader": "ingest-pipeline-07.eu-west.example.internal",
	"X-Amz-Meta-Checksum": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
}

// Record returns a realistic record of about 1 KiB of JSON for the i-th
// object of Bucket (an s3:ObjectCreated:Put of targettest.Record with the
// padding as user metadata). Records share the metadata map: treat it as
// read-only.
func Record(i int) event.Record {
	r := targettest.Record(Bucket, fmt.Sprintf("photos/2026/11/25/IMG_%08d.jpg", i), event.ObjectCreatedPut, i)
	r.S3.Object.UserMetadata = padding
	return r
}

// Pool returns n distinct records, Record(0) to Record(n-1), to be
// published over and over.
func Pool(n int) []event.Record {
	out := make([]event.Record, n)
	for i := range out {
		out[i] = Record(i)
	}
	return out
}

// Size returns the JSON size of one record in bytes.
func Size() int {
	b, _ := json.Marshal(Record(123456))
	return len(b)
}

// Body returns the POST /v1/events body {"Records":[…]} of recs, as MinIO
// sends it.
func Body(recs []event.Record) []byte {
	b := []byte(`{"Records":[`)
	for i := range recs {
		if i > 0 {
			b = append(b, ',')
		}
		raw, err := json.Marshal(&recs[i])
		if err != nil {
			panic(fmt.Sprintf("benchrec: record %d: %v", i, err))
		}
		b = append(b, raw...)
	}
	return append(b, "]}"...)
}

package harness

import (
	"bytes"
	"strconv"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/testkit/benchrec"
)

// Bucket is the bucket every core scenario publishes to.
const Bucket = benchrec.Bucket

// Record fields the scenarios use to carry an event's identity and publish
// time to the receiver or consumer, in the record's requestParameters.
const (
	FieldID   = "benchID"
	FieldTime = "benchT"
)

// epoch is the origin of the monotonic publish stamps.
var epoch = time.Now()

// Since returns the monotonic nanoseconds since the process started: the
// publish stamp of FieldTime.
func Since() int64 { return int64(time.Since(epoch)) }

// Record returns a realistic record of about 1 KiB of JSON for the i-th
// object of Bucket: testkit/benchrec's generator, which the relay's
// micro-benchmarks use too.
func Record(i int) event.Record { return benchrec.Record(i) }

// IDRecord returns Record(id) carrying id in FieldID.
func IDRecord(id int) event.Record {
	r := Record(id)
	r.RequestParameters = map[string]string{"sourceIPAddress": "127.0.0.1:38062", FieldID: strconv.Itoa(id)}
	return r
}

// Stamped returns IDRecord(id) also carrying the current publish stamp
// (Since) in FieldTime.
func Stamped(id int) event.Record {
	r := IDRecord(id)
	r.RequestParameters[FieldTime] = strconv.FormatInt(Since(), 10)
	return r
}

// RecordPool returns n distinct records, to be published over and over.
func RecordPool(n int) []event.Record { return benchrec.Pool(n) }

// RecordSize returns the JSON size of a bench record.
func RecordSize() int { return benchrec.Size() }

// Field finds "name":"digits" in a JSON body.
func Field(b []byte, name string) (int64, bool) {
	key := `"` + name + `":"`
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0, false
	}
	b = b[i+len(key):]
	j := bytes.IndexByte(b, '"')
	if j < 0 {
		return 0, false
	}
	v, err := strconv.ParseInt(string(b[:j]), 10, 64)
	return v, err == nil
}

// ID finds the FieldID of a body.
func ID(b []byte) (int, bool) {
	v, ok := Field(b, FieldID)
	return int(v), ok
}

// Pool is a set of IDRecords ready for the broker scenarios: raw JSON,
// keys, and the message bodies a target sends.
type Pool struct {
	Raws   [][]byte
	Keys   []string
	Bodies [][]byte
}

// NewPool returns the IDRecords 0..n-1.
func NewPool(n int) Pool {
	var p Pool
	for i := range n {
		e := targettest.Entry(IDRecord(i), "x")
		it := delivery.Item{Key: e.Key, EventName: event.Name(e.Name), Record: e.Data}
		p.Raws = append(p.Raws, e.Data)
		p.Keys = append(p.Keys, e.Key)
		p.Bodies = append(p.Bodies, it.Message())
	}
	return p
}

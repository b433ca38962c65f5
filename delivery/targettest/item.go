package targettest

import (
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/event"
)

// Item returns the delivery item the engine would hand a target for
// Record(bucket, key, name, i): sequence i+1, its key, name, time and
// record JSON. It is for tests that call a Target's Send directly.
func Item(bucket, key string, name event.Name, i int) delivery.Item {
	e := Entry(Record(bucket, key, name, i), "x")
	return delivery.Item{Seq: uint64(i + 1), Key: e.Key, EventName: name, EventTime: e.EventTime, Record: e.Data}
}

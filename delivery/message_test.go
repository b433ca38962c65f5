package delivery_test

import (
	"encoding/json"
	"testing"

	"github.com/bucketrelay/bucketrelay/delivery"
)

// AppendMessage appends the same body Message returns, so a buffer reused
// across items gives each its own message.
func TestAppendMessageReusesBuffer(t *testing.T) {
	items := []delivery.Item{
		{Seq: 1, Key: "images/a.jpg", EventName: "s3:ObjectCreated:Put", Record: json.RawMessage(`{"i":1}`)},
		{Seq: 2, Key: "b", EventName: "s3:ObjectRemoved:Delete", Record: json.RawMessage(`{"i":22}`)},
	}
	want := []string{
		`{"EventName":"s3:ObjectCreated:Put","Key":"images/a.jpg","Records":[{"i":1}]}`,
		`{"EventName":"s3:ObjectRemoved:Delete","Key":"b","Records":[{"i":22}]}`,
	}
	buf := []byte("left over")
	for i := range items {
		if got := string(items[i].Message()); got != want[i] {
			t.Fatalf("Message %d = %s, want %s", i, got, want[i])
		}
		buf = items[i].AppendMessage(buf[:0])
		if string(buf) != want[i] {
			t.Fatalf("AppendMessage %d = %s, want %s", i, buf, want[i])
		}
	}
	if got := string(items[0].AppendMessage([]byte("x"))); got != "x"+want[0] {
		t.Fatalf("AppendMessage after a prefix = %s", got)
	}
}

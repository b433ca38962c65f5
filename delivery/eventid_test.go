package delivery

import "testing"

// TestAppendEventID: the appended id is EventID's, byte for byte, and an
// item without a log id appends nothing.
func TestAppendEventID(t *testing.T) {
	for _, it := range []Item{{LogID: "3f9a0c1d2e4b5a69", Seq: 42}, {LogID: "x", Seq: 0}, {LogID: "ab", Seq: 18446744073709551615}, {Seq: 7}} {
		got := string(it.AppendEventID([]byte("pre:")))
		if want := "pre:" + it.EventID(); got != want {
			t.Errorf("AppendEventID(%+v): got %q, want %q", it, got, want)
		}
	}
}

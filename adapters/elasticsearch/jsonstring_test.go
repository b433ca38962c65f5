package elasticsearch

import (
	"encoding/json"
	"testing"
)

// TestAppendJSONString: a document id is written as encoding/json writes
// the key, with or without characters to escape.
func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "images/photos/IMG_0001.jpg", `a"b`, `a\b`, "tab\there", "new\nline", "é.jpg", "<b>&", "\x7f", "\u2028", "bad \xff utf-8"} {
		want, _ := json.Marshal(s)
		if got := appendJSONString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Errorf("appendJSONString(%q) = %s, want x%s", s, got, want)
		}
	}
}

// FuzzAppendJSONString: any key round-trips through the id written.
func FuzzAppendJSONString(f *testing.F) {
	f.Add("images/a.jpg")
	f.Add("a\"\\\x00é")
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Fatalf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	})
}

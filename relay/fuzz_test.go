package relay

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzPostEvents posts whole request bodies to the handler. Whatever the
// body, the relay answers 200, 400 or 413 (never panics, never 500), and a
// 200 means the body was valid UTF-8 JSON whose every record was accepted.
// Seeds in testdata/fuzz/FuzzPostEvents include deep nesting and huge
// arrays; they run in every `go test`.
func FuzzPostEvents(f *testing.F) {
	rec := recordJSON(f, 0)
	f.Add([]byte(`{"Records":[` + rec + `]}`))
	f.Add([]byte(`{"EventName":"s3:ObjectCreated:Put","Key":"images/obj-0.jpg","Records":[` + rec + `,` + rec + `]}`))
	f.Add([]byte(`{"Records":[]}`))
	f.Add([]byte(strings.Repeat("[", 100_000)))
	f.Add([]byte(`{"Records":[` + strings.Repeat("{\"a\":", 70) + `1` + strings.Repeat("}", 70) + `]}`))
	f.Add([]byte(`{"Records":[` + strings.Repeat("1,", 50_000) + `1]}`))
	f.Add([]byte(`{"Records":[` + strings.Replace(rec, `"size":1000`, `"size":"big"`, 1) + `]}`))
	f.Add([]byte("{\"Records\":[" + strings.Replace(rec, "obj-0", "obj-\xff", 1) + "]}"))
	r := ackRelay(f, `,"noSync":true,"maxRequestBytes":1000000`)
	h := r.Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		w := do(t, h, "POST", "/v1/events", string(body))
		switch w.Code {
		case 400, 413:
			var e struct{ Error string }
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("%d without an error message: %s", w.Code, w.Body)
			}
		case 200:
			if !json.Valid(body) || !utf8.Valid(body) {
				t.Fatalf("200 for a body that is not valid UTF-8 JSON: %q", body)
			}
			var m struct{ Records []json.RawMessage }
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatalf("200 for a body encoding/json refuses: %v", err)
			}
			var got struct{ Accepted int }
			json.Unmarshal(w.Body.Bytes(), &got)
			if got.Accepted != len(m.Records) {
				t.Fatalf("accepted %d of %d records", got.Accepted, len(m.Records))
			}
		default:
			t.Fatalf("POST answered %d %s", w.Code, w.Body)
		}
	})
}

// FuzzScanJSON checks the scanner against encoding/json: it accepts exactly
// the valid JSON that is valid UTF-8 and nested at most MaxJSONDepth
// levels, and a record it hands over is a slice of the input that is
// itself valid JSON.
func FuzzScanJSON(f *testing.F) {
	for _, s := range []string{`{}`, `[]`, `"\u00e9"`, `-0.5e+10`, `[1,[2,{"a":null}]]`, `{"a":1,}`, `[01]`, "\"\x01\"", `{"Records":[{"s3":{"object":{"size":7}}}]}`, strings.Repeat("[", 65) + strings.Repeat("]", 65), ` true `, `nul`, `"\ud800"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := scanJSON(b, nil, nil)
		deep := err != nil && strings.Contains(err.Error(), "deeper than")
		if want := json.Valid(b) && utf8.Valid(b); !deep && (err == nil) != want {
			t.Fatalf("scanner error %v, encoding/json valid=%v, for %q", err, want, b)
		}
		_, err = scanJSON(b, bodyNode, func(_ int, raw []byte, _ *recordFields) error {
			if !json.Valid(raw) || !bytes.Contains(b, raw) {
				t.Fatalf("record %q is not valid JSON sliced from the body", raw)
			}
			return nil
		})
		_ = err
	})
}

package jslog

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/internal/logframe"
	"github.com/bucketrelay/bucketrelay/wal"
)

func frameEntries() []*wal.Entry {
	var es []*wal.Entry
	for n := 1; n <= 5; n++ {
		ts := []string{"a"}
		if n%2 == 0 {
			ts = []string{"a", "b"}
		}
		es = append(es, &wal.Entry{Targets: ts, Key: fmt.Sprintf("bucket/obj-%d", n), Name: "s3:ObjectCreated:Put", EventTime: time.Date(2026, 1, 2, 3, 4, 5, n, time.UTC), Data: []byte(fmt.Sprintf(`{"n":%d}`, n))})
	}
	return es
}

func checkFrame(t *testing.T, body []byte, wantCodec logframe.Codec) {
	t.Helper()
	f, err := decodeFrame(7, body)
	if err != nil {
		t.Fatal(err)
	}
	if f.codec != wantCodec {
		t.Errorf("got codec %s, want %s", f.codec, wantCodec)
	}
	es := frameEntries()
	var got []wal.Record
	if err := f.records(0, nil, func(r wal.Record) bool { got = append(got, r); return true }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(es) {
		t.Fatalf("got %d records, want %d", len(got), len(es))
	}
	for i, r := range got {
		e := es[i]
		if r.Seq != Seq(7, i) || r.Key != e.Key || string(r.Data) != string(e.Data) || !r.EventTime.Equal(e.EventTime) || fmt.Sprint(r.Targets) != fmt.Sprint(e.Targets) {
			t.Fatalf("record %d: got %d %q %q %v %v, want %d %q %q %v %v", i, r.Seq, r.Key, r.Data, r.EventTime, r.Targets, Seq(7, i), e.Key, e.Data, e.EventTime, e.Targets)
		}
	}
}

// Every codec's message reads back the same; zstd ones are version 1,
// readable by releases before codecs were selectable.
func TestFrameCodecs(t *testing.T) {
	for _, c := range []logframe.Codec{logframe.S2, logframe.Zstd, logframe.None} {
		t.Run(c.String(), func(t *testing.T) {
			body, count, targets := encodeFrame(c, time.Now(), frameEntries())
			if count != "5" || targets != "a=5&b=2" {
				t.Errorf("got index headers %q %q, want 5 and a=5&b=2", count, targets)
			}
			if want := map[logframe.Codec]byte{logframe.Zstd: frameV1}[c]; want != 0 && body[0] != want {
				t.Errorf("got version %d, want %d", body[0], want)
			} else if want == 0 && (body[0] != frameV2 || logframe.Codec(body[5]) != c) {
				t.Errorf("got version %d codec %d, want version 2 codec %d", body[0], body[5], c)
			}
			checkFrame(t, body, c)
		})
	}
}

// testdata/frame-v1-zstd.bin is a message body written by the code before
// codecs were selectable (zstd with its own checksum, version 1).
func TestFrameV1Reads(t *testing.T) {
	body, err := os.ReadFile("testdata/frame-v1-zstd.bin")
	if err != nil {
		t.Fatal(err)
	}
	checkFrame(t, body, logframe.Zstd)
}

func TestFrameUnknownCodec(t *testing.T) {
	body, _, _ := encodeFrame(logframe.S2, time.Now(), frameEntries())
	body[5] = 77
	putCRC(body)
	_, err := decodeFrame(7, body)
	if !errors.Is(err, wal.ErrCorrupt) || !strings.Contains(err.Error(), "unknown codec 77") {
		t.Fatalf("got %v, want a corrupt record error for unknown codec 77", err)
	}
}

func putCRC(body []byte) {
	c := logframe.CRC(body[5:])
	body[1], body[2], body[3], body[4] = byte(c>>24), byte(c>>16), byte(c>>8), byte(c)
}

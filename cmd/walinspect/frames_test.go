package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestFrames(t *testing.T) {
	dir := buildLog(t)
	code, out, stderr := run(t, "frames", "--json", dir)
	if code != 0 {
		t.Fatalf("frames --json: got exit %d (%s), want 0", code, stderr)
	}
	var rows []frameJSON
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("frames --json is not JSON: %v\n%s", err, out)
	}
	var firsts []uint64
	for _, r := range rows {
		firsts = append(firsts, r.First)
		if r.Codec != "s2" || r.Version != 3 || r.Records != 1 || r.RawBytes <= 0 || r.StoredBytes <= 0 || r.Damage != "" {
			t.Errorf("frame %+v: want one record, version 3, s2 (the default), sizes", r)
		}
	}
	if !slices.Equal(firsts, []uint64{1, 3, 4, 5}) {
		t.Errorf("frames got firsts %v, want [1 3 4 5] (seq 2 reclaimed)", firsts)
	}
	code, out, _ = run(t, "frames", dir)
	if code != 0 || !strings.HasPrefix(normLines(out)[0], "FIRST LAST RECORDS VERSION CODEC RAW STORED RATIO") || strings.Count(out, "\n") != 5 {
		t.Errorf("frames: got exit %d and\n%s\nwant 0, a header and 4 rows", code, out)
	}

	code, out, _ = run(t, "info", "--json", dir)
	var info infoJSON
	if err := json.Unmarshal([]byte(out), &info); err != nil || code != 0 {
		t.Fatalf("info --json: exit %d, %v", code, err)
	}
	if len(info.Codecs) != 1 || info.Codecs[0].Codec != "s2" || info.Codecs[0].Frames != 4 {
		t.Errorf("info codecs got %+v, want 4 s2 frames", info.Codecs)
	}
	if code, out, _ = run(t, "info", dir); code != 0 || !strings.Contains(out, "s2: 4 frames, ") {
		t.Errorf("info: got exit %d and\n%s\nwant a codecs line with 4 s2 frames", code, out)
	}
}

// A log written before codecs were selectable shows its zstd frames.
func TestFramesOldLog(t *testing.T) {
	b, err := os.ReadFile("../../wal/testdata/v2-zstd.db")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "wal.db")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := run(t, "--json", "info", file)
	var info infoJSON
	if err := json.Unmarshal([]byte(out), &info); err != nil || code != 0 {
		t.Fatalf("info --json: exit %d (%s), %v", code, stderr, err)
	}
	if len(info.Codecs) != 1 || info.Codecs[0].Codec != "zstd" || info.Codecs[0].Frames != 3 || info.Codecs[0].StoredBytes >= info.Codecs[0].RawBytes {
		t.Errorf("info codecs got %+v, want 3 zstd frames smaller than their records", info.Codecs)
	}
}

func TestFramesDamagedHeader(t *testing.T) {
	dir := buildLog(t)
	damage(t, filepath.Join(dir, "wal.db"), 3, func([]byte) int { return 0 })
	code, out, stderr := run(t, "frames", dir)
	if code != exitDamage || !strings.Contains(out, "DAMAGE") || !strings.Contains(stderr, "1 frame header(s) damaged") {
		t.Errorf("frames of a bad frame header: got exit %d and\n%s%s\nwant %d and a DAMAGE row", code, out, stderr, exitDamage)
	}
}

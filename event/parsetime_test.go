package event

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// timeSeeds are times ParseTime's fast path takes, and near misses it must
// leave to time.Parse.
var timeSeeds = []string{
	"2026-11-25T12:00:00Z", "2026-11-25T12:00:00.000001Z", "2026-11-25T12:00:00.123456789Z", "2026-11-25T12:00:00.1234567891Z",
	"2024-02-29T23:59:59.9Z", "2023-02-29T00:00:00Z", "2000-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "0000-01-01T00:00:00Z",
	"0000-03-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z", "1969-12-31T23:59:59.5Z", "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z",
	"2026-11-31T00:00:00Z", "2026-11-25T24:00:00Z", "2026-11-25T12:60:00Z", "2026-11-25T12:00:60Z", "2026-11-25T12:00:00.Z",
	"2026-11-25T12:00:00,5Z", "2026-11-25t12:00:00Z", "2026-11-25T12:00:00z", "2026-11-25T12:00:00+01:00", "2026-11-25T12:00:00-00:00",
	"2026-11-25 12:00:00Z", "2026-1-25T12:00:00Z", "+026-11-25T12:00:00Z", "2026-11-25T12:00:0aZ", "2026-11-25T12:00:00.12a4Z", "",
}

// sameParse fails t unless ParseTime answers exactly what time.Parse does.
func sameParse(t *testing.T, s string) {
	t.Helper()
	got, gerr := ParseTime(s)
	want, werr := time.Parse(time.RFC3339Nano, s)
	// A time in UTC must be identical (==, as the fast path makes it);
	// one with an offset gets a new zone from each call to time.Parse.
	gn, goff := got.Zone()
	wn, woff := want.Zone()
	same := got == want || want.Location() != time.UTC && got.Equal(want) && gn == wn && goff == woff
	if (gerr == nil) != (werr == nil) || !same || gerr != nil && gerr.Error() != werr.Error() {
		t.Fatalf("ParseTime(%q): got %v, %v; want %v, %v", s, got, gerr, want, werr)
	}
}

// ParseTime returns exactly what time.Parse returns (same time, same
// location, same error), on the seeds and on random times and digits.
func TestParseTimeMatchesTimeParse(t *testing.T) {
	for _, s := range timeSeeds {
		sameParse(t, s)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for range 200000 {
		s := fmt.Sprintf("%04d-%02d-%02dT%02d:%02d:%02d", rng.IntN(10000), rng.IntN(14), rng.IntN(33), rng.IntN(25), rng.IntN(61), rng.IntN(61))
		if k := rng.IntN(12); k > 0 {
			s += "." + fmt.Sprint(rng.Int64())[:min(k, 9)]
		}
		s += "Z"
		if rng.IntN(8) == 0 {
			b := []byte(s)
			b[rng.IntN(len(b))] = byte(rng.IntN(128))
			s = string(b)
		}
		sameParse(t, s)
	}
}

func FuzzParseTime(f *testing.F) {
	for _, s := range timeSeeds {
		f.Add(s)
	}
	f.Fuzz(sameParse)
}

// Package logtest is the conformance suite for the relay's logs: the same
// test body run against the embedded bbolt log (wal.Log) and the JetStream
// log (jslog.Log), as targettest does for targets.
//
// A log's test builds a Harness around its constructor and calls Run. The
// suite checks what the delivery engine and the relay rely on: order,
// routing per target, cursors and quarantine that survive a reopen, the
// Appended signal, where a new target starts, back-pressure when full, and
// concurrent appenders.
package logtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/wal"
)

// Log is what the suite drives: the engine's contract, the producer side
// the relay calls, and the quarantine an operator reads.
type Log interface {
	delivery.Log
	// Append logs entries and returns the sequence of the first once they
	// are durable; a full log returns an error wrapping wal.ErrFull.
	Append(ctx context.Context, entries ...*wal.Entry) (uint64, error)
	// Quarantined returns target's committed quarantine, oldest first.
	Quarantined(target string) ([]wal.QuarantineEntry, error)
	// Close commits pending cursor moves and quarantine entries.
	Close() error
}

// Features says what a log promises beyond the contract.
type Features struct {
	// Contiguous logs number consecutive appends consecutively (wal). The
	// JetStream log leaves gaps between messages.
	Contiguous bool
}

// Harness connects the suite to one log kind.
type Harness struct {
	Features Features
	// Open opens the log called name: a new, empty one the first time, the
	// same one again after Close. Small asks for a log that holds only a
	// few records (a few dozen at most), for the back-pressure test. The
	// harness closes what it opened at the end of the test if the suite
	// did not.
	Open func(t testing.TB, name string, small bool) Log
}

// Run runs every subtest.
func Run(t *testing.T, h Harness) {
	t.Run("AppendReadOrder", func(t *testing.T) { testAppendReadOrder(t, h) })
	t.Run("ReadWindows", func(t *testing.T) { testReadWindows(t, h) })
	t.Run("CursorsSurviveReopen", func(t *testing.T) { testCursorsReopen(t, h) })
	t.Run("QuarantineSurvivesReopen", func(t *testing.T) { testQuarantineReopen(t, h) })
	t.Run("AppendedFires", func(t *testing.T) { testAppended(t, h) })
	t.Run("RegisterStartsAfterLast", func(t *testing.T) { testRegisterLate(t, h) })
	t.Run("FullPushesBack", func(t *testing.T) { testFull(t, h) })
	t.Run("ConcurrentAppenders", func(t *testing.T) { testConcurrent(t, h) })
}

// Entry returns a realistic entry number i routed to targets.
func Entry(i int, targets ...string) *wal.Entry {
	return &wal.Entry{
		Targets:   targets,
		Key:       fmt.Sprintf("photos/%d.jpg", i),
		Name:      "s3:ObjectCreated:Put",
		EventTime: time.Date(2026, 12, 1, 12, 0, 0, i*1000, time.UTC),
		Data:      []byte(fmt.Sprintf(`{"eventName":"s3:ObjectCreated:Put","s3":{"object":{"key":"photos/%d.jpg","sequencer":"%016X"}}}`, i, i)),
	}
}

// ReadAll returns every record routed to target from from on, and where
// the next read starts.
func ReadAll(t testing.TB, l delivery.Log, from uint64, target string) ([]wal.Record, uint64) {
	t.Helper()
	var out []wal.Record
	next, err := l.Read(context.Background(), from, target, func(r wal.Record) bool { out = append(out, r); return true })
	if err != nil {
		t.Fatalf("Read(%d, %q): %v", from, target, err)
	}
	return out, next
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustAppend(t testing.TB, l Log, entries ...*wal.Entry) uint64 {
	t.Helper()
	first, err := l.Append(ctxT(t, 30*time.Second), entries...)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return first
}

func keys(rs []wal.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Key
	}
	return out
}

func wantKeys(t testing.TB, what string, rs []wal.Record, idx ...int) {
	t.Helper()
	if len(rs) != len(idx) {
		t.Fatalf("%s: got %d records %v, want %d", what, len(rs), keys(rs), len(idx))
	}
	for j, i := range idx {
		if want := fmt.Sprintf("photos/%d.jpg", i); rs[j].Key != want {
			t.Fatalf("%s: record %d is %s, want %s (all: %v)", what, j, rs[j].Key, want, keys(rs))
		}
		if j > 0 && rs[j].Seq <= rs[j-1].Seq {
			t.Fatalf("%s: sequence %d after %d", what, rs[j].Seq, rs[j-1].Seq)
		}
	}
}

func testAppendReadOrder(t *testing.T, h Harness) {
	l := h.Open(t, "order", false)
	defer l.Close()
	ca := l.Register("a")
	cb := l.Register("b")
	var firsts []uint64
	for i := 0; i < 10; i++ {
		firsts = append(firsts, mustAppend(t, l, Entry(2*i, "a"), Entry(2*i+1, "a", "b")))
	}
	for i := 1; i < len(firsts); i++ {
		if firsts[i] < firsts[i-1]+2 {
			t.Fatalf("append %d starts at %d, want at least %d", i, firsts[i], firsts[i-1]+2)
		}
		if h.Features.Contiguous && firsts[i] != firsts[i-1]+2 {
			t.Fatalf("append %d starts at %d, want %d (contiguous)", i, firsts[i], firsts[i-1]+2)
		}
	}
	if firsts[0] < ca {
		t.Fatalf("first record %d is before a's cursor %d", firsts[0], ca)
	}
	all := make([]int, 20)
	odd := make([]int, 10)
	for i := range all {
		all[i] = i
	}
	for i := range odd {
		odd[i] = 2*i + 1
	}
	ra, next := ReadAll(t, l, ca, "a")
	wantKeys(t, "records for a", ra, all...)
	rb, _ := ReadAll(t, l, cb, "b")
	wantKeys(t, "records for b", rb, odd...)
	for i, r := range ra {
		if i%2 == 0 && r.Seq != firsts[i/2] {
			t.Fatalf("record %d has sequence %d, Append returned %d", i, r.Seq, firsts[i/2])
		}
		if i%2 == 1 && r.Seq != firsts[i/2]+1 {
			t.Fatalf("record %d has sequence %d, want %d (second of its append)", i, r.Seq, firsts[i/2]+1)
		}
	}
	r0 := ra[5]
	if want := Entry(5, "a", "b"); string(r0.Data) != string(want.Data) || r0.Name != want.Name ||
		!r0.EventTime.Equal(want.EventTime) || len(r0.Targets) != 2 || r0.Targets[0] != "a" || r0.Targets[1] != "b" {
		t.Fatalf("record 5 = %+v, want the entry appended", r0)
	}
	if r0.AppendTime.IsZero() || time.Since(r0.AppendTime) > time.Minute {
		t.Fatalf("record 5 append time %v, want about now", r0.AppendTime)
	}
	// Reading again from where the first read ended finds nothing; reading
	// from the middle finds the rest; "" reads every record.
	if rs, n2 := ReadAll(t, l, next, "a"); len(rs) != 0 || n2 < next {
		t.Fatalf("read past the end: %d records, next %d (was %d)", len(rs), n2, next)
	}
	rest, _ := ReadAll(t, l, ra[14].Seq, "a")
	wantKeys(t, "records for a from the 15th", rest, all[14:]...)
	every, _ := ReadAll(t, l, ca, "")
	wantKeys(t, "every record", every, all...)
	if rs, _ := ReadAll(t, l, ca, "nobody"); len(rs) != 0 {
		t.Fatalf("records for a target with none routed: %d, want 0", len(rs))
	}
	n, last := l.Routed("a")
	if n != 20 || last != ra[19].Seq {
		t.Fatalf("Routed(a) = %d, %d; want 20, %d", n, last, ra[19].Seq)
	}
	if n, _ := l.Routed("b"); n != 10 {
		t.Fatalf("Routed(b) = %d, want 10", n)
	}
	// A cancelled context ends a read.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Read(ctx, ca, "a", func(wal.Record) bool { return true }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Read with a cancelled context: err %v, want context.Canceled", err)
	}
}

// testReadWindows reads the way the engine does: a window of a few
// records, then on from the sequence Read returned, with records routed
// elsewhere in between; no record is lost or repeated.
func testReadWindows(t *testing.T, h Harness) {
	l := h.Open(t, "windows", false)
	defer l.Close()
	c := l.Register("w")
	l.Register("other")
	var want []int
	for i := 0; i < 40; i++ {
		var es []*wal.Entry
		for j := 0; j < 1+i%4; j++ {
			k := 10*i + j
			if k%3 == 0 {
				es = append(es, Entry(k, "other"))
			} else {
				es = append(es, Entry(k, "w"))
				want = append(want, k)
			}
		}
		mustAppend(t, l, es...)
	}
	var got []wal.Record
	from := c
	for reads := 0; reads < 1000; reads++ {
		n := 0
		next, err := l.Read(context.Background(), from, "w", func(r wal.Record) bool {
			got = append(got, r)
			n++
			return n < 3
		})
		if err != nil {
			t.Fatal(err)
		}
		if next < from {
			t.Fatalf("Read(%d) returned next %d, before it", from, next)
		}
		if n == 0 {
			break
		}
		from = next
	}
	wantKeys(t, "records read in windows of 3", got, want...)
}

func testCursorsReopen(t *testing.T, h Harness) {
	l := h.Open(t, "cursors", false)
	l.Register("a")
	c0 := l.Register("b")
	var last uint64
	for i := 0; i < 5; i++ {
		last = mustAppend(t, l, Entry(i, "a", "b"))
	}
	if err := l.Advance("a", last+1); err != nil {
		t.Fatal(err)
	}
	if err := l.Advance("a", c0); err != nil { // never moves back
		t.Fatal(err)
	}
	if c, ok := l.Cursor("a"); !ok || c != last+1 {
		t.Fatalf("Cursor(a) = %d, %v; want %d, true", c, ok, last+1)
	}
	if _, ok := l.Cursor("never"); ok {
		t.Fatal("Cursor of an unregistered target: ok, want false")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Advance("a", last+2); err == nil {
		t.Fatal("Advance after Close: nil error, want one")
	}

	l = h.Open(t, "cursors", false)
	defer l.Close()
	if c, ok := l.Cursor("a"); !ok || c != last+1 {
		t.Fatalf("Cursor(a) after reopen = %d, %v; want %d, true", c, ok, last+1)
	}
	if c := l.Register("b"); c != c0 {
		t.Fatalf("Register(b) after reopen = %d, want its cursor %d", c, c0)
	}
	if rs, _ := ReadAll(t, l, c0, "b"); len(rs) != 5 {
		t.Fatalf("b's backlog after reopen: %d records, want 5", len(rs))
	}
	if rs, _ := ReadAll(t, l, last+1, "a"); len(rs) != 0 {
		t.Fatalf("a's backlog after reopen: %d records, want 0", len(rs))
	}
	if first := mustAppend(t, l, Entry(99, "a")); first <= last {
		t.Fatalf("append after reopen got sequence %d, want after %d", first, last)
	}
}

func testQuarantineReopen(t *testing.T, h Harness) {
	l := h.Open(t, "quarantine", false)
	c := l.Register("q")
	mustAppend(t, l, Entry(1, "q"), Entry(2, "q"), Entry(3, "q"))
	rs, next := ReadAll(t, l, c, "q")
	if len(rs) != 3 {
		t.Fatalf("read %d records, want 3", len(rs))
	}
	if err := l.Quarantine("q", rs[1], "HTTP 400: bad request", 3); err != nil {
		t.Fatal(err)
	}
	if err := l.Advance("q", next); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = h.Open(t, "quarantine", false)
	defer l.Close()
	qs, err := l.Quarantined("q")
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != 1 {
		t.Fatalf("quarantine after reopen: %d entries, want 1", len(qs))
	}
	q := qs[0]
	if q.Target != "q" || q.Seq != rs[1].Seq || q.Error != "HTTP 400: bad request" || q.Attempts != 3 ||
		q.Key != rs[1].Key || q.Name != rs[1].Name || string(q.Data) != string(rs[1].Data) || q.Time.IsZero() {
		t.Fatalf("quarantine entry %+v, want record %d with its reason and 3 attempts", q, rs[1].Seq)
	}
	if c, _ := l.Cursor("q"); c != next {
		t.Fatalf("cursor after reopen %d, want %d", c, next)
	}
	if other, err := l.Quarantined("nobody"); err != nil || len(other) != 0 {
		t.Fatalf("quarantine of another target: %d entries, err %v; want none", len(other), err)
	}
}

func testAppended(t *testing.T, h Harness) {
	l := h.Open(t, "appended", false)
	defer l.Close()
	c := l.Register("a")
	ch := l.Appended()
	select {
	case <-ch:
		t.Fatal("Appended closed before any append")
	default:
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		_, _ = l.Append(context.Background(), Entry(1, "a"))
	}()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("Appended not closed 10 s after an append")
	}
	// Once it fired, the record is readable.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if rs, _ := ReadAll(t, l, c, "a"); len(rs) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("record not readable 5 s after Appended fired")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A fresh channel waits for the next append.
	ch = l.Appended()
	select {
	case <-ch:
		t.Fatal("a new Appended channel is already closed")
	case <-time.After(50 * time.Millisecond):
	}
	mustAppend(t, l, Entry(2, "a"))
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("second Appended not closed")
	}
}

func testRegisterLate(t *testing.T, h Harness) {
	l := h.Open(t, "late", false)
	defer l.Close()
	l.Register("a")
	var last uint64
	for i := 0; i < 5; i++ {
		last = mustAppend(t, l, Entry(i, "a", "late"))
	}
	c := l.Register("late")
	if c <= last {
		t.Fatalf("Register of a new target = %d, want after the last record %d", c, last)
	}
	if rs, _ := ReadAll(t, l, c, "late"); len(rs) != 0 {
		t.Fatalf("new target sees %d old records, want 0", len(rs))
	}
	if n, _ := l.Routed("late"); n != 5 {
		// Routed counts commits since Open, whatever the cursor.
		t.Fatalf("Routed(late) = %d, want 5", n)
	}
	mustAppend(t, l, Entry(7, "late"))
	rs, _ := ReadAll(t, l, c, "late")
	wantKeys(t, "records of the new target", rs, 7)
	if c2 := l.Register("late"); c2 != c {
		t.Fatalf("second Register = %d, want %d", c2, c)
	}
}

// testFull fills a small log with single-record appends until one returns
// wal.ErrFull, checks nothing was dropped, then frees the log by moving the
// cursor and checks appends resume.
func testFull(t *testing.T, h Harness) {
	l := h.Open(t, "full", true)
	defer l.Close()
	c := l.Register("f")
	var stored []int
	var fullErr error
	for i := 0; i < 2000 && fullErr == nil; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err := l.Append(ctx, Entry(i, "f"))
		cancel()
		switch {
		case err == nil:
			stored = append(stored, i)
		case errors.Is(err, wal.ErrFull):
			fullErr = err
		default:
			t.Fatalf("append %d: %v, want nil or wal.ErrFull", i, err)
		}
	}
	if fullErr == nil {
		t.Fatal("2,000 appends into a small log: none returned wal.ErrFull")
	}
	t.Logf("full after %d records: %v", len(stored), fullErr)
	rs, next := ReadAll(t, l, c, "f")
	wantKeys(t, "records of a full log", rs, stored...)
	if err := l.Advance("f", next); err != nil {
		t.Fatal(err)
	}
	// Reclamation is asynchronous in both logs: retry for a while.
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := l.Append(ctx, Entry(5000, "f"))
		cancel()
		if err == nil {
			break
		}
		if !errors.Is(err, wal.ErrFull) {
			t.Fatalf("append after the cursor moved: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("still full 20 s after every record was delivered: %v", err)
		}
	}
	rs, _ = ReadAll(t, l, next, "f")
	wantKeys(t, "record appended after the log freed", rs, 5000)
}

func testConcurrent(t *testing.T, h Harness) {
	l := h.Open(t, "concurrent", false)
	defer l.Close()
	c := l.Register("c")
	const writers, per = 16, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	seqs := make([][]uint64, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				k := w*1000 + i
				es := []*wal.Entry{Entry(k, "c")}
				if i%5 == 0 {
					es = append(es, Entry(k+500, "c"))
				}
				first, err := l.Append(context.Background(), es...)
				if err != nil {
					errs <- fmt.Errorf("writer %d append %d: %w", w, i, err)
					return
				}
				seqs[w] = append(seqs[w], first)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rs, _ := ReadAll(t, l, c, "c")
	want := writers * (per + per/5)
	if len(rs) != want {
		t.Fatalf("read %d records, want %d", len(rs), want)
	}
	bySeq := map[uint64]string{}
	seen := map[string]bool{}
	for _, r := range rs {
		if seen[r.Key] {
			t.Fatalf("record %s read twice", r.Key)
		}
		seen[r.Key] = true
		bySeq[r.Seq] = r.Key
	}
	// Each writer's appends are in its order, each at the sequence Append
	// returned.
	for w := range seqs {
		for i, s := range seqs[w] {
			if want := fmt.Sprintf("photos/%d.jpg", w*1000+i); bySeq[s] != want {
				t.Fatalf("writer %d append %d: sequence %d holds %q, want %s", w, i, s, bySeq[s], want)
			}
			if i > 0 && s <= seqs[w][i-1] {
				t.Fatalf("writer %d: append %d at %d, not after %d", w, i, s, seqs[w][i-1])
			}
		}
	}
}

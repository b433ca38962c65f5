package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/wal"
)

func TestPercentile(t *testing.T) {
	d := []time.Duration{4 * time.Millisecond, time.Millisecond, 3 * time.Millisecond, 2 * time.Millisecond}
	for _, c := range []struct{ p, want float64 }{{50, 2}, {100, 4}, {1, 1}} {
		if got := Percentile(d, c.p); got != c.want {
			t.Errorf("Percentile(p%v): got %v ms, want %v", c.p, got, c.want)
		}
	}
	if got := Percentile(nil, 99); got != 0 {
		t.Errorf("Percentile(empty): got %v, want 0", got)
	}
}

func TestIDSet(t *testing.T) {
	var s IDSet
	for _, id := range []int{0, 2, 2, 70000} {
		s.Mark(id)
	}
	s.MarkBody(mustJSON(t, IDRecord(5)))
	s.MarkBody([]byte(`{"no":"id"}`))
	if u, d := s.Counts(); u != 4 || d != 1 {
		t.Fatalf("Counts: got %d unique, %d dups, want 4, 1", u, d)
	}
	if got := s.Missing(6); got != 3 { // 1, 3, 4
		t.Fatalf("Missing(6): got %d, want 3", got)
	}
}

func mustJSON(t *testing.T, r event.Record) []byte {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRecordsCarryTheirID(t *testing.T) {
	b := mustJSON(t, Stamped(42))
	if id, ok := ID(b); !ok || id != 42 {
		t.Fatalf("ID: got %d, %v, want 42, true", id, ok)
	}
	if _, ok := Field(b, FieldTime); !ok {
		t.Fatalf("a stamped record has no %s field", FieldTime)
	}
	if n := RecordSize(); n < 900 || n > 1300 {
		t.Fatalf("RecordSize: got %d bytes, want about 1 KiB", n)
	}
	p := NewPool(3)
	if id, ok := ID(p.Bodies[2]); !ok || id != 2 || len(p.Raws) != 3 || len(p.Keys) != 3 {
		t.Fatalf("NewPool(3): body 2 has id %d (%v), %d raws, %d keys", id, ok, len(p.Raws), len(p.Keys))
	}
}

func TestReceiver(t *testing.T) {
	rv, err := NewReceiver()
	if err != nil {
		t.Fatal(err)
	}
	rv.FirstReceipts = true
	if err := rv.Start(); err != nil {
		t.Fatal(err)
	}
	defer rv.Stop()
	rv.KeepLatencies(true)
	for _, id := range []int{0, 1, 1} {
		resp, err := http.Post(rv.URL(), "application/json", bytes.NewReader(mustJSON(t, Stamped(id))))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST: got %s, want 200", resp.Status)
		}
	}
	if u, d := rv.Counts(); u != 2 || d != 1 || rv.Bodies() != 3 {
		t.Fatalf("got %d unique, %d dups, %d bodies, want 2, 1, 3", u, d, rv.Bodies())
	}
	if got := len(rv.TakeLatencies()); got != 3 {
		t.Fatalf("latencies: got %d, want 3", got)
	}
	if _, ok := rv.FirstReceipt(1); !ok || len(rv.Receipts()) != 2 {
		t.Fatalf("first receipts: id 1 seen %v, %d receipts, want true, 2", ok, len(rv.Receipts()))
	}
	// Stopped, it refuses connections as a crashed consumer would; started
	// again, it listens on the same URL.
	rv.Stop()
	if _, err := http.Post(rv.URL(), "application/json", strings.NewReader("{}")); err == nil {
		t.Fatal("POST to a stopped receiver succeeded")
	}
	if err := rv.Start(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(rv.URL(), "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func TestPipelineBacklogRate(t *testing.T) {
	var tg AckTarget
	p, err := OpenPipeline(PipelineConfig{Dir: t.TempDir(), Target: &tg, MaxBatch: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	pool := NewPool(16)
	mk := func() []*wal.Entry {
		es := make([]*wal.Entry, 500)
		for i := range es {
			es[i] = &wal.Entry{Targets: []string{p.ID}, Key: pool.Keys[i%16], Name: string(event.ObjectCreatedPut), Data: pool.Raws[i%16]}
		}
		return es
	}
	ctx := context.Background()
	slow := &slowTarget{AckTarget: &AckTarget{}}
	p2, err := OpenPipeline(PipelineConfig{Dir: filepath.Join(t.TempDir(), "p2"), Target: slow, MaxBatch: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	rate, err := p2.BacklogRate(ctx, 300*time.Millisecond, time.Minute, mk)
	if err != nil {
		t.Fatal(err)
	}
	if rate <= 0 {
		t.Fatalf("BacklogRate: got %v events/s, want > 0", rate)
	}
	if err := p.Append(ctx, mk()...); err != nil {
		t.Fatal(err)
	}
	p.Run()
	if !WaitFor(ctx, 30*time.Second, func() bool { return p.Stats().Delivered == 500 }) {
		t.Fatalf("delivered %d of 500", p.Stats().Delivered)
	}
	if got := tg.Sent(); got != 500 {
		t.Fatalf("AckTarget.Sent: got %d, want 500", got)
	}
}

// slowTarget acknowledges a batch after 50 ms, so that a backlog builds.
type slowTarget struct{ *AckTarget }

func (s *slowTarget) Send(ctx context.Context, items []delivery.Item) error {
	time.Sleep(50 * time.Millisecond)
	return s.AckTarget.Send(ctx, items)
}

func TestRun(t *testing.T) {
	saved := scenarios
	defer func() { scenarios = saved }()
	scenarios = nil
	var ran []string
	Register("b", func(_ context.Context, o Options) (Result, error) {
		ran = append(ran, "b")
		var r Result
		r.Add("m", 1, "x", "")
		return r, errors.New("boom")
	})
	Register("a", func(_ context.Context, o Options) (Result, error) { ran = append(ran, "a"); return Result{}, nil })
	RegisterExplicit("z", func(_ context.Context, o Options) (Result, error) { ran = append(ran, "z"); return Result{}, nil })
	if _, err := Run(context.Background(), Options{Dir: t.TempDir()}, []string{"nope"}, nil); err == nil {
		t.Fatal("Run with an unknown scenario: got no error")
	}
	res, err := Run(context.Background(), Options{Dir: t.TempDir()}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("Run: got error %v, want the failing scenario's", err)
	}
	if strings.Join(ran, ",") != "a,b" || len(res) != 2 || res[1].Scenario != "b" || res[1].Notes[0] != "error: boom" {
		t.Fatalf("Run: ran %v, results %+v; want a,b (z only when named) with b's error as a note", ran, res)
	}
	ran = nil
	if _, err := Run(context.Background(), Options{Dir: t.TempDir()}, []string{"z"}, nil); err != nil || strings.Join(ran, ",") != "z" {
		t.Fatalf("Run z: ran %v, error %v", ran, err)
	}
	var buf bytes.Buffer
	PrintResult(&buf, res[1])
	if !strings.Contains(buf.String(), "== b") || !strings.Contains(buf.String(), "note: error: boom") {
		t.Fatalf("PrintResult: got %q", buf.String())
	}
}

func TestReadMachine(t *testing.T) {
	m := ReadMachine()
	if m.CPUs < 1 || !strings.HasPrefix(m.Go, "go") || m.GOOS == "" {
		t.Fatalf("ReadMachine: got %+v", m)
	}
	b, err := json.Marshal(Report{Machine: m})
	if err != nil || !bytes.Contains(b, []byte(`"cpu"`)) || !bytes.Contains(b, []byte(`"go"`)) {
		t.Fatalf("Report JSON: got %s, %v", b, err)
	}
}

func TestChart(t *testing.T) {
	c := &Chart{Title: "a < b", X: []float64{0, 1, 2},
		Left: Series{Name: "l", Color: "red", Y: []float64{1, 2, 3}}, Right: Series{Name: "r", Color: "blue", Y: []float64{3, 2, 1}},
		Spans: []Span{{From: 0.5, To: 1, Label: "down"}}}
	path := filepath.Join(t.TempDir(), "c.svg")
	if err := c.Write(path); err != nil {
		t.Fatal(err)
	}
	svg := c.SVG()
	for _, want := range []string{"<svg", "a &lt; b", "down", "polyline"} {
		if !strings.Contains(svg, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}

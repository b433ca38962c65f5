package relay

import (
	"context"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/testkit/benchrec"
	"github.com/bucketrelay/bucketrelay/wal"
)

// BenchmarkHandoffUnderIngest measures what the ingest gate is for: the
// round trip of a delivery-like hand-off (a 1-byte ping over loopback TCP,
// answered by another goroutine: two wake-ups through the network poller,
// as a webhook POST and its answer have) while 16 goroutines post 50
// records a request flat out, the log's fsync stood in for by a 1 ms wait
// outside the gate. gate=held-back is the gate narrowed by one slot, as
// while a target that is up falls behind. 8 pingers, like the webhook's 8 POSTs in flight; b.N
// pings in all. Reported: the round trip's p50 and p99, pings and records
// per second. Compare the sub-benchmarks, alternated with -count:
//
//	go test -run x -bench HandoffUnderIngest -benchtime 20000x -count 2 ./relay/
func BenchmarkHandoffUnderIngest(b *testing.B) {
	for _, v := range []struct {
		name     string
		slots    int
		narrowed bool
	}{{"gate=off", -1, false}, {"gate=GOMAXPROCS", 0, false}, {"gate=held-back", 0, true}} {
		b.Run(v.name, func(b *testing.B) { handoffUnderIngest(b, v.slots, v.narrowed) })
	}
}

func handoffUnderIngest(b *testing.B, slots int, narrowed bool) {
	r := benchRelay(b)
	r.gate = newIngestGate(slots)
	if narrowed {
		r.gate.narrow(true) // as the governor does while a target falls behind
	}
	r.appendFn = func(context.Context, ...*wal.Entry) (uint64, error) {
		time.Sleep(time.Millisecond) // the fsync: parked, outside the gate
		return 1, nil
	}
	body := string(benchrec.Body(benchrec.Pool(50)))
	h := r.Handler()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() { // the answering side: echo each byte back
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go io.Copy(c, c)
		}
	}()

	stop := make(chan struct{})
	var ingested atomic.Int64
	var ingest sync.WaitGroup
	for range 16 {
		ingest.Add(1)
		go func() {
			defer ingest.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				w := discardWriter{}
				h.ServeHTTP(&w, newBenchRequest(body))
				if w.code != 0 && w.code != 200 {
					b.Errorf("POST: %d", w.code)
					return
				}
				ingested.Add(50)
			}
		}()
	}

	const pingers = 8
	var next atomic.Int64
	rtts := make([][]time.Duration, pingers)
	var pings sync.WaitGroup
	b.ResetTimer()
	t0 := time.Now()
	in0 := ingested.Load()
	for p := range pingers {
		pings.Add(1)
		go func() {
			defer pings.Done()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Error(err)
				return
			}
			defer c.Close()
			buf := []byte{1}
			for next.Add(1) <= int64(b.N) {
				s := time.Now()
				if _, err := c.Write(buf); err != nil {
					b.Error(err)
					return
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Error(err)
					return
				}
				rtts[p] = append(rtts[p], time.Since(s))
			}
		}()
	}
	pings.Wait()
	elapsed := time.Since(t0)
	in1 := ingested.Load()
	b.StopTimer()
	close(stop)
	ingest.Wait()
	all := slices.Concat(rtts...)
	slices.Sort(all)
	if len(all) == 0 {
		b.Fatal("no ping answered")
	}
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "rtt-p50-µs")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "rtt-p99-µs")
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "pings/s")
	b.ReportMetric(float64(in1-in0)/elapsed.Seconds(), "records/s")
}

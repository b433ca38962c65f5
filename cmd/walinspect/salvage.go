package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/bucketrelay/bucketrelay/wal"
)

// salvageProgressEvery is how often salvage reports progress by default.
const salvageProgressEvery = 2 * time.Second

// SalvageCommand copies what is intact in a damaged log into a fresh one.
type SalvageCommand struct {
	g   *globals
	out string
}

// salvageJSON is salvage's --json output.
type salvageJSON struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
	// OK is true when nothing was damaged: the copy holds everything.
	OK                bool               `json:"ok"`
	Frames            int                `json:"frames"`
	Records           int64              `json:"records"`
	Cursors           int                `json:"cursors"`
	QuarantineEntries int                `json:"quarantineEntries"`
	NextSeq           uint64             `json:"nextSeq"`
	Damaged           []wal.DamagedRange `json:"damaged"`
	DamagedRecords    uint64             `json:"damagedRecords"`
	ResetCursors      []string           `json:"resetCursors"`
	Problems          []string           `json:"problems"`
}

// Run runs the salvage command.
func (c *SalvageCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("walinspect salvage", flag.ContinueOnError)
	c.g.register(fs)
	fs.StringVar(&c.out, "o", "", "the new log file to write (must not exist)")
	pos, err := parseArgs("salvage", fs, c.Usage, args)
	if err != nil {
		return err
	}
	arg, err := logArg("salvage", pos)
	if err != nil {
		return err
	}
	if c.out == "" {
		return &usageError{cmd: "salvage", msg: "salvage: -o DST is required"}
	}
	src, err := resolveLog(arg)
	if err != nil {
		return err
	}
	// Progress is on by default: a large log takes a while. It shows
	// every couple of seconds, so a quick salvage prints none.
	every := c.g.progressEvery
	if every <= 0 {
		every = salvageProgressEvery
	}
	g := *c.g
	g.progressEvery, g.progress = every, true
	p := g.newProgress("salvaging", 1, 0)
	var rep wal.SalvageReport
	done := make(chan struct{})
	go func() {
		defer close(done)
		rep, err = wal.Salvage(src, c.out, wal.SalvageOptions{Progress: func(seq, last uint64) {
			p.last = last
			p.at(seq)
		}})
	}()
	select {
	case <-done:
	case <-ctx.Done():
		// Salvage removes its destination when it fails; an interrupt
		// ends the process, so leave no half-written copy behind either.
		fmt.Fprintln(c.g.stderr, "walinspect: salvage interrupted; waiting for the current write to end")
		<-done
	}
	p.done()
	if errors.Is(err, wal.ErrExists) {
		return &usageError{cmd: "salvage", msg: fmt.Sprintf("salvage: %s exists; salvage writes a new file and never overwrites one", c.out)}
	}
	if err != nil {
		if errors.Is(err, wal.ErrCorrupt) {
			for _, pr := range rep.Problems {
				fmt.Fprintf(c.g.stderr, "DAMAGE  %s\n", pr)
			}
			return fmt.Errorf("salvage: nothing written: %w", err)
		}
		return locked(src, fmt.Errorf("salvage: nothing written: %w", err))
	}
	out := salvageJSON{
		Source: src, Destination: c.out, OK: rep.OK(),
		Frames: rep.Frames, Records: rep.Records, Cursors: rep.Cursors, QuarantineEntries: rep.QuarantineEntries,
		NextSeq: rep.NextSeq, Damaged: rep.Damaged, DamagedRecords: rep.DamagedRecords,
		ResetCursors: rep.ResetCursors, Problems: rep.Problems,
	}
	if out.ResetCursors == nil {
		out.ResetCursors = []string{}
	}
	if c.g.json {
		return c.g.writeJSON(out)
	}
	for _, pr := range rep.Problems {
		fmt.Fprintf(c.g.stderr, "DAMAGE  %s\n", pr)
	}
	if len(rep.Damaged) > 0 {
		fmt.Fprintf(c.g.stderr, "skipped %d damaged range(s), at most %d records:", len(rep.Damaged), rep.DamagedRecords)
		for _, d := range rep.Damaged {
			fmt.Fprintf(c.g.stderr, " %d-%d", d.First, d.Last)
		}
		fmt.Fprintln(c.g.stderr)
	}
	fmt.Fprintf(c.g.stdout, "salvaged %s into %s: %d frames, %d records, %d cursors, %d quarantine entries; next sequence %d\n",
		src, c.out, out.Frames, out.Records, out.Cursors, out.QuarantineEntries, out.NextSeq)
	if out.OK {
		fmt.Fprintln(c.g.stdout, "nothing was damaged: the copy holds everything")
	}
	return nil
}

// Usage prints the salvage command's usage.
func (c *SalvageCommand) Usage() {
	fmt.Fprint(c.g.stdout, `Usage: walinspect salvage [--json] <dataDir|wal.db> -o DST

Copies everything intact in the log into a new log file DST: every intact
frame under the same sequences (so the same records, routing and append
times), every cursor, every quarantine entry, and the next sequence. The
source is opened read-only and never written; DST must not exist.

What is damaged is skipped and reported on stderr, one DAMAGE line each
(in "problems" and "damaged" with --json):
  - a frame or record that fails its CRC-32C: the frame's sequences;
  - pages bbolt cannot read: the sequences between the last frame read
    before them and the first one after (salvage walks past them);
  - a cursor that is not 8 bytes or points past the log: reset to the
    oldest sequence copied, so the target redelivers rather than skips;
  - a quarantine entry that does not parse.
The copy opens with the relay and passes 'walinspect verify'. To use it,
stop the relay, keep the damaged wal.db aside, and move DST to
<dataDir>/wal.db.

Progress is reported on stderr every 2 seconds.

Exit codes: 0 DST was written (check the DAMAGE lines, or "ok" with --json,
for what was left out); 1 nothing was written because the source cannot
be opened at all (both bbolt meta pages or the root page damaged), or a
write failed; 2 usage error, also when DST exists; 3 the log is held by a
running relay.
`)
}

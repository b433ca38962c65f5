package main

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/bucketrelay/bucketrelay/wal"
)

// errWidth is how much of the last quarantine error the table shows.
const errWidth = 60

// TargetsCommand prints every target's cursor, backlog and quarantine.
type TargetsCommand struct {
	g *globals
}

// targetJSON is one target in targets' --json output.
type targetJSON struct {
	Target string `json:"target"`
	// Cursor is the next sequence the target has to deliver; null when the
	// target has no cursor.
	Cursor                  *uint64    `json:"cursor"`
	Pending                 int64      `json:"pending"`
	OldestPendingSeq        uint64     `json:"oldestPendingSeq,omitempty"`
	OldestPendingTime       *time.Time `json:"oldestPendingTime,omitempty"`
	OldestPendingAgeSeconds float64    `json:"oldestPendingAgeSeconds,omitempty"`
	Quarantined             int        `json:"quarantined"`
	LastQuarantineSeq       uint64     `json:"lastQuarantineSeq,omitempty"`
	LastQuarantineTime      *time.Time `json:"lastQuarantineTime,omitempty"`
	LastQuarantineError     string     `json:"lastQuarantineError,omitempty"`
}

// Run runs the targets command.
func (c *TargetsCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("walinspect targets", flag.ContinueOnError)
	c.g.register(fs)
	l, err := openLogArgs("targets", fs, c.Usage, args)
	if err != nil {
		return err
	}
	defer l.Close()

	rows, err := c.collect(ctx, l)
	if err != nil {
		return err
	}
	if c.g.json {
		return c.g.writeJSON(rows)
	}
	tw := tabwriter.NewWriter(c.g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tCURSOR\tPENDING\tOLDEST PENDING\tQUARANTINED\tLAST QUARANTINE ERROR")
	for _, r := range rows {
		cursor, oldest, lastErr := "-", "-", "-"
		if r.Cursor != nil {
			cursor = strconv.FormatUint(*r.Cursor, 10)
		}
		if r.OldestPendingTime != nil {
			oldest = age(time.Duration(r.OldestPendingAgeSeconds * float64(time.Second)))
		}
		if r.LastQuarantineError != "" {
			lastErr = oneLine(r.LastQuarantineError, errWidth)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\n", r.Target, cursor, r.Pending, oldest, r.Quarantined, lastErr)
	}
	return tw.Flush()
}

// collect gathers one row per target, sorted by target.
func (c *TargetsCommand) collect(ctx context.Context, l *wal.Log) ([]targetJSON, error) {
	p := c.g.newProgress("scanning", l.FirstSeq(), l.LastSeq())
	backlogs, err := l.Backlogs(func(seq uint64) { p.at(seq) })
	p.done()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	quarantined := map[string][]wal.QuarantineEntry{}
	for _, t := range l.QuarantineTargets() {
		q, err := l.Quarantined(t)
		if err != nil {
			return nil, fmt.Errorf("quarantine of %s: %w", t, err)
		}
		quarantined[t] = q
		if _, ok := backlogs[t]; !ok {
			backlogs[t] = wal.Backlog{}
		}
	}
	now := c.g.clock()
	rows := make([]targetJSON, 0, len(backlogs))
	for t, b := range backlogs {
		r := targetJSON{Target: t, Pending: b.Pending}
		if b.HasCursor {
			cur := b.Cursor
			r.Cursor = &cur
		}
		if b.Pending > 0 {
			at := b.OldestAppend.UTC()
			r.OldestPendingSeq = b.OldestSeq
			r.OldestPendingTime = &at
			r.OldestPendingAgeSeconds = max(0, now.Sub(at).Seconds())
		}
		q := quarantined[t]
		r.Quarantined = len(q)
		if len(q) > 0 {
			// The most recent entry; entries are stored by sequence, which
			// is not always the order they were made in.
			last := q[0]
			for _, e := range q[1:] {
				if !e.Time.Before(last.Time) {
					last = e
				}
			}
			r.LastQuarantineSeq = last.Seq
			lt := last.Time.UTC()
			r.LastQuarantineTime = &lt
			r.LastQuarantineError = last.Error
		}
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Target < rows[j].Target })
	return rows, nil
}

// Usage prints the targets command's usage.
func (c *TargetsCommand) Usage() {
	fmt.Fprint(c.g.stdout, `Usage: walinspect targets [--json] [--progress] <dataDir|wal.db>

Prints one row per target that has a cursor, a quarantine, or records
routed to it in the log:

  TARGET                 the target's ID (ARN)
  CURSOR                 the next sequence the target has to deliver
                         ("-": no cursor, every record routed to it is pending)
  PENDING                records at or past the cursor routed to the target
  OLDEST PENDING         how long ago the oldest pending record was appended
  QUARANTINED            entries in the target's quarantine
  LAST QUARANTINE ERROR  the error of the most recent quarantine entry,
                         truncated (in full with --json). The relay's live
                         last error is kept in memory only; see its /metrics.

It reads every record the log holds once (frames all targets have passed are
skipped); --progress reports the position on stderr.
`)
}

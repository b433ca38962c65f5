package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/bucketrelay/bucketrelay/wal"
)

// DumpCommand prints records, or a target's quarantine, as JSON lines.
type DumpCommand struct {
	g *globals

	from, to   uint64
	target     string
	bucket     string
	key        string
	limit      int
	quarantine bool
}

// dumpLine is one record in dump's output.
type dumpLine struct {
	Seq        uint64     `json:"seq"`
	AppendTime time.Time  `json:"appendTime"`
	Targets    []string   `json:"targets"`
	Key        string     `json:"key"`
	EventName  string     `json:"eventName"`
	EventTime  *time.Time `json:"eventTime,omitempty"`
	// Record is the record's JSON; a JSON string if what is stored is not
	// valid JSON.
	Record json.RawMessage `json:"record"`
}

// Run runs the dump command.
func (c *DumpCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("walinspect dump", flag.ContinueOnError)
	c.g.register(fs)
	fs.Uint64Var(&c.from, "from", 0, "first sequence (default: the oldest held)")
	fs.Uint64Var(&c.to, "to", 0, "last sequence (default: the newest)")
	fs.StringVar(&c.target, "target", "", "only records routed to this target ID (ARN)")
	fs.StringVar(&c.bucket, "bucket", "", "only records of this bucket")
	fs.StringVar(&c.key, "key", "", "only records of this object key (with --bucket) or bucket/object key")
	fs.IntVar(&c.limit, "limit", 0, "stop after this many lines (0: no limit)")
	fs.BoolVar(&c.quarantine, "quarantine", false, "dump quarantine entries (of --target, or of every target) instead of records")
	pos, err := parseArgs("dump", fs, c.Usage, args)
	if err != nil {
		return err
	}
	arg, err := logArg("dump", pos)
	if err != nil {
		return err
	}
	if c.to != 0 && c.to < c.from {
		return &usageError{cmd: "dump", msg: fmt.Sprintf("dump: --to %d is before --from %d", c.to, c.from)}
	}
	if c.limit < 0 {
		return &usageError{cmd: "dump", msg: "dump: --limit must not be negative"}
	}
	if strings.Contains(c.bucket, "/") {
		return &usageError{cmd: "dump", msg: fmt.Sprintf("dump: --bucket %q holds a slash", c.bucket)}
	}
	l, err := openLog(arg)
	if err != nil {
		return err
	}
	defer l.Close()
	if c.target != "" {
		if err := knownTarget(l, c.target); err != nil {
			return fmt.Errorf("dump: %w", err)
		}
	}

	w := bufio.NewWriterSize(c.g.stdout, 64<<10)
	if c.quarantine {
		err = c.dumpQuarantine(ctx, l, w)
	} else {
		err = c.dumpRecords(ctx, l, w)
	}
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	return err
}

// knownTarget returns nil if the log knows target: it has a cursor, a
// quarantine, or held records routed to it. Otherwise it returns an error
// wrapping errNotFound that names the targets the log knows, since an
// empty dump would look like a target with nothing pending.
func knownTarget(l *wal.Log, target string) error {
	known := map[string]bool{}
	for t := range l.Cursors() {
		known[t] = true
	}
	for _, t := range l.QuarantineTargets() {
		known[t] = true
	}
	if known[target] {
		return nil
	}
	// Targets records are routed to: the frames' headers say it.
	backlogs, err := l.Backlogs(nil)
	if err != nil {
		return err
	}
	for t := range backlogs {
		known[t] = true
	}
	if known[target] {
		return nil
	}
	names := make([]string, 0, len(known))
	for t := range known {
		names = append(names, t)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return fmt.Errorf("%w %q: the log knows no target", errUnknownTarget, target)
	}
	return fmt.Errorf("%w %q: the log knows %s", errUnknownTarget, target, strings.Join(names, ", "))
}

// matchKey reports whether a record key ("bucket/object") passes the
// --bucket and --key filters.
func (c *DumpCommand) matchKey(key string) bool {
	bucket, object, _ := strings.Cut(key, "/")
	if c.bucket != "" && bucket != c.bucket {
		return false
	}
	if c.key == "" {
		return true
	}
	if c.bucket != "" {
		return object == c.key
	}
	return key == c.key || object == c.key
}

func (c *DumpCommand) matchSeq(seq uint64) bool {
	return seq >= c.from && (c.to == 0 || seq <= c.to)
}

func (c *DumpCommand) dumpRecords(ctx context.Context, l *wal.Log, w *bufio.Writer) error {
	from := max(c.from, l.FirstSeq())
	last := l.LastSeq()
	if c.to != 0 {
		last = min(last, c.to)
	}
	if from > last {
		return nil
	}
	p := c.g.newProgress("dumping", from, last)
	defer p.done()
	n := 0
	var werr error
	next, err := l.Read(ctx, from, c.target, func(r wal.Record) bool {
		if r.Seq > last || ctx.Err() != nil {
			return false
		}
		p.at(r.Seq)
		// Stop at the last record wanted, so that a damaged frame past
		// the range is never read.
		more := r.Seq < last
		if !c.matchKey(r.Key) {
			return more
		}
		line := dumpLine{
			Seq: r.Seq, AppendTime: r.AppendTime.UTC(), Targets: r.Targets,
			Key: r.Key, EventName: r.Name, Record: rawJSON(r.Data),
		}
		if line.Targets == nil {
			line.Targets = []string{}
		}
		if !r.EventTime.IsZero() {
			et := r.EventTime
			line.EventTime = &et
		}
		if werr = writeLine(w, line); werr != nil {
			return false
		}
		n++
		return more && (c.limit == 0 || n < c.limit)
	})
	if err != nil {
		return err
	}
	if werr != nil {
		return werr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Read passes over a damaged frame: say so for the range dumped.
	for _, d := range l.Damage() {
		if d.Last >= from && d.First < next && d.First <= last {
			where := fmt.Sprintf("sequence %d", d.First)
			if d.Last != d.First {
				where = fmt.Sprintf("sequences %d-%d", d.First, d.Last)
			}
			return fmt.Errorf("%w: %s: %s (its records are not dumped)", wal.ErrCorrupt, where, d.Reason)
		}
	}
	return nil
}

func (c *DumpCommand) dumpQuarantine(ctx context.Context, l *wal.Log, w *bufio.Writer) error {
	targets := l.QuarantineTargets()
	if c.target != "" {
		targets = []string{c.target}
	}
	n := 0
	for _, t := range targets {
		q, err := l.Quarantined(t)
		if err != nil {
			return fmt.Errorf("quarantine of %s: %w", t, err)
		}
		for _, e := range q {
			if err := ctx.Err(); err != nil {
				return err
			}
			if !c.matchSeq(e.Seq) || !c.matchKey(e.Key) {
				continue
			}
			e.Data = rawJSON(e.Data)
			if err := writeLine(w, e); err != nil {
				return err
			}
			n++
			if c.limit > 0 && n >= c.limit {
				return nil
			}
		}
	}
	return nil
}

// rawJSON returns b if it is valid JSON and b as a JSON string otherwise, so
// a line is always valid JSON.
func rawJSON(b []byte) json.RawMessage {
	if len(b) > 0 && json.Valid(b) {
		return b
	}
	s, _ := json.Marshal(string(b))
	return s
}

func writeLine(w *bufio.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Write(b)
	return w.WriteByte('\n')
}

// Usage prints the dump command's usage.
func (c *DumpCommand) Usage() {
	fmt.Fprint(c.g.stdout, `Usage: walinspect dump [flags] <dataDir|wal.db>

Prints records as JSON lines, oldest first:

  {"seq":12,"appendTime":"...","targets":["arn:..."],"key":"bucket/object",
   "eventName":"s3:ObjectCreated:Put","eventTime":"...","record":{...}}

With --quarantine it prints quarantine entries instead, one target after
the other (sorted by target, then sequence):

  {"target":"arn:...","seq":12,"error":"...","attempts":3,"time":"...",
   "key":"bucket/object","eventName":"...","record":{...}}

The output is JSON lines with or without --json.

Flags:
  --from SEQ      first sequence (default: the oldest record held)
  --to SEQ        last sequence (default: the newest)
  --target ARN    only records routed to this target; a target the log
                  does not know (no cursor, quarantine or records routed
                  to it) is an error naming the known ones (exit code 1)
  --bucket NAME   only records of this bucket
  --key KEY       only this object: the object key with --bucket, else
                  "bucket/object" or the object key in any bucket
  --limit N       stop after N lines (default 0: no limit)
  --quarantine    dump the quarantine of --target (of every target without it)
  --progress      report progress on stderr
`)
}

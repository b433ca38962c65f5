package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/bucketrelay/bucketrelay/wal"
)

// InfoCommand prints the log's size, bounds and record count.
type InfoCommand struct {
	g *globals
}

// infoJSON is info's --json output.
type infoJSON struct {
	Path string `json:"path"`
	// FileSize is the file's size on disk; UsedSize what bbolt uses of it
	// (the rest is preallocated or free pages).
	FileSize    int64 `json:"fileSize"`
	UsedSize    int64 `json:"usedSize"`
	Records     int64 `json:"records"`
	RecordBytes int64 `json:"recordBytes"`
	Frames      int   `json:"frames"`
	// Codecs sums the frames per codec (frames.go), by codec name.
	Codecs []codecJSON `json:"codecs"`
	// FirstSeq and LastSeq are the oldest and the newest record held; null
	// when the log holds none.
	FirstSeq *uint64 `json:"firstSeq"`
	LastSeq  *uint64 `json:"lastSeq"`
	// NextSeq is the sequence the next appended record gets: one past the
	// last ever appended, since sequences never go back, also when the log
	// is empty.
	NextSeq          uint64     `json:"nextSeq"`
	OldestAppendTime *time.Time `json:"oldestAppendTime,omitempty"`
	NewestAppendTime *time.Time `json:"newestAppendTime,omitempty"`
	Cursors          int        `json:"cursors"`
	QuarantineTarget int        `json:"quarantineTargets"`
	// Retained is the range a target can be rewound to (relay targets
	// rewind) and what retention keeps (retained.go).
	Retained retainedJSON `json:"retained"`
	// Problems lists damage met on the way (bbolt meta pages, the first or
	// last frame); empty when none. Run verify for a full check.
	Problems []string `json:"problems"`
}

// Run runs the info command. It returns an error wrapping
// errDamageReported (exit code 1) after printing when it met damage.
func (c *InfoCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("walinspect info", flag.ContinueOnError)
	c.g.register(fs)
	l, err := openLogArgs("info", fs, c.Usage, args)
	if err != nil {
		return err
	}
	defer l.Close()

	out := infoJSON{
		Path:             l.Path(),
		UsedSize:         l.FileSize(),
		Records:          l.Events(),
		RecordBytes:      l.Bytes(),
		Frames:           l.Frames(),
		NextSeq:          l.LastSeq() + 1,
		Cursors:          len(l.Cursors()),
		QuarantineTarget: len(l.QuarantineTargets()),
		Problems:         []string{},
	}
	if fi, err := os.Stat(out.Path); err == nil {
		out.FileSize = fi.Size()
	}
	// A damaged newest meta page leaves the file readable as of the
	// transaction before: say so, the numbers above are older than the
	// relay's last commit.
	if problems, err := wal.CheckMeta(out.Path); err == nil {
		for _, p := range problems {
			out.Problems = append(out.Problems, p.Error())
		}
	}
	if out.Records > 0 {
		first, last := l.FirstSeq(), l.LastSeq()
		out.FirstSeq, out.LastSeq = &first, &last
		if r, err := oldestHeld(ctx, l); err != nil {
			out.Problems = append(out.Problems, fmt.Sprintf("oldest record: %v", err))
		} else if r != nil {
			at := r.AppendTime.UTC()
			out.OldestAppendTime = &at
		}
		if r, err := newestHeld(ctx, l); err != nil {
			out.Problems = append(out.Problems, fmt.Sprintf("newest record: %v", err))
		} else if r != nil {
			at, seq := r.AppendTime.UTC(), r.Seq
			out.NewestAppendTime, out.LastSeq = &at, &seq
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	codecs, err := codecsOf(l)
	if err != nil {
		out.Problems = append(out.Problems, fmt.Sprintf("frame headers: %v", err))
	}
	out.Codecs = codecs
	out.Retained = retainedOf(l)
	// Damaged frames met while loading or reading (their records are
	// skipped by the relay and quarantined for the targets needing them).
	for _, d := range l.Damage() {
		where := fmt.Sprintf("sequence %d", d.First)
		if d.Last != d.First {
			where = fmt.Sprintf("sequences %d-%d", d.First, d.Last)
		}
		out.Problems = append(out.Problems, fmt.Sprintf("records: %s: %s", where, d.Reason))
	}
	if err := c.print(out); err != nil {
		return err
	}
	if len(out.Problems) > 0 {
		return fmt.Errorf("%w: %d problem(s) in %s; run 'walinspect verify'", errDamageReported, len(out.Problems), out.Path)
	}
	return nil
}

func (c *InfoCommand) print(out infoJSON) error {
	if c.g.json {
		return c.g.writeJSON(out)
	}
	now := c.g.clock()
	tw := tabwriter.NewWriter(c.g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "path\t%s\n", out.Path)
	fmt.Fprintf(tw, "file size\t%s (%d bytes), %s in use\n", bytesHuman(out.FileSize), out.FileSize, bytesHuman(out.UsedSize))
	fmt.Fprintf(tw, "records\t%d in %d frames\n", out.Records, out.Frames)
	fmt.Fprintf(tw, "record bytes\t%s (%d bytes, uncompressed)\n", bytesHuman(out.RecordBytes), out.RecordBytes)
	fmt.Fprintf(tw, "codecs\t%s\n", codecsLine(out.Codecs))
	seq := func(p *uint64) string {
		if p == nil {
			return "- (empty)"
		}
		return strconv.FormatUint(*p, 10)
	}
	fmt.Fprintf(tw, "first seq\t%s\n", seq(out.FirstSeq))
	fmt.Fprintf(tw, "last seq\t%s\n", seq(out.LastSeq))
	fmt.Fprintf(tw, "next seq\t%d\n", out.NextSeq)
	at := func(t *time.Time) string {
		if t == nil {
			return "- (unreadable)"
		}
		return fmt.Sprintf("%s (%s ago)", t.Format(time.RFC3339), age(now.Sub(*t)))
	}
	if out.Records > 0 {
		fmt.Fprintf(tw, "oldest record\t%s\n", at(out.OldestAppendTime))
		fmt.Fprintf(tw, "newest record\t%s\n", at(out.NewestAppendTime))
	}
	printRetained(tw, out.Retained, now) // retained.go
	fmt.Fprintf(tw, "cursors\t%d\n", out.Cursors)
	fmt.Fprintf(tw, "quarantines\t%d targets\n", out.QuarantineTarget)
	for _, p := range out.Problems {
		fmt.Fprintf(tw, "DAMAGE\t%s\n", p)
	}
	return tw.Flush()
}

// oldestHeld returns the oldest record the log holds, nil if none.
func oldestHeld(ctx context.Context, l *wal.Log) (*wal.Record, error) {
	var out *wal.Record
	_, err := l.Read(ctx, l.FirstSeq(), "", func(r wal.Record) bool {
		out = &r
		return false
	})
	return out, err
}

// newestHeld returns the newest record the log holds, nil if none. The
// record at LastSeq may not be held (its frame reclaimed before older
// ones, or damaged), so it reads the tail from ever further back until it
// finds a record: 1, 16, 256, ... sequences before the end.
func newestHeld(ctx context.Context, l *wal.Log) (*wal.Record, error) {
	first, last := l.FirstSeq(), l.LastSeq()
	if first > last {
		return nil, nil
	}
	for span := uint64(1); ; span *= 16 {
		from := first
		if last-first >= span {
			from = last - span + 1
		}
		var out *wal.Record
		if _, err := l.Read(ctx, from, "", func(r wal.Record) bool {
			out = &r
			return true
		}); err != nil {
			return nil, err
		}
		if out != nil || from == first {
			return out, nil
		}
	}
}

// Usage prints the info command's usage.
func (c *InfoCommand) Usage() {
	fmt.Fprint(c.g.stdout, `Usage: walinspect info [--json] <dataDir|wal.db>

Prints the log file's size (on disk and in use by bbolt), the records it
holds (count, frames, bytes of record data uncompressed), the frames per
codec (s2, zstd, none) with their bytes before and after compression (see
'walinspect frames' for each frame), the first and the
last sequence held ("-" when the log is empty), the next sequence an append
gets, when the oldest and the newest record held were appended, the
retained range (the oldest sequence a target can be rewound to, when it was
appended, and the delivered records relay.retention keeps), and how many
targets have a cursor and a quarantine.

--json prints the same as an object; firstSeq and lastSeq are null when the
log holds no record, nextSeq is always set. Damage met on the way (bbolt
meta pages, the oldest or newest frame) is printed on DAMAGE lines (in
"problems" with --json) and the exit code is 1; run verify for a full check.
`)
}

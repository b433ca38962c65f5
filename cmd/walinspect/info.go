package main

import (
	"context"
	"flag"
	"fmt"
	"os"
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
	// FirstSeq is the oldest record held; LastSeq+1 when the log is empty.
	FirstSeq         uint64     `json:"firstSeq"`
	LastSeq          uint64     `json:"lastSeq"`
	OldestAppendTime *time.Time `json:"oldestAppendTime,omitempty"`
	NewestAppendTime *time.Time `json:"newestAppendTime,omitempty"`
	Cursors          int        `json:"cursors"`
	QuarantineTarget int        `json:"quarantineTargets"`
}

// Run runs the info command.
func (c *InfoCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("walinspect info", flag.ContinueOnError)
	c.g.register(fs)
	pos, err := parseArgs("info", fs, c.Usage, args)
	if err != nil {
		return err
	}
	arg, err := logArg("info", pos)
	if err != nil {
		return err
	}
	l, err := openLog(arg)
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
		FirstSeq:         l.FirstSeq(),
		LastSeq:          l.LastSeq(),
		Cursors:          len(l.Cursors()),
		QuarantineTarget: len(l.QuarantineTargets()),
	}
	if fi, err := os.Stat(out.Path); err == nil {
		out.FileSize = fi.Size()
	}
	if out.Records > 0 {
		first, err := appendTime(l, out.FirstSeq)
		if err != nil {
			return err
		}
		last, err := appendTime(l, out.LastSeq)
		if err != nil {
			return err
		}
		out.OldestAppendTime, out.NewestAppendTime = first, last
	}
	if c.g.json {
		return c.g.writeJSON(out)
	}
	now := c.g.clock()
	tw := tabwriter.NewWriter(c.g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "path\t%s\n", out.Path)
	fmt.Fprintf(tw, "file size\t%s (%d bytes), %s in use\n", bytesHuman(out.FileSize), out.FileSize, bytesHuman(out.UsedSize))
	fmt.Fprintf(tw, "records\t%d in %d frames\n", out.Records, out.Frames)
	fmt.Fprintf(tw, "record bytes\t%s (%d bytes, uncompressed)\n", bytesHuman(out.RecordBytes), out.RecordBytes)
	if out.Records == 0 {
		fmt.Fprintf(tw, "first seq\t- (empty)\n")
	} else {
		fmt.Fprintf(tw, "first seq\t%d\n", out.FirstSeq)
	}
	fmt.Fprintf(tw, "last seq\t%d\n", out.LastSeq)
	if out.OldestAppendTime != nil {
		fmt.Fprintf(tw, "oldest record\t%s (%s ago)\n", out.OldestAppendTime.Format(time.RFC3339), age(now.Sub(*out.OldestAppendTime)))
		fmt.Fprintf(tw, "newest record\t%s (%s ago)\n", out.NewestAppendTime.Format(time.RFC3339), age(now.Sub(*out.NewestAppendTime)))
	}
	fmt.Fprintf(tw, "cursors\t%d\n", out.Cursors)
	fmt.Fprintf(tw, "quarantines\t%d targets\n", out.QuarantineTarget)
	return tw.Flush()
}

// appendTime returns when the record seq (or the first one after it) was
// appended, nil if there is none.
func appendTime(l *wal.Log, seq uint64) (*time.Time, error) {
	var t *time.Time
	_, err := l.Read(context.Background(), seq, "", func(r wal.Record) bool {
		at := r.AppendTime.UTC()
		t = &at
		return false
	})
	return t, err
}

// Usage prints the info command's usage.
func (c *InfoCommand) Usage() {
	fmt.Fprint(c.g.stdout, `Usage: walinspect info [--json] <dataDir|wal.db>

Prints the log file's size (on disk and in use by bbolt), the records it holds (count, frames, bytes of
record data uncompressed), the first and last sequence, when the oldest and
the newest record were appended, and how many targets have a cursor and a
quarantine.
`)
}

package main

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/bucketrelay/bucketrelay/wal"
)

// FramesCommand prints one row per stored frame: its range, records,
// layout version, codec and sizes.
type FramesCommand struct {
	g *globals
}

// frameJSON is one frame in frames' --json output.
type frameJSON struct {
	First       uint64 `json:"first"`
	Last        uint64 `json:"last"`
	Records     int    `json:"records"`
	Version     int    `json:"version,omitempty"`
	Codec       string `json:"codec,omitempty"`
	RawBytes    int    `json:"rawBytes"`
	StoredBytes int    `json:"storedBytes"`
	// Damage says why the frame's header cannot be read; its other fields
	// are zero then.
	Damage string `json:"damage,omitempty"`
}

// codecJSON is what the frames of one codec hold (info's "codecs").
type codecJSON struct {
	Codec       string `json:"codec"`
	Frames      int    `json:"frames"`
	RawBytes    int64  `json:"rawBytes"`
	StoredBytes int64  `json:"storedBytes"`
}

// Run runs the frames command. It returns an error wrapping
// errDamageReported (exit code 1) after printing when a header is damaged.
func (c *FramesCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("walinspect frames", flag.ContinueOnError)
	c.g.register(fs)
	l, err := openLogArgs("frames", fs, c.Usage, args)
	if err != nil {
		return err
	}
	defer l.Close()
	rows := []frameJSON{}
	damaged := 0
	if err := l.FrameInfos(func(fi wal.FrameInfo) bool {
		rows = append(rows, frameJSON{fi.First, fi.Last, fi.Records, fi.Version, fi.Codec, fi.RawBytes, fi.StoredBytes, fi.Damage})
		if fi.Damage != "" {
			damaged++
		}
		return ctx.Err() == nil
	}); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.g.json {
		err = c.g.writeJSON(rows)
	} else {
		tw := tabwriter.NewWriter(c.g.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "FIRST\tLAST\tRECORDS\tVERSION\tCODEC\tRAW\tSTORED\tRATIO")
		for _, r := range rows {
			if r.Damage != "" {
				fmt.Fprintf(tw, "%d\t%d\tDAMAGE\t%s\n", r.First, r.Last, r.Damage)
				continue
			}
			fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", r.First, r.Last, r.Records, r.Version, r.Codec, bytesHuman(int64(r.RawBytes)), bytesHuman(int64(r.StoredBytes)), ratio(int64(r.RawBytes), int64(r.StoredBytes)))
		}
		err = tw.Flush()
	}
	if err != nil {
		return err
	}
	if damaged > 0 {
		return fmt.Errorf("%w: %d frame header(s) damaged in %s; run 'walinspect verify'", errDamageReported, damaged, l.Path())
	}
	return nil
}

// codecsOf sums the frames of l per codec, for info.
func codecsOf(l *wal.Log) ([]codecJSON, error) {
	by := map[string]*codecJSON{}
	err := l.FrameInfos(func(fi wal.FrameInfo) bool {
		if fi.Damage != "" {
			return true // info lists damage from the log's own report
		}
		c := by[fi.Codec]
		if c == nil {
			c = &codecJSON{Codec: fi.Codec}
			by[fi.Codec] = c
		}
		c.Frames++
		c.RawBytes += int64(fi.RawBytes)
		c.StoredBytes += int64(fi.StoredBytes)
		return true
	})
	out := []codecJSON{}
	for _, c := range by {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Codec < out[j].Codec })
	return out, err
}

// codecsLine is info's text for codecs: "s2: 3 frames, 1.5 MiB in 80.0 KiB
// (19.2×)", one part per codec.
func codecsLine(cs []codecJSON) string {
	if len(cs) == 0 {
		return "- (no frames)"
	}
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%s: %d frames, %s in %s (%s)", c.Codec, c.Frames, bytesHuman(c.RawBytes), bytesHuman(c.StoredBytes), ratio(c.RawBytes, c.StoredBytes)))
	}
	return strings.Join(parts, "; ")
}

// ratio is raw over stored bytes, as "18.0×".
func ratio(raw, stored int64) string {
	if stored == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f×", float64(raw)/float64(stored))
}

// Usage prints the frames command's usage.
func (c *FramesCommand) Usage() {
	fmt.Fprint(c.g.stdout, `Usage: walinspect frames [--json] <dataDir|wal.db>

Prints one row per frame (group commit) the log holds, oldest first: its
first and last sequence, records, layout version, the codec its records are
compressed with (s2, zstd or none: relay.compression when it was written),
their size before compression, the frame's size in the file and the ratio.
It reads frame headers only; verify checks the payloads.

--json prints an array of {"first", "last", "records", "version", "codec",
"rawBytes", "storedBytes"}; a frame whose header is damaged has "damage"
instead, is printed on a DAMAGE row, and the exit code is 1.
`)
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/bucketrelay/bucketrelay/wal"
)

// VerifyCommand checks every checksum, cursor and page of the log.
type VerifyCommand struct {
	g *globals
}

// verifyJSON is verify's --json output.
type verifyJSON struct {
	Path              string   `json:"path"`
	OK                bool     `json:"ok"`
	Frames            int      `json:"frames"`
	Records           int64    `json:"records"`
	Cursors           int      `json:"cursors"`
	QuarantineEntries int      `json:"quarantineEntries"`
	Problems          []string `json:"problems"`
}

// Run runs the verify command. It returns an error wrapping
// errDamageReported (exit code 1) when it finds any damage.
func (c *VerifyCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("walinspect verify", flag.ContinueOnError)
	c.g.register(fs)
	pos, err := parseArgs("verify", fs, c.Usage, args)
	if err != nil {
		return err
	}
	arg, err := logArg("verify", pos)
	if err != nil {
		return err
	}
	out := verifyJSON{Path: arg, Problems: []string{}}
	l, err := openLog(arg)
	if errors.Is(err, wal.ErrCorrupt) {
		// The log does not even load: a frame header is damaged.
		out.Problems = append(out.Problems, err.Error())
		return c.report(out)
	}
	if err != nil {
		return err
	}
	defer l.Close()
	out.Path = l.Path()
	out.Frames = l.Frames()
	out.Records = l.Events()
	out.Cursors = len(l.Cursors())

	p := c.g.newProgress("verifying", 0, 0)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				p.tick()
			}
		}
	}()
	var problems []error
	problems = append(problems, l.Verify()...)
	problems = append(problems, l.CheckStorage()...)
	for _, t := range l.QuarantineTargets() {
		q, err := l.Quarantined(t)
		if err != nil {
			problems = append(problems, fmt.Errorf("quarantine of %s: %w", t, err))
		}
		out.QuarantineEntries += len(q)
	}
	close(stop)
	<-done
	p.done()
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, e := range problems {
		out.Problems = append(out.Problems, e.Error())
	}
	return c.report(out)
}

// report prints the result and returns the damage error, if any.
func (c *VerifyCommand) report(out verifyJSON) error {
	out.OK = len(out.Problems) == 0
	if c.g.json {
		if err := c.g.writeJSON(out); err != nil {
			return err
		}
	} else {
		for _, p := range out.Problems {
			fmt.Fprintf(c.g.stdout, "DAMAGE  %s\n", p)
		}
		fmt.Fprintf(c.g.stdout, "checked %s: %d frames, %d records, %d cursors, %d quarantine entries\n",
			out.Path, out.Frames, out.Records, out.Cursors, out.QuarantineEntries)
		if out.OK {
			fmt.Fprintln(c.g.stdout, "ok")
		}
	}
	if !out.OK {
		return fmt.Errorf("%w: %d problem(s) in %s", errDamageReported, len(out.Problems), out.Path)
	}
	return nil
}

// Usage prints the verify command's usage.
func (c *VerifyCommand) Usage() {
	fmt.Fprint(c.g.stdout, `Usage: walinspect verify [--json] [--progress] <dataDir|wal.db>

Checks every frame's and every record's CRC-32C, that frames follow each
other in sequence order, that every cursor is within the log, that every
quarantine entry parses, and bbolt's own page structure. Each problem is
printed on a line starting with DAMAGE and naming the sequence (or page) it
is at. Exit code 1 when anything is damaged, 0 when all is sound.
`)
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"runtime/debug"

	"github.com/bucketrelay/bucketrelay/wal"
)

// VerifyCommand checks every checksum, cursor and page of the log.
type VerifyCommand struct {
	g *globals
}

// verifyJSON is verify's --json output.
type verifyJSON struct {
	Path              string `json:"path"`
	OK                bool   `json:"ok"`
	Frames            int    `json:"frames"`
	Records           int64  `json:"records"`
	Cursors           int    `json:"cursors"`
	QuarantineEntries int    `json:"quarantineEntries"`
	// Damaged lists the sequence ranges whose records cannot be read;
	// DamagedRecords is their size (an upper bound of the records lost).
	Damaged        []wal.DamagedRange `json:"damaged"`
	DamagedRecords uint64             `json:"damagedRecords"`
	Problems       []string           `json:"problems"`
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
	path, err := resolveLog(arg)
	if err != nil {
		return err
	}
	out := verifyJSON{Path: path, Damaged: []wal.DamagedRange{}, Problems: []string{}}

	// Every frame, cursor, quarantine entry and meta page, read the way
	// salvage reads them: past pages bbolt cannot read.
	p := c.g.newProgress("verifying", 1, 0)
	rep, err := wal.Scan(path, wal.SalvageOptions{Progress: func(seq, last uint64) {
		p.last = last
		p.at(seq)
	}})
	p.done()
	if errors.Is(err, wal.ErrLocked) || (err != nil && !errors.Is(err, wal.ErrCorrupt)) {
		return locked(path, err)
	}
	out.Problems = append(out.Problems, rep.Problems...)
	if err != nil {
		// bbolt cannot open the file at all.
		out.Problems = append(out.Problems, err.Error())
		return c.report(out)
	}
	out.Frames, out.Records = rep.Frames, rep.Records
	out.Cursors, out.QuarantineEntries = rep.Cursors, rep.QuarantineEntries
	out.Damaged, out.DamagedRecords = rep.Damaged, rep.DamagedRecords
	if err := ctx.Err(); err != nil {
		return err
	}

	// The log as the relay loads it, and bbolt's own page check.
	l, err := openLog(path)
	switch {
	case errors.Is(err, wal.ErrCorrupt):
		out.Problems = append(out.Problems, fmt.Sprintf("load: the relay cannot load this log: %v", err))
	case err != nil:
		return err
	case rep.UnreadablePages > 0:
		// bbolt's page check loads the free list by walking every page
		// in a goroutine of its own, where a damaged page's panic cannot
		// be recovered: it would crash walinspect.
		l.Close()
		out.Problems = append(out.Problems, "storage: bbolt's page check skipped: it cannot run over the damaged pages above")
	default:
		defer l.Close()
		for _, e := range checkStorage(l) {
			out.Problems = append(out.Problems, e.Error())
		}
	}
	return c.report(out)
}

// checkStorage is l.CheckStorage, turning a panic on a damaged page into a
// problem.
func checkStorage(l *wal.Log) (errs []error) {
	defer func() {
		if r := recover(); r != nil {
			errs = append(errs, fmt.Errorf("storage: bbolt's page check failed on a damaged page: %v", r))
		}
	}()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	return l.CheckStorage()
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
other in sequence order, that every cursor is 8 bytes and within the log,
that every quarantine entry parses, bbolt's two meta pages (magic, version,
checksum; a damaged newest meta page silently rolls back the last
transaction), bbolt's own page structure, and that the log loads as the
relay loads it. Pages bbolt cannot read are walked past, so every damaged
range is found, not only the first.

Each problem is printed on a line starting with DAMAGE that names the bucket
(records, cursors, quarantine, meta, storage, load) and the sequence range,
target or page it is at. Exit code 1 when anything is damaged (also when
bbolt cannot open the file at all), 0 when all is sound.

--json prints {"path", "ok", "frames", "records", "cursors",
"quarantineEntries", "damaged": [{"first", "last", "reason", "targets"}],
"damagedRecords", "problems": [...]}.
`)
}

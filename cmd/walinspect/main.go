// Command walinspect inspects a relay's write-ahead log without changing
// it, and copies what is intact in a damaged log into a new one.
//
//	walinspect [--json] [--progress] <command> [flags] <dataDir|wal.db>
//
// Commands: info, targets, frames, dump, verify, salvage. The log is opened
// read-only (a shared bbolt lock) and never written; salvage writes what is
// intact into a new file. While a relay holds the log walinspect says so
// and exits with code 3 instead of waiting. See docs/walinspect.md.
//
// Exit codes: 0 ok, 1 damage found (or a failure such as an unknown
// target), 2 usage error, 3 the log is held by a running relay, 4 the
// command could not run (missing file, not a relay log, I/O error).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"time"

	"github.com/bucketrelay/bucketrelay/internal/buildinfo"
	"github.com/bucketrelay/bucketrelay/wal"
)

// Exit codes.
const (
	exitOK     = 0
	exitDamage = 1 // damage found, or the answer is a failure (unknown target)
	exitUsage  = 2
	exitLocked = 3
	exitOther  = 4 // could not run: no such file, not a relay log, I/O error
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	m := &Main{Stdout: os.Stdout, Stderr: os.Stderr, Terminal: isTerminal(os.Stderr)}
	code := m.Exec(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// Main is the program with its streams, so tests run it in-process.
type Main struct {
	// Stdout receives the command's output.
	Stdout io.Writer
	// Stderr receives errors and progress.
	Stderr io.Writer
	// Terminal reports whether Stderr is a terminal; progress is shown on a
	// terminal without --progress.
	Terminal bool

	progressEvery time.Duration // tests shorten the progress interval
}

// Exec runs the command line args and returns the exit code, after printing
// any error to Stderr.
func (m *Main) Exec(ctx context.Context, args []string) int {
	err := m.guardedRun(ctx, args)
	code := exitCode(err)
	if err != nil && code != exitOK {
		var ue *usageError
		switch {
		case errors.As(err, &ue):
			fmt.Fprintf(m.Stderr, "walinspect: %s\n", ue.msg)
			if ue.cmd != "" {
				fmt.Fprintf(m.Stderr, "Run 'walinspect %s -h' for usage.\n", ue.cmd)
			} else {
				fmt.Fprintln(m.Stderr, "Run 'walinspect -h' for usage.")
			}
		case errors.Is(err, errDamageReported):
			// verify printed every problem already; this is the summary.
			fmt.Fprintf(m.Stderr, "walinspect: %v\n", err)
		case errors.Is(err, wal.ErrCorrupt):
			fmt.Fprintf(m.Stderr, "walinspect: %v\n", err)
			fmt.Fprintln(m.Stderr, "Run 'walinspect verify' to list the damage and 'walinspect salvage' to copy what is intact.")
		default:
			fmt.Fprintf(m.Stderr, "walinspect: %v\n", err)
		}
	}
	return code
}

// guardedRun is Run, turning a panic into an error wrapping wal.ErrCorrupt
// (exit code 1): bbolt panics on a damaged page wherever a command meets
// one, and a damaged page pointing outside the mapped file faults, which
// SetPanicOnFault turns into a panic too.
func (m *Main) guardedRun(ctx context.Context, args []string) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = &wal.DamageError{Msg: fmt.Sprintf("reading the log failed on a damaged page: %v", r)}
		}
	}()
	return m.Run(ctx, args)
}

// Run parses the global flags and runs the subcommand.
func (m *Main) Run(ctx context.Context, args []string) error {
	if len(args) == 1 && (args[0] == "--version" || args[0] == "-version" || args[0] == "version") {
		fmt.Fprintln(m.Stdout, buildinfo.String("walinspect"))
		return nil
	}
	g := &globals{stdout: m.Stdout, stderr: m.Stderr, terminal: m.Terminal, progressEvery: m.progressEvery}
	fs := flag.NewFlagSet("walinspect", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	g.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			m.Usage()
			return err
		}
		return &usageError{msg: err.Error()}
	}
	if fs.NArg() == 0 {
		return &usageError{msg: "no command given"}
	}
	name, rest := fs.Arg(0), fs.Args()[1:]
	var cmd command
	switch name {
	case "info":
		cmd = &InfoCommand{g: g}
	case "targets":
		cmd = &TargetsCommand{g: g}
	case "frames":
		cmd = &FramesCommand{g: g}
	case "dump":
		cmd = &DumpCommand{g: g}
	case "verify":
		cmd = &VerifyCommand{g: g}
	case "salvage":
		cmd = &SalvageCommand{g: g}
	case "help":
		if len(rest) > 0 {
			return m.Run(ctx, []string{rest[0], "-h"})
		}
		m.Usage()
		return nil
	default:
		return &usageError{msg: fmt.Sprintf("unknown command %q", name)}
	}
	return cmd.Run(ctx, rest)
}

// command is what every subcommand implements.
type command interface {
	Run(ctx context.Context, args []string) error
	Usage()
}

// Usage prints the program's usage to Stdout.
func (m *Main) Usage() {
	fmt.Fprint(m.Stdout, strings.TrimLeft(`
walinspect inspects a relay's write-ahead log without changing it, and
copies what is intact in a damaged log into a new one.

Usage:

	walinspect [--json] [--progress] <command> [flags] <dataDir|wal.db>

The argument is the relay's data directory (the log is <dataDir>/wal.db) or
the log file itself.

Commands:

	info      size, first and last sequence, record count, codecs
	frames    per frame: range, records, codec, sizes before and after
	          compression
	targets   per target: cursor, pending events, age of the oldest pending
	          event, quarantine count, last quarantine error
	dump      records (or a target's quarantine) as JSON lines
	verify    check every checksum, cursor, quarantine entry, page and
	          bbolt meta page; name each problem; exit 1 on damage
	salvage   copy every intact record, cursor and quarantine entry into
	          a new log: walinspect salvage <dataDir|wal.db> -o DST

Run 'walinspect --version' for the module version and VCS revision.

Global flags (also accepted after the command):

	--json      machine-readable output (every command; dump always
	            prints JSON lines)
	--progress  report progress of long scans on stderr (default: only
	            when stderr is a terminal; always for salvage)

Exit codes:

	0  ok (salvage: the new log was written; see its DAMAGE lines)
	1  damage found: a damaged frame, record, cursor, quarantine entry,
	   page or bbolt meta page, also when bbolt cannot open the file at
	   all; or a failure such as dump --target naming an unknown target
	2  usage error (salvage: also when DST exists)
	3  the log is held by a running relay
	4  the command could not run: no log at the path, not a relay log,
	   an I/O error, an interrupt

Run 'walinspect <command> -h' for a command's flags.
`, "\n"))
}

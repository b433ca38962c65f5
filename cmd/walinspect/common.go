package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bucketrelay/bucketrelay/wal"
)

// logFile is the log's name inside a relay's data directory.
const logFile = "wal.db"

// globals are the settings every subcommand shares.
type globals struct {
	stdout, stderr io.Writer
	terminal       bool // stderr is a terminal
	json           bool
	progress       bool
	now            func() time.Time // nil means time.Now
	progressEvery  time.Duration    // 0 means a second
}

// register adds the global flags to fs, so they work before and after the
// command name.
func (g *globals) register(fs *flag.FlagSet) {
	fs.BoolVar(&g.json, "json", g.json, "machine-readable output")
	fs.BoolVar(&g.progress, "progress", g.progress, "report progress of long scans on stderr")
}

func (g *globals) clock() time.Time {
	if g.now != nil {
		return g.now()
	}
	return time.Now()
}

func (g *globals) writeJSON(v any) error {
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// usageError is a bad command line (exit code 2).
type usageError struct {
	cmd string
	msg string
}

func (e *usageError) Error() string { return e.msg }

// errDamageReported wraps the summary error of a command that has already
// printed the damage it found (exit code 1).
var errDamageReported = errors.New("damage found")

// errUnknownTarget wraps the error of a command asked about a target the
// log does not know (exit code 1).
var errUnknownTarget = errors.New("unknown target")

// lockedError is returned while a relay holds the log (exit code 3).
type lockedError struct {
	path string
	pid  int // 0 when unknown
	err  error
}

func (e *lockedError) Error() string {
	held := "held by a running relay"
	if e.pid > 0 {
		held = fmt.Sprintf("held by a running relay (pid %d)", e.pid)
	}
	return fmt.Sprintf("the log at %s is %s; stop it or use the relay's /metrics", e.path, held)
}

func (e *lockedError) Unwrap() error { return e.err }

// exitCode maps an error to the program's exit code.
func exitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, errDamageReported), errors.Is(err, wal.ErrCorrupt), errors.Is(err, errUnknownTarget):
		return exitDamage
	case errors.Is(err, wal.ErrLocked):
		return exitLocked
	default:
		return exitOther
	}
}

// parseArgs parses flags that may come before and after the positional
// arguments, which it returns.
func parseArgs(cmd string, fs *flag.FlagSet, usage func(), args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				usage()
				return nil, err
			}
			return nil, &usageError{cmd: cmd, msg: cmd + ": " + err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// logArg returns the single <dataDir|wal.db> argument.
func logArg(cmd string, pos []string) (string, error) {
	switch len(pos) {
	case 0:
		return "", &usageError{cmd: cmd, msg: cmd + ": no data directory or log file given"}
	case 1:
		return pos[0], nil
	default:
		return "", &usageError{cmd: cmd, msg: fmt.Sprintf("%s: one data directory or log file expected, got %q", cmd, pos)}
	}
}

// openLogArgs parses args (flags and the single <dataDir|wal.db>
// argument) and opens that log read-only: the start of every command that
// takes nothing else.
func openLogArgs(cmd string, fs *flag.FlagSet, usage func(), args []string) (*wal.Log, error) {
	pos, err := parseArgs(cmd, fs, usage, args)
	if err != nil {
		return nil, err
	}
	arg, err := logArg(cmd, pos)
	if err != nil {
		return nil, err
	}
	return openLog(arg)
}

// openLog opens the log named by arg (a data directory or the file)
// read-only.
func openLog(arg string) (*wal.Log, error) {
	path, err := resolveLog(arg)
	if err != nil {
		return nil, err
	}
	l, err := openReadOnly(path)
	if err != nil {
		return nil, locked(path, err)
	}
	return l, nil
}

// openReadOnly is wal.OpenReadOnly, turning a panic of bbolt on a damaged
// page into an error wrapping wal.ErrCorrupt (exit code 1), and a file
// bbolt refuses because its meta pages are damaged into one too.
func openReadOnly(path string) (l *wal.Log, err error) {
	defer func() {
		if r := recover(); r != nil {
			l, err = nil, &wal.DamageError{Msg: fmt.Sprintf("%s: bbolt cannot read the file's pages (%v)", path, r)}
		}
	}()
	l, err = wal.OpenReadOnly(path)
	if err != nil && !errors.Is(err, wal.ErrLocked) && !errors.Is(err, wal.ErrCorrupt) {
		if problems, merr := wal.CheckMeta(path); merr == nil && len(problems) > 0 {
			return nil, fmt.Errorf("%w (%v)", errors.Join(problems...), err)
		}
	}
	return l, err
}

// resolveLog returns the log file named by arg: arg itself, or wal.db in
// the data directory arg.
func resolveLog(arg string) (string, error) {
	path := arg
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("no log at %s: %w", arg, err)
	}
	if fi.IsDir() {
		path = filepath.Join(arg, logFile)
		if fi, err = os.Stat(path); err != nil {
			return "", fmt.Errorf("no log in %s: %w", arg, err)
		}
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a log file", path)
	}
	if fi.Size() == 0 {
		// bbolt would try to write a new file's first pages into it.
		return "", fmt.Errorf("%s is empty: not a relay log (it holds nothing)", path)
	}
	return path, nil
}

// locked adds the holder's pid to an error wrapping wal.ErrLocked.
func locked(path string, err error) error {
	if errors.Is(err, wal.ErrLocked) {
		return &lockedError{path: path, pid: lockHolder(path), err: err}
	}
	return err
}

// progress reports a long scan's position on stderr about once a second.
type progress struct {
	w     io.Writer
	on    bool
	tty   bool
	every time.Duration
	label string
	first uint64
	last  uint64
	start time.Time
	next  time.Time
	shown bool
}

func (g *globals) newProgress(label string, first, last uint64) *progress {
	now := time.Now()
	every := g.progressEvery
	if every <= 0 {
		every = time.Second
	}
	return &progress{
		w: g.stderr, on: g.progress || g.terminal, tty: g.terminal, every: every,
		label: label, first: first, last: last, start: now, next: now.Add(every),
	}
}

// at reports that the scan reached sequence seq.
func (p *progress) at(seq uint64) {
	if !p.on {
		return
	}
	now := time.Now()
	if now.Before(p.next) {
		return
	}
	p.next = now.Add(p.every)
	pct := 100.0
	if p.last >= p.first && p.last > 0 {
		pct = 100 * float64(seq-min(seq, p.first)+1) / float64(p.last-p.first+1)
	}
	p.print(fmt.Sprintf("%s: sequence %d of %d-%d (%.0f%%), %s", p.label, seq, p.first, p.last, pct, now.Sub(p.start).Round(time.Second)))
}

// tick reports that a scan with no position is still running.
func (p *progress) tick() {
	if !p.on {
		return
	}
	p.print(fmt.Sprintf("%s: %s", p.label, time.Since(p.start).Round(time.Second)))
}

func (p *progress) print(s string) {
	p.shown = true
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", s)
	} else {
		fmt.Fprintln(p.w, s)
	}
}

// done clears the progress line on a terminal.
func (p *progress) done() {
	if p.on && p.tty && p.shown {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// age formats d for a table: whole seconds, "-" for none.
func age(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// oneLine makes s fit a table cell of at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	r := []rune(s)
	if len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// bytesHuman formats n bytes with a binary unit.
func bytesHuman(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

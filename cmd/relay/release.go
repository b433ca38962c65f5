package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/bucketrelay/bucketrelay/relay"
	"github.com/bucketrelay/bucketrelay/rules"
	"github.com/bucketrelay/bucketrelay/wal"
)

// releaseCommand exports the backlog of a target that is no longer
// enabled to a file and lets the log drop it: the only way a removed
// target's pending events leave the log.
type releaseCommand struct {
	out io.Writer // nil means os.Stdout
}

// Usage prints the command's help.
func (c *releaseCommand) Usage(fs *flag.FlagSet) {
	fmt.Fprint(fs.Output(), `Usage: relay release --config FILE ARN --export FILE.jsonl

Writes every event still pending for ARN in the relay's log to FILE.jsonl,
one JSON object a line ({"seq":…,"key":…,"eventName":…,"record":{…}}),
syncs it to disk, then deletes the target's cursor so the log can reclaim
what the target held. Run it with the relay stopped, for a target that is
no longer enabled in the configuration. The export file must not exist.

Flags:
`)
	fs.PrintDefaults()
}

// Run releases the target named by args.
func (c *releaseCommand) Run(ctx context.Context, args []string) error {
	out := c.out
	if out == nil {
		out = os.Stdout
	}
	fs := flag.NewFlagSet("release", flag.ContinueOnError)
	config := fs.String("config", "", "configuration file (JSON)")
	export := fs.String("export", "", "file to write the released events to (JSON lines; must not exist)")
	fs.Usage = func() { c.Usage(fs) }
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Flags may follow the ARN.
	var pos []string
	for fs.NArg() > 0 {
		pos = append(pos, fs.Arg(0))
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return err
		}
	}
	if *config == "" || *export == "" || len(pos) != 1 {
		fs.Usage()
		return usagef("release needs --config FILE, one ARN and --export FILE")
	}
	arn := pos[0]
	if _, err := rules.ParseARN(arn); err != nil {
		return usagef("%v", err)
	}
	cfg, err := relay.LoadConfig(*config)
	if err != nil {
		return usagef("%v", err)
	}
	if cfg.Relay.Log.Cluster() {
		return usagef(`release is not supported on a cluster log (relay.log "kind": "jetstream"): a target's backlog there is reclaimed once its cursors pass it`)
	}
	for _, tc := range cfg.Targets {
		if tc.ARN == arn && tc.Enabled {
			return usagef("%s is enabled in %s: disable or remove it there first; release lets its pending events go", arn, *config)
		}
	}
	path := cfg.DataPath("wal.db")
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("release: no relay log: %w", err)
	}
	l, err := wal.Open(path, wal.Options{LockWait: time.Second, Compression: wal.Compression(cfg.Relay.Compression)})
	if errors.Is(err, wal.ErrLocked) {
		return fmt.Errorf("release: the log is in use; stop the relay first: %w", err)
	}
	if err != nil {
		return fmt.Errorf("release: %w", err)
	}
	n, err := c.release(l, arn, *export)
	if cerr := l.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("release: %w", cerr)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "exported %d events of %s to %s and released them\n", n, arn, *export)
	return nil
}

func (c *releaseCommand) release(l *wal.Log, arn, export string) (int, error) {
	if _, ok := l.Cursor(arn); !ok {
		if n, _ := l.Pending(arn); n == 0 {
			return 0, fmt.Errorf("release: the log has no cursor and no events for %s", arn)
		}
	}
	f, err := os.OpenFile(export, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, fmt.Errorf("release: export file: %w", err)
	}
	// The file's directory entry is durable before anything is released.
	if d, err := os.Open(filepath.Dir(export)); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			f.Close()
			os.Remove(export)
			return 0, fmt.Errorf("release: export file: %w", err)
		}
	}
	n, err := l.Release(arn, f) // syncs f before it releases
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		os.Remove(export) // nothing was released
		return 0, fmt.Errorf("release: %w", err)
	}
	return n, nil
}

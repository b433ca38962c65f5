package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bucketrelay/bucketrelay/internal/human"

	"github.com/bucketrelay/bucketrelay/relay"
	"github.com/bucketrelay/bucketrelay/rules"
)

// targetsCommand shows the targets of a running relay and pauses or
// resumes them.
type targetsCommand struct {
	out io.Writer
	now func() time.Time // tests
}

// Usage prints the command's help.
func (c *targetsCommand) Usage(fs *flag.FlagSet) {
	fmt.Fprint(fs.Output(), `Usage:
  relay targets [--json] [--watch] [--interval 2s]
  relay targets pause ARN
  relay targets resume ARN
  relay targets add ARN (--param key=value ... | --file FILE) [--kind KIND] [--from-start] [--json]
  relay targets update ARN (--param key=value ... | --file FILE) [--json]
  relay targets remove ARN [--force [--export FILE]] [--json]
  relay targets rewind ARN --to-time T | --to-seq N | --from-start [--json]

Without a subcommand, prints one row per target of the running relay:
its state (up, down, backing off, paused), cursor, lag (events pending
and their bytes), the age of its oldest pending event, delivered / retried / quarantined /
re-driven counts, the events in its quarantine now, the buckets whose
rules route to it, and its last error with when it happened and when it
is retried. --watch prints it again every --interval until interrupted.

pause holds a target's delivery (events are still logged for it; the pause
survives a restart); resume delivers what was held, in order.

add starts a new target without a restart, validated as the file's
"notify" entries are; it receives the events logged from then on
(--from-start: from the oldest the log holds) and is kept in the relay's
data directory (targets.json). update replaces a target's configuration;
delivery goes on from its cursor, nothing is lost (for a target of the
configuration file the update is kept as an override of its entry).
remove stops a target added with add, once no bucket rule routes to it;
if events are pending for it, it is refused unless --force, which exports
them (JSON lines, on the relay's host; --export also copies them to a local
FILE) and then releases them. remove --force also releases what a target
removed from the configuration file left pending.

rewind moves a target back to the first event logged at or after T (RFC
3339, such as 2026-12-01T10:00:00Z) or to sequence N, and delivers the
events routed to it from there on again (at-least-once, on purpose). The
events must still be in the log: relay.retention keeps delivered ones;
the relay refuses a point older than its retained history and names the
oldest it has. --from-start routes the retained events the target's bucket
rules route to now to it, from the oldest on (a target added later, then
given its rules, catches up).

Exit codes: 0 done, 1 refused or failed (unknown target, a conflict, pending
events), 2 bad input (flags, or a description the relay refused).

`)
	printClientUsage(fs)
}

// Run runs the command.
func (c *targetsCommand) Run(ctx context.Context, args []string) error {
	if c.out == nil {
		c.out = os.Stdout
	}
	if c.now == nil {
		c.now = time.Now
	}
	fs := flag.NewFlagSet("targets", flag.ContinueOnError)
	cl := clientFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON (one object per target, one per line)")
	watch := fs.Bool("watch", false, "print the table again every --interval until interrupted")
	interval := fs.Duration("interval", 2*time.Second, "--watch refresh interval")
	mf := registerManageFlags(fs) // add, update, remove: targets_manage.go
	toTime := fs.String("to-time", "", "rewind: the time (RFC 3339) to deliver again from")
	toSeq := fs.Uint64("to-seq", 0, "rewind: the sequence to deliver again from")
	fs.Usage = func() { c.Usage(fs) }
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%v", err)
	}
	if len(pos) == 0 {
		if *interval <= 0 {
			return usagef("--interval must be positive")
		}
		return c.show(ctx, cl, *asJSON, *watch, *interval)
	}
	switch pos[0] {
	case "pause", "resume":
		if len(pos) != 2 {
			return usagef("targets %s needs one ARN", pos[0])
		}
		if _, err := rules.ParseARN(pos[1]); err != nil {
			return usagef("%v", err)
		}
		b, err := cl.do(ctx, http.MethodPost, "/v1/targets/"+url.PathEscape(pos[1])+"/"+pos[0], nil)
		if err != nil {
			return err
		}
		var res struct{ State string }
		json.Unmarshal(b, &res)
		if pos[0] == "pause" {
			fmt.Fprintf(c.out, "Paused %s: its events are kept and sent on resume.\n", pos[1])
		} else {
			fmt.Fprintf(c.out, "Resumed %s.\n", pos[1])
		}
		return nil
	case "add", "update", "remove":
		if len(pos) != 2 {
			return usagef("targets %s needs one ARN", pos[0])
		}
		return c.manage(ctx, cl, mf, pos[0], pos[1], *asJSON)
	}
	if pos[0] == "rewind" {
		return c.rewind(ctx, cl, pos, *toTime, *toSeq, mf.fromStart, *asJSON) // rewind.go
	}
	return usagef("unknown targets subcommand %q (add, update, remove, pause, resume, rewind, or none to list)", pos[0])
}

func (c *targetsCommand) show(ctx context.Context, cl *opClient, asJSON, watch bool, every time.Duration) error {
	for {
		var doc struct{ Targets []relay.TargetStatus }
		if err := cl.getJSON(ctx, "/v1/targets", &doc); err != nil {
			if watch && ctx.Err() != nil {
				return nil
			}
			return err
		}
		if watch && !asJSON {
			fmt.Fprint(c.out, "\x1b[H\x1b[2J") // home and clear, as watch(1) does
			fmt.Fprintf(c.out, "Every %s: relay targets at %s    %s\n\n", every, cl.base, c.now().Format(time.TimeOnly))
		}
		if asJSON {
			enc := json.NewEncoder(c.out)
			for _, t := range doc.Targets {
				enc.Encode(t)
			}
		} else if err := c.table(doc.Targets); err != nil {
			return err
		}
		if !watch {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
	}
}

// table prints one row per target, like kafka-consumer-groups --describe.
func (c *targetsCommand) table(ts []relay.TargetStatus) error {
	if len(ts) == 0 {
		fmt.Fprintln(c.out, "No targets are enabled.")
		return nil
	}
	now := c.now()
	w := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "TARGET\tSTATE\tCURSOR\tLAG\tLAG-BYTES\tOLDEST\tDELIVERED\tRETRIED\tQUARANTINED\tIN-QUARANTINE\tREDRIVEN\tBUCKETS\tLAST ERROR")
	for _, t := range ts {
		oldest := "-"
		if t.OldestPending != nil {
			oldest = human.Age(now.Sub(*t.OldestPending))
		}
		buckets := strings.Join(t.Buckets, ",")
		if buckets == "" {
			buckets = "-"
		}
		last := "-"
		if t.LastError != "" {
			last = t.LastError
			if t.LastErrorTime != nil {
				last += " (" + human.Age(now.Sub(*t.LastErrorTime)) + " ago"
				if t.NextRetry != nil {
					last += ", retry in " + human.Age(t.NextRetry.Sub(now))
				}
				last += ")"
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", t.ARN, t.State, t.Cursor, t.Lag, human.Bytes(t.LagBytes), oldest,
			t.Delivered, t.Retried, t.Quarantined, t.InQuarantine, t.Redriven, buckets, last)
	}
	return w.Flush()
}

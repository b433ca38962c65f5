package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bucketrelay/bucketrelay/jslog"
	"github.com/bucketrelay/bucketrelay/relay"
)

// statusCommand reads a cluster log read-only through the JetStream API:
// one row per target lane, like kafka-consumer-groups --describe.
type statusCommand struct {
	out io.Writer
}

// Usage prints the command's help.
func (c *statusCommand) Usage(fs *flag.FlagSet) {
	fmt.Fprint(fs.Output(), `Usage: relay status --config FILE [--json]

Reads the cluster log named by the file's relay.log ("kind": "jetstream")
through the JetStream API, without changing anything and without a relay
running: the stream's state and leader, the relay processes sharing the
lanes, and for every target (or each lane of a target with lanes) its
cursor, lag, owner and quarantine count.

Lag counts the target's records from the cursor's message on; for one lane
of several it is the whole target's (an upper bound): only the message
bodies tell the keys.

Flags:
`)
	fs.PrintDefaults()
}

// Run prints the status.
func (c *statusCommand) Run(ctx context.Context, args []string) error {
	if c.out == nil {
		c.out = os.Stdout
	}
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	path := fs.String("config", "", "configuration file (JSON) whose relay.log names the cluster")
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	timeout := fs.Duration("timeout", 20*time.Second, "give up after this long")
	fs.Usage = func() { c.Usage(fs) }
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if *path == "" && len(pos) == 1 {
		*path = pos[0]
	} else if *path == "" || len(pos) > 0 {
		fs.Usage()
		return usagef("status needs one configuration file: --config FILE")
	}
	cfg, err := relay.LoadConfig(*path)
	if err != nil {
		return usagef("%v", err)
	}
	if !cfg.Relay.Log.Cluster() {
		return usagef(`%s runs the relay on its embedded log: status reads a cluster log (relay.log "kind": "jetstream"); use relay targets or walinspect`, *path)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	rep, err := jslog.Inspect(ctx, cfg.Relay.Log.JetStream)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	if *asJSON {
		return json.NewEncoder(c.out).Encode(rep)
	}
	leader := rep.Leader
	if leader == "" {
		leader = "none (no quorum)"
	}
	fmt.Fprintf(c.out, "Stream %s: %d messages, %d bytes, sequences %d-%d, %d replicas, leader %s\n",
		rep.Stream, rep.Messages, rep.Bytes, rep.FirstSeq, rep.LastSeq, rep.Replicas, leader)
	if len(rep.Offline) > 0 {
		fmt.Fprintf(c.out, "Offline replicas: %s\n", strings.Join(rep.Offline, ", "))
	}
	fmt.Fprintf(c.out, "Relays sharing the lanes: %s\n", orNone(strings.Join(rep.Members, ", ")))
	for _, w := range rep.Warnings {
		fmt.Fprintf(c.out, "Warning: %s\n", w)
	}
	fmt.Fprintln(c.out)
	if len(rep.Lanes) == 0 {
		fmt.Fprintln(c.out, "No target has a cursor in the cluster log yet.")
		return nil
	}
	for _, l := range rep.Lanes {
		if l.Lanes > 1 {
			// Counting one lane would mean fetching every message body
			// (the index headers hold no keys): say what the figure is.
			fmt.Fprintln(c.out, "LAG of a lane of several is its whole target's: an upper bound.")
			break
		}
	}
	w := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "TARGET\tLANE\tCURSOR\tLAG\tOWNER\tQUARANTINED")
	for _, l := range rep.Lanes {
		fmt.Fprintf(w, "%s\t%d/%d\t%d\t%d\t%s\t%d\n", l.Target, l.Lane, l.Lanes, l.Cursor, l.Lag, orNone(l.Owner), l.Quarantined)
	}
	return w.Flush()
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

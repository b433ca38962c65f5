package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bucketrelay/bucketrelay/relay"
	"github.com/bucketrelay/bucketrelay/rules"
)

// quarantineCommand lists, shows, re-drives and drops the events a
// target's quarantine holds.
type quarantineCommand struct {
	out, errOut io.Writer
}

// Usage prints the command's help.
func (c *quarantineCommand) Usage(fs *flag.FlagSet) {
	fmt.Fprint(fs.Output(), `Usage:
  relay quarantine list  ARN [--json]
  relay quarantine show  ARN --seq N
  relay quarantine retry ARN (--seq A-B | --all)
  relay quarantine drop  ARN (--seq A-B | --all) [--out FILE]

A target's quarantine holds the events it rejected for good (or that
failed relay.maxAttempts times), each with the reason, the attempts made
and its first and last failure. list shows them; show prints one with its
record; retry puts them back into the target's delivery, in log order:
each leaves the quarantine once delivered, or stays with its new reason
if it fails again. drop removes them for good after saving them, records
included, as JSON lines to --out (default: standard output).

--seq takes a sequence N or a range A-B, as list shows them.

`)
	printClientUsage(fs)
}

// Run runs a quarantine subcommand.
func (c *quarantineCommand) Run(ctx context.Context, args []string) error {
	if c.out == nil {
		c.out = os.Stdout
	}
	if c.errOut == nil {
		c.errOut = os.Stderr
	}
	fs := flag.NewFlagSet("quarantine", flag.ContinueOnError)
	cl := clientFlags(fs)
	seq := fs.String("seq", "", "sequence N or range A-B")
	all := fs.Bool("all", false, "every entry of the quarantine")
	asJSON := fs.Bool("json", false, "list: print JSON lines")
	out := fs.String("out", "", "drop: file to save the dropped events to (JSON lines)")
	fs.Usage = func() { c.Usage(fs) }
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		fs.Usage()
		return usagef("quarantine needs a subcommand (list, show, retry, drop) and an ARN")
	}
	sub, arn := pos[0], pos[1]
	if _, err := rules.ParseARN(arn); err != nil {
		return usagef("%v", err)
	}
	base := "/v1/targets/" + url.PathEscape(arn) + "/quarantine"
	var sel relay.SeqRange
	if *seq != "" {
		if sel, err = relay.ParseSeqRange(*seq); err != nil {
			return usagef("--seq: %s", strings.TrimPrefix(err.Error(), "relay: "))
		}
	}
	switch sub {
	case "list", "ls":
		if *seq != "" || *all || *out != "" {
			return usagef("quarantine list takes no --seq, --all or --out")
		}
		return c.list(ctx, cl, base, *asJSON)
	case "show":
		if *seq == "" || sel.From != sel.To || *all {
			return usagef("quarantine show needs --seq N (one sequence)")
		}
		b, err := cl.do(ctx, http.MethodGet, fmt.Sprintf("%s/%d", base, sel.From), nil)
		if err != nil {
			return err
		}
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, b, "", "  "); err != nil {
			return fmt.Errorf("the relay's answer: %v", err)
		}
		_, err = pretty.WriteTo(c.out)
		return err
	case "retry", "drop":
		if (*seq == "") == !*all {
			return usagef("quarantine %s needs --seq A-B or --all (one of them)", sub)
		}
		if sub == "retry" && *out != "" {
			return usagef("--out is for drop")
		}
		query := "?all=1"
		if !*all {
			query = "?seq=" + url.QueryEscape(sel.String())
		}
		if sub == "retry" {
			return c.retry(ctx, cl, base, query, arn)
		}
		return c.drop(ctx, cl, base, query, arn, sel, *all, *out)
	}
	return usagef("unknown quarantine subcommand %q (list, show, retry, drop)", sub)
}

func (c *quarantineCommand) list(ctx context.Context, cl *opClient, base string, asJSON bool) error {
	var doc struct{ Entries []relay.QuarantinedEvent }
	if err := cl.getJSON(ctx, base, &doc); err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(c.out)
		for _, e := range doc.Entries {
			enc.Encode(e)
		}
		return nil
	}
	if len(doc.Entries) == 0 {
		fmt.Fprintln(c.out, "The quarantine is empty.")
		return nil
	}
	w := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "SEQ\tKEY\tEVENT\tATTEMPTS\tFIRST FAILURE\tLAST FAILURE\tREASON")
	for _, e := range doc.Entries {
		fmt.Fprintf(w, "%d\t%s\t%s\t%d\t%s\t%s\t%s\n", e.Seq, e.Key, e.EventName, e.Attempts,
			e.FirstFailure.Format(time.RFC3339), e.LastFailure.Format(time.RFC3339), e.Reason)
	}
	return w.Flush()
}

func (c *quarantineCommand) retry(ctx context.Context, cl *opClient, base, query, arn string) error {
	b, err := cl.do(ctx, http.MethodPost, base+"/retry"+query, nil)
	if err != nil {
		return err
	}
	var res struct {
		Redriving int
		Seqs      []uint64
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "Re-driving %d event(s) of %s (seq %s): each leaves the quarantine once delivered.\n", res.Redriving, arn, seqList(res.Seqs))
	return nil
}

// seqList shortens sorted sequences to ranges: 1-3,7.
func seqList(seqs []uint64) string {
	var b strings.Builder
	for i := 0; i < len(seqs); {
		j := i
		for j+1 < len(seqs) && seqs[j+1] == seqs[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		if i == j {
			fmt.Fprintf(&b, "%d", seqs[i])
		} else {
			fmt.Fprintf(&b, "%d-%d", seqs[i], seqs[j])
		}
		i = j + 1
	}
	return b.String()
}

// drop saves the selected entries, records included, before asking the
// relay to remove them, then adds any the relay removed that were not
// saved yet (quarantined in between), so nothing is removed unsaved.
func (c *quarantineCommand) drop(ctx context.Context, cl *opClient, base, query, arn string, sel relay.SeqRange, all bool, out string) error {
	var doc struct{ Entries []json.RawMessage }
	if err := cl.getJSON(ctx, base+"?records=1", &doc); err != nil {
		return err
	}
	var w io.Writer = c.out
	var f *os.File
	if out != "" {
		var err error
		if f, err = os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriter(w)
	saved := map[uint64]bool{}
	for _, raw := range doc.Entries {
		var e struct{ Seq uint64 }
		if json.Unmarshal(raw, &e) != nil || !(all || e.Seq >= sel.From && e.Seq <= sel.To) {
			continue
		}
		saved[e.Seq] = true
		bw.Write(withTarget(raw, arn))
		bw.WriteByte('\n')
	}
	flush := func() error {
		if err := bw.Flush(); err != nil {
			return err
		}
		if f != nil {
			return f.Sync()
		}
		return nil
	}
	if err := flush(); err != nil {
		return fmt.Errorf("saving the events before dropping them: %w", err)
	}
	b, err := cl.do(ctx, http.MethodPost, base+"/drop"+query, nil)
	if err != nil {
		return err
	}
	n := 0
	for _, ln := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var e struct{ Seq uint64 }
		if ln == "" || json.Unmarshal([]byte(ln), &e) != nil {
			continue
		}
		n++
		if !saved[e.Seq] {
			bw.WriteString(ln)
			bw.WriteByte('\n')
		}
	}
	if err := flush(); err != nil {
		return fmt.Errorf("saving the dropped events: %w", err)
	}
	where := "standard output"
	if out != "" {
		where = out
	}
	fmt.Fprintf(c.errOut, "Dropped %d event(s) from the quarantine of %s; saved to %s.\n", n, arn, where)
	return nil
}

// withTarget adds "target" to an entry listed without it, so saved lines
// are the same as those drop answers.
func withTarget(raw json.RawMessage, arn string) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return raw
	}
	if _, ok := m["target"]; ok {
		return raw
	}
	t, _ := json.Marshal(arn)
	m["target"] = t
	b, err := json.Marshal(m)
	if err != nil {
		return raw
	}
	return b
}

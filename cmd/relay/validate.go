package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/bucketrelay/bucketrelay/relay"
)

// validateCommand checks a configuration file without starting anything.
type validateCommand struct {
	out io.Writer
}

// Usage prints the command's help.
func (c *validateCommand) Usage(fs *flag.FlagSet) {
	fmt.Fprint(fs.Output(), `Usage: relay validate --config FILE   (or: relay validate FILE)

Checks a configuration file as serve would read it, without opening the
data directory or connecting to any target. Prints the targets' ARNs and
the bucket rules and exits 0, or prints the error, located by its field
path or line and column, and exits 2.

Flags:
`)
	fs.PrintDefaults()
}

// Run validates the file.
func (c *validateCommand) Run(_ context.Context, args []string) error {
	if c.out == nil {
		c.out = os.Stdout
	}
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	path := fs.String("config", "", "configuration file (JSON)")
	fs.Usage = func() { c.Usage(fs) }
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	switch {
	case *path == "" && len(pos) == 1:
		*path = pos[0]
	case *path == "" || len(pos) > 0:
		fs.Usage()
		return usagef("validate needs one configuration file: --config FILE")
	}
	cfg, err := relay.LoadConfig(*path)
	if err != nil {
		return usagef("%v", err)
	}
	fmt.Fprintf(c.out, "%s is valid.\n", *path)
	enabled := cfg.EnabledARNs()
	fmt.Fprintf(c.out, "SQS ARNs: %s\n", strings.Join(enabled, " "))
	if len(enabled) == 0 {
		fmt.Fprintln(c.out, "warning: no target is enabled; events are accepted and dropped")
	}
	for _, t := range cfg.Targets {
		if !t.Enabled {
			fmt.Fprintf(c.out, "disabled: %s\n", t.ARN)
		}
	}
	buckets := make([]string, 0, len(cfg.Buckets))
	for b := range cfg.Buckets {
		buckets = append(buckets, b)
	}
	sort.Strings(buckets)
	if len(buckets) == 0 {
		fmt.Fprintln(c.out, "Rules: none in the file (add them with `relay events add`)")
		return nil
	}
	fmt.Fprintln(c.out, "Rules:")
	var tb strings.Builder
	w := tabwriter.NewWriter(&tb, 0, 0, 3, ' ', 0)
	for _, b := range buckets {
		for _, r := range cfg.Buckets[b] {
			names := make([]string, len(r.Events))
			for i, e := range r.Events {
				names[i] = string(e)
			}
			fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", b, r.ARN, strings.Join(names, ","), r.Filter())
		}
	}
	w.Flush()
	for _, ln := range strings.SplitAfter(tb.String(), "\n") {
		fmt.Fprint(c.out, strings.TrimRight(ln, " \n"))
		if strings.HasSuffix(ln, "\n") {
			fmt.Fprintln(c.out)
		}
	}
	return nil
}

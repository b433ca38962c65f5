package main

import (
	"bufio"
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
	"time"

	"github.com/bucketrelay/bucketrelay/internal/human"

	"github.com/bucketrelay/bucketrelay/event"
)

// watchCommand prints a bucket's events as the relay logs them, like
// `mc watch`.
type watchCommand struct {
	out io.Writer
}

// Usage prints the command's help.
func (c *watchCommand) Usage(fs *flag.FlagSet) {
	fmt.Fprint(fs.Output(), `Usage:
  relay watch BUCKET [--events put,delete,get] [--prefix P] [--suffix S] [--json]

Prints the events the relay accepts for BUCKET as they are logged, one a
line: time, object size, event name, bucket/key. Live only: nothing from
before the watch, nothing while it is away (targets are the durable way).
A watcher that cannot keep up is dropped by the relay; the command then
exits 1 saying so. Ctrl-C ends it (exit 0).

--events takes the short names put, delete, get or full event names and
wildcards (default put,delete,get). --json prints each record as JSON, one
a line. BUCKET may be written ALIAS/BUCKET as with mc.

`)
	printClientUsage(fs)
}

// Run watches until ctx ends or the relay ends the stream.
func (c *watchCommand) Run(ctx context.Context, args []string) error {
	if c.out == nil {
		c.out = os.Stdout
	}
	fs := flag.NewFlagSet("watch", flag.ContinueOnError)
	client := clientFlags(fs)
	events := fs.String("events", "put,delete,get", "comma-separated events: put, delete, get or full names")
	prefix := fs.String("prefix", "", "object key prefix filter")
	suffix := fs.String("suffix", "", "object key suffix filter")
	asJSON := fs.Bool("json", false, "print each record as JSON")
	fs.Usage = func() { c.Usage(fs) }
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return usagef("watch needs one bucket")
	}
	if _, err := parseEvents(*events); err != nil {
		return err
	}
	if err := client.resolve(); err != nil {
		return err
	}
	base := client.base
	q := url.Values{"events": {*events}}
	if *prefix != "" {
		q.Set("prefix", *prefix)
	}
	if *suffix != "" {
		q.Set("suffix", *suffix)
	}
	u := strings.TrimRight(base, "/") + "/v1/buckets/" + url.PathEscape(bucketName(pos[0])) + "/events?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return usagef("--server %s: %v", base, err)
	}
	req.Header.Set("Accept", "application/x-ndjson")
	if client.token != "" {
		req.Header.Set("Authorization", "Bearer "+client.token)
	}
	// No client timeout: the stream lasts; the relay's keep-alives show it
	// is there.
	resp, err := client.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("cannot reach the relay at %s: %v", base, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var e struct{ Error string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return fmt.Errorf("the relay answered %d: %s", resp.StatusCode, strings.TrimPrefix(e.Error, "relay: "))
		}
		return fmt.Errorf("the relay answered %s", resp.Status)
	}
	out := bufio.NewWriter(c.out)
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(strings.TrimSpace(string(line))) > 0 {
			if perr := c.print(out, line, *asJSON); perr != nil {
				return perr
			}
		}
		// Flush once nothing more is waiting, so a burst is one write.
		if br.Buffered() == 0 {
			if ferr := out.Flush(); ferr != nil {
				return ferr
			}
		}
		if err != nil {
			out.Flush()
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, io.EOF) {
				return errors.New("the relay ended the watch")
			}
			return fmt.Errorf("reading the watch: %v", err)
		}
	}
}

// print writes one line of the stream: {"Records":[…]}, or the relay's
// {"error":…} when it drops the watcher.
func (c *watchCommand) print(out io.Writer, line []byte, asJSON bool) error {
	var m struct {
		Records []json.RawMessage
		Error   string `json:"error"`
	}
	if err := json.Unmarshal(line, &m); err != nil {
		return fmt.Errorf("the relay sent a line that is not JSON: %v", err)
	}
	if m.Error != "" {
		return errors.New(strings.TrimPrefix(m.Error, "relay: "))
	}
	for _, raw := range m.Records {
		if asJSON {
			out.Write(raw)
			io.WriteString(out, "\n")
			continue
		}
		var rec event.Record
		if err := json.Unmarshal(raw, &rec); err != nil {
			return fmt.Errorf("the relay sent a record that does not parse: %v", err)
		}
		fmt.Fprintln(out, formatWatchLine(&rec))
	}
	return nil
}

// formatWatchLine prints a record as `mc watch` does:
// [2026-11-25T10:00:00Z] 1.0KiB s3:ObjectCreated:Put images/a.jpg
func formatWatchLine(rec *event.Record) string {
	ts := rec.EventTime
	if t, err := event.ParseTime(rec.EventTime); err == nil {
		ts = t.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("[%s] %s %s %s/%s", ts, human.Bytes(rec.S3.Object.Size), rec.EventName, rec.S3.Bucket.Name, rec.ObjectKey())
}

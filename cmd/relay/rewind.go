package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/bucketrelay/bucketrelay/relay"
	"github.com/bucketrelay/bucketrelay/rules"
)

// rewind runs `relay targets rewind ARN --to-time T | --to-seq N`: the
// target's cursor goes back and the retained events from there on are
// delivered again, like kafka-consumer-groups --reset-offsets
// --to-datetime.
func (c *targetsCommand) rewind(ctx context.Context, cl *opClient, pos []string, toTime string, toSeq uint64, fromStart, asJSON bool) error {
	if len(pos) != 2 {
		return usagef("targets rewind needs one ARN and --to-time T or --to-seq N")
	}
	if _, err := rules.ParseARN(pos[1]); err != nil {
		return usagef("%v", err)
	}
	req := map[string]any{}
	switch {
	case fromStart && (toTime != "" || toSeq != 0):
		return usagef("give one of --from-start, --to-time and --to-seq")
	case fromStart:
		req["fromStart"] = true
	case toTime != "" && toSeq != 0:
		return usagef("give --to-time or --to-seq, not both")
	case toTime == "" && toSeq == 0:
		return usagef("targets rewind needs --to-time T (RFC 3339), --to-seq N or --from-start")
	case toSeq != 0:
		req["toSeq"] = toSeq
	default:
		t, err := time.Parse(time.RFC3339Nano, toTime)
		if err != nil {
			return usagef("--to-time %q is not an RFC 3339 time such as 2026-12-01T10:00:00Z", toTime)
		}
		req["toTime"] = t.Format(time.RFC3339Nano)
	}
	body, _ := json.Marshal(req)
	b, err := cl.do(ctx, http.MethodPost, "/v1/targets/"+url.PathEscape(pos[1])+"/rewind", body)
	if err != nil {
		return err
	}
	var res relay.RewindResult
	if err := json.Unmarshal(b, &res); err != nil {
		return fmt.Errorf("the relay's answer to the rewind: %v", err)
	}
	if asJSON {
		enc := json.NewEncoder(c.out)
		enc.SetEscapeHTML(false)
		return enc.Encode(res)
	}
	if res.FromStart {
		fmt.Fprintf(c.out, "Rewound %s to the oldest retained event: %d event(s) its rules route to will be delivered.\n", res.Target, res.Redeliver)
		return nil
	}
	if res.ToSeq == res.FromSeq {
		fmt.Fprintf(c.out, "%s is already at sequence %d: nothing to deliver again.\n", res.Target, res.ToSeq)
		return nil
	}
	at := ""
	if res.ToTime != nil {
		at = " (the first event logged at or after " + res.ToTime.Format(time.RFC3339) + ")"
	}
	fmt.Fprintf(c.out, "Rewound %s from sequence %d to %d%s: %d event(s) will be delivered again.\n",
		res.Target, res.FromSeq, res.ToSeq, at, res.Redeliver)
	return nil
}

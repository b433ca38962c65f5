package jslog

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Report is what Inspect reads of a cluster log.
type Report struct {
	// Stream is the stream's name; Replicas its replication factor.
	Stream   string `json:"stream"`
	Replicas int    `json:"replicas"`
	// Leader is the server leading the stream ("" without quorum);
	// Offline the replicas the leader sees as offline.
	Leader  string   `json:"leader"`
	Offline []string `json:"offline"`
	// Messages, Bytes, FirstSeq and LastSeq describe what the stream
	// holds, in stream sequences (group commits).
	Messages uint64 `json:"messages"`
	Bytes    uint64 `json:"bytes"`
	FirstSeq uint64 `json:"firstSeq"`
	LastSeq  uint64 `json:"lastSeq"`
	// Records counts the records of the messages Inspect read: those
	// from the oldest cursor's message on (the backlog).
	Records int64 `json:"records"`
	// Members are the relay processes spreading leases now.
	Members []string `json:"members"`
	// Warnings are what the stream cannot promise (see Log.Warnings).
	Warnings []string `json:"warnings"`
	// Lanes has one row per target, or per lane of a target with lanes.
	Lanes []LaneReport `json:"lanes"`
}

// LaneReport is one target or lane of a Report.
type LaneReport struct {
	// ID is the cursor's ID: the target's ARN, or a LaneID.
	ID     string `json:"id"`
	Target string `json:"target"`
	Lane   int    `json:"lane"`
	Lanes  int    `json:"lanes"`
	// Cursor is the next sequence the lane has to deliver.
	Cursor uint64 `json:"cursor"`
	// Lag counts the target's records at or after the cursor's message:
	// exact for a target with one lane (up to a part of the cursor's own
	// message), an upper bound for one lane of several, whose keys only
	// the message bodies tell.
	Lag int64 `json:"lag"`
	// Owner is the relay process holding the lane's lease, "" if none.
	Owner string `json:"owner"`
	// Quarantined counts the lane's quarantine entries.
	Quarantined int `json:"quarantined"`
}

// Inspect reads a cluster log read-only through the JetStream API: the
// stream's state, every cursor with its lag, the lease owners and the
// quarantine counts. It creates nothing: a stream or bucket that does not
// exist is an error (the stream) or empty (a bucket).
func Inspect(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	nopts, err := cfg.natsOptions("bucketrelay inspect")
	if err != nil {
		return nil, err
	}
	nopts = append(nopts, nats.MaxReconnects(0))
	nc, err := nats.Connect(strings.Join(cfg.Servers, ","), nopts...)
	if err != nil {
		return nil, fmt.Errorf("jslog: connecting to %s: %w", redact(cfg.Servers), err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jslog: %w", err)
	}
	// retry: a server may answer "temporarily unavailable" for a moment.
	stream, err := retry(ctx, func(ctx context.Context) (jetstream.Stream, error) { return js.Stream(ctx, cfg.Stream) })
	if err != nil {
		return nil, fmt.Errorf("jslog: stream %s: %w", cfg.Stream, err)
	}
	info, err := retry(ctx, func(ctx context.Context) (*jetstream.StreamInfo, error) { return stream.Info(ctx) })
	if err != nil {
		return nil, fmt.Errorf("jslog: stream %s: %w", cfg.Stream, err)
	}
	rep := &Report{
		Stream: cfg.Stream, Replicas: info.Config.Replicas,
		Messages: info.State.Msgs, Bytes: info.State.Bytes, FirstSeq: info.State.FirstSeq, LastSeq: info.State.LastSeq,
		Warnings: check(info, cfg, cfg.Stream+".records", false), Members: []string{}, Offline: []string{},
	}
	if rep.Warnings == nil {
		rep.Warnings = []string{}
	}
	if ci := info.Cluster; ci != nil {
		rep.Leader = ci.Leader
		for _, p := range ci.Replicas {
			if p.Offline {
				rep.Offline = append(rep.Offline, p.Name)
			}
		}
	}
	cursors, err := readBucket(ctx, js, cfg.Stream+"_cursors")
	if err != nil {
		return nil, err
	}
	leases, err := readBucket(ctx, js, cfg.Stream+"_leases")
	if err != nil {
		return nil, err
	}
	quar, err := readBucket(ctx, js, cfg.Stream+"_quarantine")
	if err != nil {
		return nil, err
	}
	qcount := map[string]int{}
	for k := range quar {
		if i := strings.IndexByte(k, '.'); i > 0 {
			qcount[k[:i]]++
		}
	}
	for k, v := range leases {
		if strings.HasPrefix(k, "m.") {
			rep.Members = append(rep.Members, string(v))
		}
	}
	sort.Strings(rep.Members)
	minStream := uint64(0)
	for k, v := range cursors {
		id, ok := targetOf(k)
		if !ok {
			continue
		}
		c, err := strconv.ParseUint(string(v), 10, 64)
		if err != nil {
			continue
		}
		t, lane, lanes := parseLane(id)
		rep.Lanes = append(rep.Lanes, LaneReport{ID: id, Target: t, Lane: lane, Lanes: lanes, Cursor: c, Owner: string(leases[k]), Quarantined: qcount[k]})
		if s, _ := SplitSeq(c); minStream == 0 || s < minStream {
			minStream = s
		}
	}
	sort.Slice(rep.Lanes, func(i, j int) bool {
		a, b := rep.Lanes[i], rep.Lanes[j]
		if a.Target != b.Target {
			return a.Target < b.Target
		}
		return a.Lane < b.Lane
	})
	if err := rep.count(ctx, stream, max(minStream, info.State.FirstSeq)); err != nil {
		return nil, err
	}
	return rep, nil
}

// readBucket returns a bucket's keys and values; empty if the bucket does
// not exist.
func readBucket(ctx context.Context, js jetstream.JetStream, name string) (map[string][]byte, error) {
	out := map[string][]byte{}
	kv, err := retry(ctx, func(ctx context.Context) (jetstream.KeyValue, error) { return js.KeyValue(ctx, name) })
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("jslog: bucket %s: %w", name, err)
	}
	w, err := retry(ctx, func(context.Context) (jetstream.KeyWatcher, error) {
		return kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	})
	if err != nil {
		return nil, fmt.Errorf("jslog: bucket %s: %w", name, err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok || e == nil {
				return out, nil
			}
			out[e.Key()] = e.Value()
		case <-ctx.Done():
			return nil, fmt.Errorf("jslog: reading bucket %s: %w", name, ctx.Err())
		}
	}
}

// count reads the headers of the messages from stream sequence from on
// and sets each lane's lag and the record count of those messages.
func (rep *Report) count(ctx context.Context, stream jetstream.Stream, from uint64) error {
	if rep.Messages == 0 || from > rep.LastSeq {
		return nil
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		HeadersOnly: true, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from,
	})
	if err != nil {
		return fmt.Errorf("jslog: reading stream %s: %w", rep.Stream, err)
	}
	// Only messages at or after a lane's cursor message count for it.
	for seq := from; seq <= rep.LastSeq; {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return fmt.Errorf("jslog: reading stream %s: %w", rep.Stream, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			seq = md.Sequence.Stream + 1
			count, routed, ok := parseIndexHeaders(m.Headers().Get(hdrCount), m.Headers().Get(hdrTargets))
			if !ok {
				continue
			}
			rep.Records += int64(count)
			for i := range rep.Lanes {
				l := &rep.Lanes[i]
				if s, _ := SplitSeq(l.Cursor); md.Sequence.Stream >= s {
					l.Lag += int64(routed[l.Target])
				}
			}
			if md.NumPending == 0 {
				seq = rep.LastSeq + 1
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("jslog: reading stream %s: %w", rep.Stream, err)
		}
		if n == 0 {
			break
		}
	}
	return nil
}

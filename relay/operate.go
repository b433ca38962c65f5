package relay

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/rules"
	"github.com/bucketrelay/bucketrelay/wal"
)

// Errors of the operating calls (status, pause, quarantine).
var (
	// ErrNoTarget is returned for an ARN that is not an enabled target
	// (nor, for the quarantine, one with a quarantine in the log).
	ErrNoTarget = errors.New("relay: no such target")
	// ErrBadRange is returned for a sequence selection that does not
	// parse.
	ErrBadRange = errors.New("relay: bad sequence range")
	// ErrNothingSelected is returned when a selection matches no
	// quarantine entry.
	ErrNothingSelected = errors.New("relay: nothing selected")
)

// TargetStatus is one target's live status, as GET /v1/targets and
// `relay targets` show it.
type TargetStatus struct {
	ARN  string `json:"arn"`
	Kind string `json:"kind"`
	// Source is where the target's configuration comes from: file, api
	// (added at runtime), override (the file's entry, updated at runtime)
	// or options (the embedding program's).
	Source string `json:"source,omitempty"`
	// State is up, down, backing off or paused.
	State string `json:"state"`
	// Cursor is the next sequence the target has to deliver.
	Cursor uint64 `json:"cursor"`
	// Lag counts events routed to the target and not yet delivered.
	Lag int64 `json:"lag"`
	// LagCounting reports that the target (a lane just taken over on the
	// cluster log) is still reading its backlog to count it while it
	// delivers: Lag is the part counted so far, at least 1.
	LagCounting bool `json:"lagCounting,omitempty"`
	// LagBytes is the size of those events as logged (uncompressed
	// record bytes, what relay.queueLimitBytes bounds).
	LagBytes int64 `json:"lagBytes"`
	// OldestPending is when the oldest pending event was logged; nil when
	// nothing is pending. OldestPendingAge is its age in seconds.
	OldestPending    *time.Time `json:"oldestPending,omitempty"`
	OldestPendingAge float64    `json:"oldestPendingAge"`
	LastError        string     `json:"lastError,omitempty"`
	LastErrorTime    *time.Time `json:"lastErrorTime,omitempty"`
	NextRetry        *time.Time `json:"nextRetry,omitempty"`
	// Delivered, Retried, Quarantined and Redriven count since start
	// (delivery.Stats).
	Delivered   uint64 `json:"delivered"`
	Retried     uint64 `json:"retried"`
	Quarantined uint64 `json:"quarantined"`
	Redriven    uint64 `json:"redriven"`
	// InQuarantine is how many events the target's quarantine holds now.
	InQuarantine int `json:"inQuarantine"`
	// Buckets are the buckets with a rule routing to the target.
	Buckets []string `json:"buckets"`
}

// TargetStatus returns every enabled target's status, sorted by ARN.
func (r *Relay) TargetStatus() []TargetStatus {
	buckets := map[string][]string{}
	for b, rs := range r.rules.Buckets() {
		for _, a := range rules.ARNs(rs) {
			buckets[a] = append(buckets[a], b)
		}
	}
	now := time.Now()
	var out []TargetStatus
	for _, s := range r.eng.Stats() {
		t := TargetStatus{
			ARN: s.ID, State: s.State, Cursor: s.Cursor, Lag: max(s.Pending, 0), LagCounting: s.Counting,
			LastError: s.LastError, Delivered: s.Delivered, Retried: s.Retried,
			Quarantined: s.Quarantined, Redriven: s.Redriven,
			InQuarantine: r.log.QuarantineCount(s.ID),
			Source:       r.source(s.ID),
			Buckets:      buckets[baseTarget(s.ID)], // a lane's (cluster log) are its target's
		}
		if a, err := rules.ParseARN(baseTarget(s.ID)); err == nil {
			t.Kind = a.Kind
		}
		t.LagBytes = r.lagBytes(s.ID, t.Lag)
		if t.Buckets == nil {
			t.Buckets = []string{}
		}
		sort.Strings(t.Buckets)
		if !s.LastErrorTime.IsZero() {
			v := s.LastErrorTime.UTC()
			t.LastErrorTime = &v
		}
		if !s.NextRetry.IsZero() {
			v := s.NextRetry.UTC()
			t.NextRetry = &v
		}
		if t.Lag > 0 {
			if at, ok := r.eng.OldestPending(s.ID); ok {
				v := at.UTC()
				t.OldestPending = &v
				t.OldestPendingAge = max(0, now.Sub(at).Seconds())
			}
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ARN < out[j].ARN })
	return out
}

// Pausing.

const pausedFile = "paused.json"

// pauseState is the set of paused targets, kept in the data directory so
// a restart keeps them paused.
type pauseState struct {
	mu     sync.Mutex
	paused []string // sorted
}

// loadPaused reads the paused targets and pauses the enabled ones. Called
// by Open before delivery starts.
func (r *Relay) loadPaused() error {
	b, err := os.ReadFile(r.cfg.DataPath(pausedFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	var doc struct {
		Paused []string `json:"paused"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("relay: %s: %w", r.cfg.DataPath(pausedFile), err)
	}
	sort.Strings(doc.Paused)
	r.pause.paused = doc.Paused
	for _, arn := range doc.Paused {
		if !r.isEnabled(arn) {
			r.lg.Warn("a paused target is not enabled; it stays paused when enabled again", "target", arn)
			continue
		}
		if err := r.eng.Pause(arn); err != nil {
			return err
		}
		r.lg.Info("target is paused (paused.json); resume it with `relay targets resume`", "target", arn)
	}
	return nil
}

// Pause holds delivery to the target arn: events are still logged for it
// and are delivered after Resume. The pause is kept in the data directory
// and survives a restart.
func (r *Relay) Pause(arn string) error { return r.setPaused(arn, true) }

// Resume ends a Pause; the events held are delivered in order.
func (r *Relay) Resume(arn string) error { return r.setPaused(arn, false) }

// keepGonePause records in paused.json a target the engine paused because
// its destination answered that it is gone (410), so a restart keeps it
// paused instead of trying the endpoint again; `relay targets resume`
// ends both. On a cluster log the pause stays the process's own (a file
// in one data directory would not follow the target's lanes).
func (r *Relay) keepGonePause(arn string, cause error) {
	if r.cluster != nil {
		return
	}
	r.pause.mu.Lock()
	err := r.savePausedLocked(arn, true)
	r.pause.mu.Unlock()
	if err != nil {
		r.lg.Error("the target is paused (its destination is gone) but the pause could not be kept for a restart", "target", arn, "err", err)
		return
	}
	r.lg.Info("the target's pause is kept in paused.json until `relay targets resume`", "target", arn, "cause", cause)
}

func (r *Relay) setPaused(arn string, paused bool) error {
	if !r.isEnabled(arn) {
		return r.noTarget(arn)
	}
	if r.cluster != nil {
		// A pause kept in one process's data directory would not follow
		// the target's lanes to another process.
		return fmt.Errorf("%w: pausing a target", ErrNotOnCluster)
	}
	r.pause.mu.Lock()
	defer r.pause.mu.Unlock()
	if err := r.savePausedLocked(arn, paused); err != nil {
		return err
	}
	if paused {
		return r.eng.Pause(arn)
	}
	return r.eng.Resume(arn)
}

// savePausedLocked adds arn to paused.json or removes it; r.pause.mu is
// held.
func (r *Relay) savePausedLocked(arn string, paused bool) error {
	next := slices.Clone(r.pause.paused)
	i, found := slices.BinarySearch(next, arn)
	switch {
	case paused && !found:
		next = slices.Insert(next, i, arn)
	case !paused && found:
		next = slices.Delete(next, i, i+1)
	}
	if !slices.Equal(next, r.pause.paused) {
		b, _ := json.MarshalIndent(map[string][]string{"paused": next}, "", "  ")
		if err := writeFileAtomic(r.cfg.DataPath(pausedFile), b); err != nil {
			return fmt.Errorf("relay: saving paused targets: %w", err)
		}
		r.pause.paused = next
	}
	return nil
}

func (r *Relay) noTarget(arn string) error {
	return fmt.Errorf("%w %s (enabled targets: %s)", ErrNoTarget, arn, strings.Join(r.ARNs(), ", "))
}

// writeFileAtomic replaces path with data durably: a temporary file is
// written, synced and renamed over it, and the directory synced.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// The quarantine.

// SeqRange selects quarantine entries: All, or the sequences From to To
// inclusive.
type SeqRange struct {
	From, To uint64
	All      bool
}

// ParseSeqRange parses "N" or "A-B" (A <= B).
func ParseSeqRange(s string) (SeqRange, error) {
	bad := fmt.Errorf("%w %q: want N or A-B with A <= B (sequences as listed by `relay quarantine list`)", ErrBadRange, s)
	a, b, isRange := strings.Cut(strings.TrimSpace(s), "-")
	from, err := strconv.ParseUint(a, 10, 64)
	if err != nil || from == 0 {
		return SeqRange{}, bad
	}
	to := from
	if isRange {
		if to, err = strconv.ParseUint(b, 10, 64); err != nil || to < from {
			return SeqRange{}, bad
		}
	}
	return SeqRange{From: from, To: to}, nil
}

// String returns the range as ParseSeqRange reads it, or "all".
func (s SeqRange) String() string {
	switch {
	case s.All:
		return "all"
	case s.From == s.To:
		return strconv.FormatUint(s.From, 10)
	}
	return fmt.Sprintf("%d-%d", s.From, s.To)
}

func (s SeqRange) has(seq uint64) bool { return s.All || seq >= s.From && seq <= s.To }

// quarantineTarget checks that arn is an enabled target or has a
// quarantine in the log.
func (r *Relay) quarantineTarget(arn string) error {
	if r.isEnabled(arn) || slices.Contains(r.log.QuarantineTargets(), arn) {
		return nil
	}
	return r.noTarget(arn)
}

// Quarantine returns arn's quarantine, oldest sequence first.
func (r *Relay) Quarantine(arn string) ([]wal.QuarantineItem, error) {
	if err := r.quarantineTarget(arn); err != nil {
		return nil, err
	}
	return r.log.QuarantineItems(arn)
}

// QuarantineEntry returns arn's quarantine entry seq.
func (r *Relay) QuarantineEntry(arn string, seq uint64) (wal.QuarantineItem, error) {
	if err := r.quarantineTarget(arn); err != nil {
		return wal.QuarantineItem{}, err
	}
	q, ok, err := r.log.QuarantineItemAt(arn, seq)
	if err == nil && !ok {
		err = fmt.Errorf("%w: the quarantine of %s has no event %d", ErrNothingSelected, arn, seq)
	}
	return q, err
}

// selectQuarantine returns arn's entries in sel, or ErrNothingSelected.
func (r *Relay) selectQuarantine(arn string, sel SeqRange) ([]wal.QuarantineItem, error) {
	all, err := r.Quarantine(arn)
	if err != nil {
		return nil, err
	}
	var out []wal.QuarantineItem
	for _, q := range all {
		if sel.has(q.Seq) {
			out = append(out, q)
		}
	}
	if len(out) == 0 {
		if len(all) == 0 {
			return nil, fmt.Errorf("%w: the quarantine of %s is empty", ErrNothingSelected, arn)
		}
		return nil, fmt.Errorf("%w: the quarantine of %s has no event in %s (it holds %d-%d)", ErrNothingSelected, arn, sel, all[0].Seq, all[len(all)-1].Seq)
	}
	return out, nil
}

// RetryQuarantine re-drives arn's quarantined events in sel: they are put
// back into its delivery, in log order, and leave the quarantine once
// delivered (delivery.Engine.Redrive). It returns the entries queued;
// entries already being re-driven are not queued twice.
func (r *Relay) RetryQuarantine(arn string, sel SeqRange) ([]wal.QuarantineItem, error) {
	if !r.isEnabled(arn) {
		return nil, fmt.Errorf("%w %s: only an enabled target can be re-driven (enabled targets: %s)", ErrNoTarget, arn, strings.Join(r.ARNs(), ", "))
	}
	if r.cluster != nil {
		return nil, fmt.Errorf("%w: re-driving the quarantine", ErrNotOnCluster)
	}
	qs, err := r.selectQuarantine(arn, sel)
	if err != nil {
		return nil, err
	}
	if _, err := r.eng.Redrive(arn, qs); err != nil {
		return nil, err
	}
	r.lg.Info("quarantine re-drive requested", "target", arn, "seq", sel.String(), "events", len(qs))
	return qs, nil
}

// DropQuarantine removes arn's quarantined events in sel for good and
// returns them, records included, so the caller can keep them.
func (r *Relay) DropQuarantine(arn string, sel SeqRange) ([]wal.QuarantineItem, error) {
	qs, err := r.selectQuarantine(arn, sel)
	if err != nil {
		return nil, err
	}
	seqs := make([]uint64, len(qs))
	for i, q := range qs {
		seqs[i] = q.Seq
	}
	ql, ok := r.log.(delivery.QuarantineLog)
	if !ok {
		return nil, fmt.Errorf("%w: dropping from the quarantine", ErrNotOnCluster)
	}
	gone, err := ql.DeleteQuarantine(arn, seqs)
	if err != nil {
		return nil, err
	}
	r.lg.Info("quarantined events dropped", "target", arn, "seq", sel.String(), "events", len(gone))
	return gone, nil
}

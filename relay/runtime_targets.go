package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/wal"
)

// Targets at runtime: added, updated and removed through the API, and
// re-read from the configuration file on Reload (SIGHUP).
//
// Precedence. The configuration file's "notify" section and targets.json
// (in the data directory, written by the API) together make the targets:
//   - A target added through the API must not be defined in the file
//     (409): update it instead.
//   - Updating a target the file defines stores the new entry in
//     targets.json as an override: it wins over the file's entry at every
//     start and reload (logged at start) for as long as the file defines
//     the target. When the file stops defining it (reload or restart), the
//     override goes with it.
//   - A target the file defines cannot be removed through the API (409):
//     remove it from the file and reload. A target only the API added is
//     removed through the API.
//   - A target given in Options.Targets by an embedding program cannot be
//     changed at all.
//
// Bucket rules. A target that rules still route to cannot be removed
// (409, naming the buckets): remove the rules first, so that no event is
// silently routed nowhere. Reload may drop a target that rules set
// through the API (rules.json) route to: it logs a warning, as Open does.

// Errors of the target changes.
var (
	// ErrTargetExists is returned when adding a target whose ARN is
	// running, defined in the configuration file, or has pending events
	// left in the log by an earlier target of the same ARN.
	ErrTargetExists = errors.New("relay: target exists")
	// ErrTargetInUse is returned when removing a target that bucket rules
	// route to, that the configuration file defines, or that the
	// embedding program gave.
	ErrTargetInUse = errors.New("relay: target in use")
	// ErrNotSupported is returned for what the relay cannot do in its
	// configuration (an operation its log does not support).
	ErrNotSupported = errors.New("relay: not supported")
)

// buildError is an adapter's refusal to build a target from a
// configuration that validated (a bad URL, an unreadable CA file).
type buildError struct {
	arn string
	err error
}

func (e *buildError) Error() string { return "relay: " + e.arn + ": " + e.err.Error() }
func (e *buildError) Unwrap() error { return e.err }

// PendingError is returned by RemoveTarget without force for a target
// with pending events.
type PendingError struct {
	Target  string
	Pending int64
}

func (e *PendingError) Error() string {
	return fmt.Sprintf("relay: target %s has %d pending events: removing it with force (relay targets remove --force, ?force=true) exports them (JSON lines, into the data directory), then releases them", e.Target, e.Pending)
}

// Where a running target's configuration comes from (TargetStatus.Source).
const (
	SourceFile     = "file"     // the configuration file
	SourceAPI      = "api"      // added through the API (targets.json)
	SourceOverride = "override" // defined by the file, updated through the API (targets.json)
	SourceOptions  = "options"  // Options.Targets of the embedding program
)

// targetSet is an immutable snapshot of the running targets: Publish
// routes by one snapshot; changes replace it.
type targetSet struct {
	enabled map[string]bool
	arns    []string // sorted
}

func newTargetSet(enabled map[string]bool) *targetSet {
	s := &targetSet{enabled: map[string]bool{}}
	for a, on := range enabled {
		if on {
			s.enabled[a] = true
			s.arns = append(s.arns, a)
		}
	}
	sort.Strings(s.arns)
	return s
}

// with returns the set with add in and remove out.
func (s *targetSet) with(add, remove []string) *targetSet {
	m := make(map[string]bool, len(s.enabled)+len(add))
	for a := range s.enabled {
		m[a] = true
	}
	for _, a := range add {
		m[a] = true
	}
	for _, a := range remove {
		delete(m, a)
	}
	return newTargetSet(m)
}

// targetState is the running targets and where each comes from.
type targetState struct {
	mu      sync.Mutex   // serializes target changes (API calls, Reload)
	srcMu   sync.RWMutex // guards the maps file and stored for source, which must not wait for a change
	set     atomic.Pointer[targetSet]
	file    map[string]TargetConfig // the file's entries by ARN, enabled or not
	stored  map[string]storedTarget // targets.json
	options map[string]bool         // Options.Targets
}

// storedTarget is one entry of targets.json.
type storedTarget struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
	// Entry is the target's object as under notify.KIND.ID in the file.
	Entry     json.RawMessage `json:"entry"`
	StartFrom string          `json:"startFrom,omitempty"`
	Changed   time.Time       `json:"changed"`
}

const targetsFile = "targets.json"

func (r *Relay) isEnabled(arn string) bool { return r.tgt.set.Load().enabled[arn] }

// source says where arn's configuration comes from; "" if it is not
// running. It does not wait for a change in progress.
func (r *Relay) source(arn string) string {
	r.tgt.srcMu.RLock()
	defer r.tgt.srcMu.RUnlock()
	return r.sourceLocked(arn)
}

// sourceLocked is source with tgt.mu or srcMu held.
func (r *Relay) sourceLocked(arn string) string {
	_, stored := r.tgt.stored[arn]
	_, inFile := r.tgt.file[arn]
	switch {
	case r.tgt.options[arn]:
		return SourceOptions
	case stored && inFile:
		return SourceOverride
	case stored:
		return SourceAPI
	case inFile:
		return SourceFile
	}
	return ""
}

// plannedTargets returns the targets Open starts: the file's, with the
// overrides of targets.json, then those targets.json adds. Called by Open
// before anything runs.
func (r *Relay) plannedTargets(cfg *Config) ([]TargetConfig, error) {
	r.tgt.set.Store(newTargetSet(nil))
	r.tgt.file = map[string]TargetConfig{}
	r.tgt.options = map[string]bool{}
	for _, tc := range cfg.Targets {
		r.tgt.file[tc.ARN] = tc
	}
	stored, err := r.loadStoredTargets()
	if err != nil {
		return nil, err
	}
	r.tgt.stored = stored
	path := cfg.DataPath(targetsFile)
	var out []TargetConfig
	for _, tc := range cfg.Targets {
		if st, ok := stored[tc.ARN]; ok {
			o, err := parseEntry(cfg.Relay.Region, st.Kind, st.ID, st.Entry)
			if err != nil {
				return nil, fmt.Errorf("relay: %s: %s: %w", path, tc.ARN, err)
			}
			r.lg.Info("the configuration file's entry of a target is overridden by the one set through the API", "target", tc.ARN, "file", path, "since", st.Changed)
			out = append(out, o)
			continue
		}
		out = append(out, tc)
	}
	for _, arn := range sortedKeys(stored) {
		if _, ok := r.tgt.file[arn]; ok {
			continue
		}
		st := stored[arn]
		tc, err := parseEntry(cfg.Relay.Region, st.Kind, st.ID, st.Entry)
		if err != nil {
			return nil, fmt.Errorf("relay: %s: %s: %w", path, arn, err)
		}
		r.lg.Info("target added through the API", "target", arn, "file", path, "since", st.Changed)
		out = append(out, tc)
	}
	return out, nil
}

func (r *Relay) loadStoredTargets() (map[string]storedTarget, error) {
	path := r.cfg.DataPath(targetsFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]storedTarget{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	var doc struct {
		Targets map[string]storedTarget `json:"targets"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("relay: %s: %w", path, err)
	}
	if doc.Targets == nil {
		doc.Targets = map[string]storedTarget{}
	}
	return doc.Targets, nil
}

// saveStoredTargets writes targets.json atomically and durably and makes
// m the stored targets.
func (r *Relay) saveStoredTargets(m map[string]storedTarget) error {
	b, err := json.MarshalIndent(map[string]any{"targets": m}, "", "  ")
	if err != nil {
		return err
	}
	// Entries may hold credentials, as the configuration file does.
	if err := writeFileAtomic(r.cfg.DataPath(targetsFile), b); err != nil {
		return fmt.Errorf("relay: saving %s: %w", targetsFile, err)
	}
	r.tgt.srcMu.Lock()
	r.tgt.stored = m
	r.tgt.srcMu.Unlock()
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// parseEntry parses one notify entry (the object under notify.KIND.ID) as
// the configuration file's parser does; errors name the field by its path
// in the file (notify.webhook.2.endpoint).
func parseEntry(region, kind, id string, entry json.RawMessage) (TargetConfig, error) {
	doc, err := json.Marshal(map[string]map[string]json.RawMessage{kind: {id: entry}})
	if err != nil {
		return TargetConfig{}, &ConfigError{Path: "notify." + kind + "." + id, Msg: "invalid JSON"}
	}
	c := &Config{Relay: Settings{Region: region}}
	if err := c.parseNotify(doc, doc); err != nil {
		return TargetConfig{}, err
	}
	return c.Targets[0], nil
}

// targetBody is a parsed add or update body.
type targetBody struct {
	tc        TargetConfig
	kind, id  string
	entry     json.RawMessage
	startFrom string
}

// parseTargetBody parses an add or update body: one target in the form of
// the file's "notify" section, {"KIND":{"ID":{…}}}, and optionally
// "startFrom". A missing "enable" means true; false is refused.
func (r *Relay) parseTargetBody(body []byte) (*targetBody, error) {
	var top map[string]json.RawMessage
	if err := decodeStrict(body, &top); err != nil {
		return nil, jsonError(body, "", err)
	}
	const want = `the body must be one target as in the file's "notify" section, such as {"webhook":{"2":{"endpoint":"https://…"}}}`
	if top == nil {
		return nil, &ConfigError{Msg: want}
	}
	tb := &targetBody{}
	if raw, ok := top["startFrom"]; ok {
		if err := json.Unmarshal(raw, &tb.startFrom); err != nil || (tb.startFrom != StartFromNew && tb.startFrom != StartFromOldest) {
			return nil, &ConfigError{Path: "startFrom", Msg: fmt.Sprintf("must be %q or %q", StartFromNew, StartFromOldest)}
		}
		delete(top, "startFrom")
	}
	if len(top) != 1 {
		return nil, &ConfigError{Msg: want + fmt.Sprintf("; it names %d kinds", len(top))}
	}
	for kind, kraw := range top {
		tb.kind = kind
		path := "notify." + kind
		if _, ok := kindByName[kind]; !ok {
			return nil, &ConfigError{Path: path, Msg: "unknown target kind (want one of " + strings.Join(kindNames(), ", ") + ")"}
		}
		var ids map[string]json.RawMessage
		if err := decodeStrict(kraw, &ids); err != nil {
			return nil, jsonError(body, path, err)
		}
		if len(ids) != 1 {
			return nil, &ConfigError{Path: path, Msg: fmt.Sprintf("must hold exactly one target, got %d", len(ids))}
		}
		for id, entry := range ids {
			tb.id, tb.entry = id, entry
		}
	}
	path := "notify." + tb.kind + "." + tb.id
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(tb.entry, &fields); err != nil || fields == nil {
		return nil, &ConfigError{Path: path, Msg: "must be an object"}
	}
	if _, ok := fields["enable"]; !ok {
		fields["enable"] = json.RawMessage("true")
		tb.entry, _ = json.Marshal(fields)
	}
	tc, err := parseEntry(r.cfg.Relay.Region, tb.kind, tb.id, tb.entry)
	if err != nil {
		return nil, err
	}
	if !tc.Enabled {
		return nil, &ConfigError{Path: path + ".enable", Msg: "must be true: a target set through the API runs (pause it to hold its delivery, or remove it)"}
	}
	tb.tc = tc
	return tb, nil
}

// buildTarget makes tc's target, ready for startBuilt.
func (r *Relay) buildTarget(tc TargetConfig) (delivery.Target, error) {
	k := kindByName[tc.Kind]
	t, err := k.Build(tc.Params, r.lg.With("target", tc.ARN))
	if err != nil {
		return nil, &buildError{arn: tc.ARN, err: err}
	}
	return t, nil
}

// setLimit sets tc's bound in the log; zero fields take queueLimit and
// queueLimitBytes. A cluster log has none (its config refuses them).
func (r *Relay) setLimit(tc TargetConfig) {
	if ll, ok := r.log.(limitLog); ok {
		ll.SetLimit(tc.ARN, wal.Limit{MaxEvents: tc.MaxPending, MaxBytes: tc.MaxPendingBytes, Drop: tc.WhenFull == WhenFullDrop})
	}
}

// startBuilt sets tc's bound in the log and starts delivering to t.
func (r *Relay) startBuilt(tc TargetConfig, t delivery.Target) error {
	r.setLimit(tc)
	if err := r.eng.Add(delivery.Spec{ID: tc.ARN, Target: r.abortable(t), Namespace: tc.Namespace, MaxBatch: tc.maxBatch(), Policy: tc.Policy}); err != nil {
		t.Close()
		return err
	}
	return nil
}

// startTarget builds and starts tc (Open).
func (r *Relay) startTarget(tc TargetConfig) error {
	t, err := r.buildTarget(tc)
	if err != nil {
		return err
	}
	return r.startBuilt(tc, t)
}

// reapplyPause pauses arn's new loop if paused.json holds it.
func (r *Relay) reapplyPause(arn string) {
	r.pause.mu.Lock()
	_, paused := slices.BinarySearch(r.pause.paused, arn)
	r.pause.mu.Unlock()
	if paused {
		r.eng.Pause(arn)
		r.lg.Info("target is paused (paused.json); resume it with `relay targets resume`", "target", arn)
	}
}

// forgetPause drops arn from paused.json (a removed target).
func (r *Relay) forgetPause(arn string) {
	r.pause.mu.Lock()
	defer r.pause.mu.Unlock()
	i, found := slices.BinarySearch(r.pause.paused, arn)
	if !found {
		return
	}
	next := slices.Delete(slices.Clone(r.pause.paused), i, i+1)
	b, _ := json.MarshalIndent(map[string][]string{"paused": next}, "", "  ")
	if err := writeFileAtomic(r.cfg.DataPath(pausedFile), b); err != nil {
		r.lg.Warn("saving paused targets", "err", err)
		return
	}
	r.pause.paused = next
}

// setRouting replaces the running set, once the appends in flight (routed
// by the old set) are done.
func (r *Relay) setRouting(add, remove []string) {
	r.routeMu.Lock()
	defer r.routeMu.Unlock()
	r.tgt.set.Store(r.tgt.set.Load().with(add, remove))
}

// reroute returns the batch's entries routed to targets that still run:
// a target removed since the batch was routed gets nothing. Called with
// routeMu held for reading.
func (b *batch) reroute() []*wal.Entry {
	now := b.r.tgt.set.Load()
	if now == b.set {
		return b.entries
	}
	out := b.entries[:0]
	for _, e := range b.entries {
		e.Targets = slices.DeleteFunc(e.Targets, func(a string) bool { return !now.enabled[a] })
		if len(e.Targets) > 0 {
			out = append(out, e)
		}
	}
	return out
}

// bucketsRouting returns the buckets with an effective rule routing to arn.
func (r *Relay) bucketsRouting(arn string) []string {
	var out []string
	for b, rs := range r.rules.Buckets() {
		for _, x := range rs {
			if x.ARN == arn {
				out = append(out, b)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// registerFrom checks a new target's startFrom. "oldest" is applied once
// the target runs (startFromOldest, retention.go): its loop is restarted
// from the oldest retained record routed to it.
func (r *Relay) registerFrom(arn, startFrom string) error {
	switch startFrom {
	case "", StartFromNew, StartFromOldest:
		return nil
	}
	return &ConfigError{Path: "startFrom", Msg: fmt.Sprintf("must be %q or %q", StartFromNew, StartFromOldest)}
}

// AddTarget adds a target at runtime. body is one target in the form of
// the configuration file's "notify" section, {"KIND":{"ID":{…}}}, with an
// optional "startFrom" ("new", the default, or "oldest"); "enable" may be
// left out. The target is validated as the file's entries are (errors are
// *ConfigError naming the field), kept in targets.json so it comes back
// after a restart, and receives the events logged from now on. It returns
// the target's ARN. Errors: *ConfigError, or the adapter's for a bad
// body, ErrTargetExists, ErrNotSupported.
func (r *Relay) AddTarget(ctx context.Context, body []byte) (string, error) {
	if r.cluster != nil {
		return "", fmt.Errorf("%w: adding a target at runtime (each relay of a cluster reads its targets from its own file)", ErrNotOnCluster)
	}
	tb, err := r.parseTargetBody(body)
	if err != nil {
		return "", err
	}
	arn := tb.tc.ARN
	r.tgt.mu.Lock()
	defer r.tgt.mu.Unlock()
	switch fe, inFile := r.tgt.file[arn]; {
	case r.isEnabled(arn) && r.sourceLocked(arn) == SourceAPI:
		return "", fmt.Errorf("%w: %s was added already; change it with an update (PUT /v1/targets/{arn}, relay targets update)", ErrTargetExists, arn)
	case r.tgt.options[arn]:
		return "", fmt.Errorf("%w: %s is given by the program embedding the relay", ErrTargetExists, arn)
	case inFile:
		return "", fmt.Errorf("%w: %s is defined in the configuration file (notify.%s.%s); change it with an update, which is kept as an override of the file's entry", ErrTargetExists, arn, fe.Kind, fe.ID)
	}
	// An earlier target of this ARN (removed from the file, say) may have
	// left events: the new one would receive them. With nothing pending,
	// its cursor is as good as a new one.
	if n, err := r.pendingCount(arn); err != nil {
		return "", err
	} else if n > 0 {
		return "", fmt.Errorf("%w: the log holds the cursor of an earlier target %s with %d pending events; release it first (relay targets remove --force %s)", ErrTargetExists, arn, n, arn)
	}
	if err := r.registerFrom(arn, tb.startFrom); err != nil {
		return "", err
	}
	t, err := r.buildTarget(tb.tc)
	if err != nil {
		return "", err
	}
	next := cloneStored(r.tgt.stored)
	next[arn] = storedTarget{Kind: tb.kind, ID: tb.id, Entry: tb.entry, StartFrom: tb.startFrom, Changed: time.Now().UTC()}
	if err := r.saveStoredTargets(next); err != nil {
		t.Close()
		return "", err
	}
	if err := r.startBuilt(tb.tc, t); err != nil {
		delete(next, arn)
		if serr := r.saveStoredTargets(next); serr != nil {
			r.lg.Error("a target that could not start stays in targets.json", "target", arn, "err", serr)
		}
		return "", err
	}
	r.reapplyPause(arn)
	r.setRouting([]string{arn}, nil)
	r.lg.Info("target added", "target", arn, "startFrom", orNew(tb.startFrom))
	if tb.startFrom == StartFromOldest || tb.tc.StartFrom == StartFromOldest {
		if _, err := r.startFromOldest(ctx, arn); err != nil {
			return arn, err
		}
	}
	return arn, nil
}

func orNew(s string) string {
	if s == "" {
		return StartFromNew
	}
	return s
}

func cloneStored(m map[string]storedTarget) map[string]storedTarget {
	out := make(map[string]storedTarget, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// stopWait bounds how long a change waits for a target's loop to stop (a
// send in flight finishes first, up to delivery's ShutdownGrace).
const stopWait = 30 * time.Second

// UpdateTarget replaces the configuration of the running target arn (or
// of a target the file defines but disables, which starts it). body is as
// for AddTarget, without "startFrom", and must describe arn. The target's
// loop is stopped and started again on the new configuration from the
// same cursor: nothing logged for it is lost. For a target the file
// defines, the new entry is kept in targets.json as an override. Errors:
// *ConfigError or the adapter's, ErrNoTarget, ErrTargetInUse.
func (r *Relay) UpdateTarget(ctx context.Context, arn string, body []byte) error {
	if r.cluster != nil {
		return fmt.Errorf("%w: updating a target at runtime (each relay of a cluster reads its targets from its own file)", ErrNotOnCluster)
	}
	tb, err := r.parseTargetBody(body)
	if err != nil {
		return err
	}
	if tb.startFrom != "" {
		return &ConfigError{Path: "startFrom", Msg: "is for adding a target; an update keeps the target's cursor"}
	}
	if tb.tc.ARN != arn {
		return &ConfigError{Path: "notify." + tb.kind + "." + tb.id, Msg: fmt.Sprintf("describes the target %s, not %s", tb.tc.ARN, arn)}
	}
	r.tgt.mu.Lock()
	defer r.tgt.mu.Unlock()
	running := r.isEnabled(arn)
	_, inFile := r.tgt.file[arn]
	switch {
	case r.tgt.options[arn]:
		return fmt.Errorf("%w: %s is given by the program embedding the relay", ErrTargetInUse, arn)
	case !running && !inFile:
		return r.noTarget(arn)
	}
	t, err := r.buildTarget(tb.tc)
	if err != nil {
		return err
	}
	next := cloneStored(r.tgt.stored)
	next[arn] = storedTarget{Kind: tb.kind, ID: tb.id, Entry: tb.entry, Changed: time.Now().UTC()}
	if err := r.saveStoredTargets(next); err != nil {
		t.Close()
		return err
	}
	if err := r.replaceLoop(arn, running, tb.tc, t); err != nil {
		return err
	}
	if !running {
		r.setRouting([]string{arn}, nil)
	}
	r.lg.Info("target updated", "target", arn, "source", r.sourceLocked(arn))
	return nil
}

// replaceLoop starts tc's target t in place of arn's loop (if running)
// from the same cursor; the pause and the counts carry over
// (delivery.Engine.Replace). Events routed meanwhile wait in the log.
func (r *Relay) replaceLoop(arn string, running bool, tc TargetConfig, t delivery.Target) error {
	if !running {
		if err := r.startBuilt(tc, t); err != nil {
			return err
		}
		r.reapplyPause(arn)
		return nil
	}
	r.setLimit(tc)
	// Not the caller's context: a half-done replacement would leave the
	// target stopped.
	ctx, cancel := context.WithTimeout(context.Background(), stopWait)
	defer cancel()
	err := r.eng.Replace(ctx, delivery.Spec{ID: tc.ARN, Target: r.abortable(t), Namespace: tc.Namespace, MaxBatch: tc.maxBatch(), Policy: tc.Policy})
	if errors.Is(err, delivery.ErrUnknownTarget) {
		// An earlier change stopped the loop but could not start the
		// new one: start it now.
		if err := r.startBuilt(tc, t); err != nil {
			return err
		}
		r.reapplyPause(arn)
		return nil
	}
	if err != nil {
		r.lg.Error("the target's old loop did not stop in time; the target is not running until the change is made again", "target", arn, "err", err)
		return fmt.Errorf("relay: %s: replacing the configuration: %w", arn, err)
	}
	return nil
}

// Removal is what RemoveTarget did.
type Removal struct {
	// Target is the ARN.
	Target string `json:"target"`
	// Released counts the pending events exported and let go.
	Released int `json:"released"`
	// Export is the path of the JSON lines file they were written to
	// (fsynced before the release); empty when nothing was pending.
	Export string `json:"export,omitempty"`
}

// RemoveTarget stops and removes a target added through the API, or
// releases the cursor a target no longer configured left in the log. A
// target with pending events is refused with a *PendingError unless force
// is set; with force, its pending events are first exported as JSON lines
// (as wal.Log.Release writes them) into the data directory's exports/ and
// fsynced, then released. Its quarantine stays in the log. Errors:
// ErrNoTarget, ErrTargetInUse (the file defines it, rules route to it),
// *PendingError.
func (r *Relay) RemoveTarget(ctx context.Context, arn string, force bool) (Removal, error) {
	if r.cluster != nil {
		return Removal{}, fmt.Errorf("%w: removing a target at runtime (each relay of a cluster reads its targets from its own file)", ErrNotOnCluster)
	}
	r.tgt.mu.Lock()
	defer r.tgt.mu.Unlock()
	running := r.isEnabled(arn)
	_, hasCursor := r.log.Cursor(arn)
	if !running && !hasCursor {
		return Removal{}, r.noTarget(arn)
	}
	if running {
		fe, inFile := r.tgt.file[arn]
		switch {
		case r.tgt.options[arn]:
			return Removal{}, fmt.Errorf("%w: %s is given by the program embedding the relay", ErrTargetInUse, arn)
		case inFile:
			return Removal{}, fmt.Errorf("%w: %s is defined in the configuration file (notify.%s.%s): remove it there and reload the relay (SIGHUP)", ErrTargetInUse, arn, fe.Kind, fe.ID)
		}
		if bs := r.bucketsRouting(arn); len(bs) > 0 {
			return Removal{}, fmt.Errorf("%w: bucket rules route to %s (buckets: %s): remove them first (relay events remove BUCKET %s)", ErrTargetInUse, arn, strings.Join(bs, ", "), arn)
		}
	}
	n, err := r.pendingCount(arn)
	if err != nil {
		return Removal{}, err
	}
	if n > 0 && !force {
		return Removal{}, &PendingError{Target: arn, Pending: n}
	}
	if running {
		next := cloneStored(r.tgt.stored)
		delete(next, arn)
		if err := r.saveStoredTargets(next); err != nil {
			return Removal{}, err
		}
		r.setRouting(nil, []string{arn})
		sctx, cancel := context.WithTimeout(context.Background(), stopWait)
		err := r.eng.Remove(sctx, arn)
		cancel()
		if err != nil {
			r.lg.Error("the removed target's loop did not stop in time; its events are not released (remove it again)", "target", arn, "err", err)
			return Removal{}, fmt.Errorf("relay: %s: stopping: %w", arn, err)
		}
		r.forgetPause(arn)
		r.live.lag.forget(arn)
		r.lg.Info("target removed", "target", arn)
	}
	rm, err := r.release(arn)
	if err != nil {
		return Removal{}, err
	}
	return rm, nil
}

// pendingCount counts the events pending for arn exactly (Log.Pending
// counts by whole frames).
func (r *Relay) pendingCount(arn string) (int64, error) {
	c, ok := r.log.Cursor(arn)
	if !ok {
		return 0, nil
	}
	var n int64
	_, err := r.log.Read(context.Background(), c, arn, func(wal.Record) bool { n++; return true })
	if err != nil && !errors.Is(err, wal.ErrCorrupt) {
		return 0, fmt.Errorf("relay: counting the events pending for %s: %w", arn, err)
	}
	return n, nil
}

const exportsDir = "exports"

// release exports arn's pending events into the data directory and lets
// the log forget the target. No loop may run for it and nothing may route
// to it.
func (r *Relay) release(arn string) (Removal, error) {
	dir := r.cfg.DataPath(exportsDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Removal{}, fmt.Errorf("relay: exports directory: %w", err)
	}
	name := exportName(arn, time.Now().UTC())
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return Removal{}, fmt.Errorf("relay: export of %s: %w", arn, err)
	}
	l, err := r.walLog("releasing a target's events")
	if err != nil {
		f.Close()
		os.Remove(path)
		return Removal{}, err
	}
	n, err := l.Release(arn, f) // syncs f before it releases
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return Removal{}, fmt.Errorf("relay: releasing %s: %w", arn, err)
	}
	if n == 0 {
		os.Remove(path)
		r.lg.Info("target released: nothing was pending", "target", arn)
		return Removal{Target: arn}, nil
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	r.lg.Warn("target released: its pending events were exported and let go", "target", arn, "released", n, "export", path)
	return Removal{Target: arn, Released: n, Export: path}, nil
}

// exportName names an export file: the ARN with ':' made '_', and the time.
func exportName(arn string, at time.Time) string {
	return strings.ReplaceAll(arn, ":", "_") + "-" + at.Format("20060102T150405.000000000Z") + ".jsonl"
}

// Changes is what Reload applied, and what it did not and why.
type Changes struct {
	// Added, Updated and Removed are ARNs of targets.
	Added   []string `json:"added,omitempty"`
	Updated []string `json:"updated,omitempty"`
	Removed []string `json:"removed,omitempty"`
	// Buckets are the buckets whose rules in the file changed.
	Buckets []string `json:"buckets,omitempty"`
	// Notes are warnings: pending events kept for a removed target,
	// settings that apply only at the next start, overridden entries.
	Notes []string `json:"notes,omitempty"`
}

// Empty reports that the reload changed nothing.
func (c Changes) Empty() bool {
	return len(c.Added)+len(c.Updated)+len(c.Removed)+len(c.Buckets) == 0
}

// Reload applies a re-read configuration file: targets the file adds are
// started, those it changes are restarted on the new entry from their
// cursor, those it removes or disables are stopped, and the file's bucket
// rules are replaced; each change is logged. Entries overridden through
// the API (targets.json) keep their override. A removed target's pending
// events are NOT released: they stay in the log (a warning says how many
// and how to release them: relay targets remove --force ARN). Settings of
// the "relay" section apply at the next start (a note says so). If a new
// or changed target cannot be built, Reload returns the error and applies
// nothing. cfg is a parsed, valid configuration (LoadConfig).
func (r *Relay) Reload(cfg *Config) (Changes, error) {
	if r.cluster != nil {
		return Changes{}, fmt.Errorf("%w: reloading the configuration (each relay of a cluster reads its targets from its own file)", ErrNotOnCluster)
	}
	var ch Changes
	r.tgt.mu.Lock()
	defer r.tgt.mu.Unlock()
	if cfg.Relay.Region != r.cfg.Relay.Region {
		// Every ARN would change: targets, rules, cursors and quarantines
		// would all be orphaned at once.
		return Changes{}, &ConfigError{Path: "relay.region", Msg: fmt.Sprintf("changed from %q to %q: the region is part of every ARN; restart the relay to change it", r.cfg.Relay.Region, cfg.Relay.Region)}
	}
	if !reflect.DeepEqual(cfg.Relay, r.cfg.Relay) {
		ch.Notes = append(ch.Notes, "the relay section changed: its settings apply at the next start")
	}
	newFile := map[string]TargetConfig{}
	for _, tc := range cfg.Targets {
		newFile[tc.ARN] = tc
	}
	type start struct {
		tc      TargetConfig
		t       delivery.Target
		running bool
	}
	var starts []start
	var removes []string
	stored := cloneStored(r.tgt.stored)
	storedChanged := false
	fail := func(err error) (Changes, error) {
		for _, s := range starts {
			s.t.Close()
		}
		return Changes{}, err
	}
	union := map[string]bool{}
	for a := range newFile {
		union[a] = true
	}
	for a := range r.tgt.file {
		union[a] = true
	}
	for _, arn := range sortedKeys(union) {
		old, inOld := r.tgt.file[arn]
		nw, inNew := newFile[arn]
		_, overridden := r.tgt.stored[arn]
		running := r.isEnabled(arn)
		switch {
		case r.tgt.options[arn]:
			if inNew {
				return fail(&ConfigError{Path: "notify." + nw.Kind + "." + nw.ID, Msg: fmt.Sprintf("the target %s is given by the program embedding the relay", arn)})
			}
		case inNew && overridden:
			if !inOld {
				ch.Notes = append(ch.Notes, fmt.Sprintf("%s: the file now defines this target, added through the API; the API's entry (targets.json) stays, as an override", arn))
			} else if !reflect.DeepEqual(old, nw) {
				ch.Notes = append(ch.Notes, fmt.Sprintf("%s: the file's entry changed but is overridden through the API (targets.json); the override stays", arn))
			}
		case !inNew && overridden:
			// The file no longer defines it: the override goes with it.
			delete(stored, arn)
			storedChanged = true
			if running {
				removes = append(removes, arn)
			}
		case !inNew:
			if running {
				removes = append(removes, arn)
			}
		case !nw.Enabled:
			if running {
				removes = append(removes, arn)
			}
		case running && reflect.DeepEqual(old, nw):
		default:
			t, err := r.buildTarget(nw)
			if err != nil {
				return fail(&ConfigError{Path: "notify." + nw.Kind + "." + nw.ID, Msg: errors.Unwrap(err).Error()})
			}
			starts = append(starts, start{tc: nw, t: t, running: running})
		}
	}
	if storedChanged {
		if err := r.saveStoredTargets(stored); err != nil {
			return fail(err)
		}
	}
	var added []string
	for _, s := range starts {
		if err := r.replaceLoop(s.tc.ARN, s.running, s.tc, s.t); err != nil {
			r.lg.Error("reload: starting a target failed", "target", s.tc.ARN, "err", err)
			ch.Notes = append(ch.Notes, fmt.Sprintf("%s: %v", s.tc.ARN, err))
			continue
		}
		if s.running {
			ch.Updated = append(ch.Updated, s.tc.ARN)
			r.lg.Info("reload: target updated", "target", s.tc.ARN)
		} else {
			added = append(added, s.tc.ARN)
			ch.Added = append(ch.Added, s.tc.ARN)
			r.lg.Info("reload: target added", "target", s.tc.ARN)
		}
	}
	// Routing and rules change together: no event is routed by new rules
	// to a target not yet running, nor by old rules to one removed.
	r.routeMu.Lock()
	r.tgt.set.Store(r.tgt.set.Load().with(added, removes))
	r.rulesMu.Lock()
	for _, b := range sortedKeys(unionRules(r.file, cfg.Buckets)) {
		if !reflect.DeepEqual(r.file[b], cfg.Buckets[b]) {
			ch.Buckets = append(ch.Buckets, b)
		}
	}
	r.file = cfg.Buckets
	r.rules.Replace(r.effectiveRules())
	api := r.api
	r.rulesMu.Unlock()
	r.routeMu.Unlock()
	for _, b := range ch.Buckets {
		r.lg.Info("reload: the file's rules of a bucket changed", "bucket", b, "rules", len(cfg.Buckets[b]))
		if _, ok := api[b]; ok {
			ch.Notes = append(ch.Notes, fmt.Sprintf("bucket %s: the file's rules changed but rules set through the API (rules.json) override them", b))
		}
	}
	for _, arn := range removes {
		ctx, cancel := context.WithTimeout(context.Background(), stopWait)
		err := r.eng.Remove(ctx, arn)
		cancel()
		if err != nil {
			r.lg.Error("reload: the removed target's loop did not stop in time", "target", arn, "err", err)
		}
		ch.Removed = append(ch.Removed, arn)
		r.live.lag.forget(arn)
		n, _ := r.pendingCount(arn)
		if n > 0 {
			ch.Notes = append(ch.Notes, fmt.Sprintf("%s: removed with %d pending events, kept in the log (not released); release them with `relay targets remove --force %s` (they are exported first) or define the target again", arn, n, arn))
		}
		r.lg.Info("reload: target removed", "target", arn, "pending", n)
		for b, rs := range api {
			for _, x := range rs {
				if x.ARN == arn {
					ch.Notes = append(ch.Notes, fmt.Sprintf("bucket %s: a rule set through the API routes to the removed target %s; its events are not delivered to it", b, arn))
					break
				}
			}
		}
	}
	r.tgt.srcMu.Lock()
	r.tgt.file = newFile
	r.tgt.srcMu.Unlock()
	for _, n := range ch.Notes {
		r.lg.Warn("reload: " + n)
	}
	if ch.Empty() {
		r.lg.Info("reload: the configuration file's targets and rules are unchanged")
	}
	return ch, nil
}

func unionRules[V any](a, b map[string]V) map[string]bool {
	m := map[string]bool{}
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	return m
}

// forget drops a removed target's lag history (the status page's
// sparkline): an ARN added again starts a new one.
func (h *lagHistory) forget(arn string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.m, arn)
}

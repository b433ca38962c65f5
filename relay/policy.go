package relay

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
)

// Bounds of the per-target policy keys.
const (
	maxInFlight = 64
	maxMaxBatch = 100_000
)

// policyKeys are the delivery policy keys every notify entry may carry
// beside its kind's own and its bound (maxPending, whenFull).
type policyKeys struct {
	MaxAttempts *int     `json:"maxAttempts"`
	MaxAge      *string  `json:"maxAge"`
	RateLimit   *float64 `json:"rateLimit"`
	MaxBatch    *int     `json:"maxBatch"`
	InFlight    *int     `json:"inflight"`
	Lanes       *int     `json:"lanes"`
}

var policyNames = []string{"maxAttempts", "maxAge", "rateLimit", "maxBatch", "inflight", "lanes"}

// splitPolicy reads the policy keys of a notify entry of kind k at path
// and returns the target's policy, its batch size (0: the kind's), and the
// entry without those keys, for the kind's strict parser.
func splitPolicy(doc, raw json.RawMessage, path string, k *kit.Kind, cluster bool) (delivery.Policy, int, json.RawMessage, error) {
	var pk policyKeys
	pol := delivery.Policy{InFlight: k.InFlight}
	if err := json.Unmarshal(raw, &pk); err != nil {
		return pol, 0, nil, jsonError(doc, path, err)
	}
	field := func(name, msg string, args ...any) error {
		return &ConfigError{Path: path + "." + name, Msg: fmt.Sprintf(msg, args...)}
	}
	if n := pk.MaxAttempts; n != nil {
		if *n < 0 {
			return pol, 0, nil, field("maxAttempts", "must not be negative (0 retries forever)")
		}
		pol.MaxAttempts = *n
		if *n == 0 {
			pol.MaxAttempts = -1 // forever, whatever relay.maxAttempts says
		}
	}
	if s := pk.MaxAge; s != nil {
		d, err := time.ParseDuration(*s)
		if err != nil || d <= 0 {
			return pol, 0, nil, field("maxAge", "%q is not a positive duration such as \"24h\"", *s)
		}
		pol.MaxAge = d
	}
	if r := pk.RateLimit; r != nil {
		if *r <= 0 || math.IsInf(*r, 0) || math.IsNaN(*r) {
			return pol, 0, nil, field("rateLimit", "must be a positive number of events per second")
		}
		pol.RateLimit = *r
	}
	batch := 0
	if n := pk.MaxBatch; n != nil {
		if *n < 1 || *n > maxMaxBatch {
			return pol, 0, nil, field("maxBatch", "must be between 1 and %d", maxMaxBatch)
		}
		batch = *n
	}
	concurrent := func(name string, n, most int) error {
		switch {
		case n < 1 || n > most:
			return field(name, "must be between 1 and %d", most)
		case n > 1 && k.InFlight == 0:
			return field(name, "a %s target takes one send at a time: only 1 is allowed", k.Name)
		}
		return nil
	}
	if n := pk.InFlight; n != nil {
		if err := concurrent("inflight", *n, maxInFlight); err != nil {
			return pol, 0, nil, err
		}
		pol.InFlight = *n
	}
	if n := pk.Lanes; n != nil {
		if cluster {
			// A cluster's lanes are drained by the relay processes, each
			// lane in order by one loop: any kind can have them.
			if *n < 1 || *n > MaxLanes {
				return pol, 0, nil, field("lanes", "must be between 1 and %d", MaxLanes)
			}
		} else if err := concurrent("lanes", *n, MaxLanes); err != nil {
			return pol, 0, nil, err
		}
		pol.Lanes = *n
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return pol, 0, nil, jsonError(doc, path, err)
	}
	for _, n := range policyNames {
		delete(m, n)
	}
	rest, err := json.Marshal(m)
	return pol, batch, rest, err
}

// maxBatch is the most events of one send to tc: its "maxBatch", or its
// kind's.
func (tc *TargetConfig) maxBatch() int {
	if tc.MaxBatch > 0 {
		return tc.MaxBatch
	}
	return kindByName[tc.Kind].MaxBatch
}

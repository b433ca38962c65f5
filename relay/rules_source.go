package relay

import (
	"sort"
)

// Where a bucket's rules come from (RulesSource).
const (
	// RulesFromFile: the configuration file's "buckets" section.
	RulesFromFile = "file"
	// RulesFromAPI: set through the API (PUT …/notification, relay
	// events), kept in rules.json in the data directory; they replace the
	// file's rules for that bucket.
	RulesFromAPI = "api"
)

// Headers of GET /v1/buckets/{bucket}/notification: RulesSourceHeader is
// RulesSource's source; RulesOverriddenHeader, present only when rules set
// through the API hide some of the file's, how many.
const (
	RulesSourceHeader     = "X-Relay-Rules-Source"
	RulesOverriddenHeader = "X-Relay-Rules-Overridden"
)

// RulesSource returns where bucket's effective rules come from
// (RulesFromAPI or RulesFromFile; RulesFromFile for a bucket without
// rules) and, for rules set through the API, how many of the file's rules
// for the bucket they override.
func (r *Relay) RulesSource(bucket string) (source string, overridden int) {
	r.rulesMu.Lock()
	defer r.rulesMu.Unlock()
	if _, ok := r.api[bucket]; ok {
		return RulesFromAPI, len(r.file[bucket])
	}
	return RulesFromFile, 0
}

// logRuleOverrides says at start which buckets' rules come from rules.json
// rather than the file, so that an edit of the file's rules that seems to
// do nothing is explained in the log.
func (r *Relay) logRuleOverrides() {
	r.rulesMu.Lock()
	defer r.rulesMu.Unlock()
	buckets := make([]string, 0, len(r.api))
	for b := range r.api {
		buckets = append(buckets, b)
	}
	sort.Strings(buckets)
	for _, b := range buckets {
		if n := len(r.file[b]); n > 0 {
			r.lg.Warn("bucket rules set through the API override the configuration file's rules for this bucket; remove them (relay events remove BUCKET --force) to use the file's",
				"bucket", b, "apiRules", len(r.api[b]), "fileRulesIgnored", n, "file", r.cfg.DataPath(rulesFile))
		} else {
			r.lg.Info("bucket rules set through the API", "bucket", b, "rules", len(r.api[b]), "file", r.cfg.DataPath(rulesFile))
		}
	}
}

// Package rules is bucket notification configuration with S3 semantics:
// per bucket, a list of rules each naming a target ARN, the event names it
// wants (with wildcards) and an optional prefix and suffix filter on the
// object key, and optional filters on the object itself (ObjectFilter: a
// key regular expression, size, content type, user metadata and tags). It
// reads and writes the S3 NotificationConfiguration XML, with Ceph's
// S3Metadata and S3Tags filter extensions.
//
// Matching returns each target at most once, however many of a bucket's
// rules select the event.
package rules

import (
	"encoding/xml"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/bucketrelay/bucketrelay/event"
)

// Rule selects events of one bucket for one target.
type Rule struct {
	// ID is the rule's Id in the XML; optional.
	ID string `json:"id,omitempty"`
	// ARN is the target, arn:minio:sqs:REGION:ID:KIND.
	ARN string `json:"arn"`
	// Events are event names or wildcards; the shorthands of
	// `mc events add --events` (put, delete, get) are accepted too. Empty
	// means DefaultEvents (put and delete), as in the configuration file and
	// as `mc event add` without --event.
	Events []event.Name `json:"events"`
	// Prefix and Suffix filter the object key (decoded); empty matches all.
	Prefix string `json:"prefix,omitempty"`
	Suffix string `json:"suffix,omitempty"`
	// ObjectFilter filters on the object beyond its key's affixes.
	ObjectFilter
}

// ARN is a parsed target ARN.
type ARN struct {
	Region, ID, Kind string
}

// String returns the ARN in its text form.
func (a ARN) String() string { return "arn:minio:sqs:" + a.Region + ":" + a.ID + ":" + a.Kind }

// ErrBadARN is returned for a string that is not arn:minio:sqs:REGION:ID:KIND.
var ErrBadARN = errors.New("rules: not a target ARN (want arn:minio:sqs:REGION:ID:KIND)")

// ParseARN parses a target ARN.
func ParseARN(s string) (ARN, error) {
	p := strings.Split(s, ":")
	if len(p) != 6 || p[0] != "arn" || p[1] != "minio" || p[2] != "sqs" || p[4] == "" || p[5] == "" {
		return ARN{}, fmt.Errorf("%w: %q", ErrBadARN, s)
	}
	return ARN{Region: p[3], ID: p[4], Kind: p[5]}, nil
}

// DefaultEvents are the events of a rule that names none: objects created
// and removed, what `mc event add` subscribes to without --event.
var DefaultEvents = []event.Name{event.ObjectCreatedAll, event.ObjectRemovedAll}

// Normalize checks r and returns it with event shorthands expanded,
// duplicate names removed and, when it names no events, DefaultEvents.
// Rules from the configuration file and rules built in Go get the same
// defaults.
func (r Rule) Normalize() (Rule, error) {
	if _, err := ParseARN(r.ARN); err != nil {
		return r, err
	}
	if len(r.Events) == 0 {
		r.Events = DefaultEvents
	}
	var out []event.Name
	seen := map[event.Name]bool{}
	for _, n := range r.Events {
		if w, ok := event.Shorthand[strings.ToLower(string(n))]; ok {
			n = w
		}
		if !n.Known() {
			return r, fmt.Errorf("rules: unknown event name %q", string(n))
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	r.Events = out
	// Copy what normalize rewrites, so the caller's rule is left alone.
	r.ContentTypes = append([]string(nil), r.ContentTypes...)
	if err := r.ObjectFilter.normalize(); err != nil {
		return r, fmt.Errorf("rules: rule for %s: %w", r.ARN, err)
	}
	return r, nil
}

// Matches reports whether r selects an event named name on the object key,
// for a rule whose filters look at the key alone. A rule with object
// filters matches only through MatchesObject.
func (r *Rule) Matches(key string, name event.Name) bool {
	return r.MatchesObject(key, name, nil)
}

// MatchesObject reports whether r selects an event named name on the
// object key, obj giving the record's object fields (nil: unknown).
func (r *Rule) MatchesObject(key string, name event.Name, obj func() *Object) bool {
	if !strings.HasPrefix(key, r.Prefix) || !strings.HasSuffix(key, r.Suffix) || !r.matchesKey(key) {
		return false
	}
	if r.needsObject() && (obj == nil || !r.matchesObject(obj())) {
		return false
	}
	for _, p := range r.Events {
		if name.Matches(p) {
			return true
		}
	}
	return false
}

// Filter returns the rule's filter as `mc events list` prints it:
// `Filter: prefix="a/", suffix=".jpg"`, or "" without a filter.
func (r *Rule) Filter() string {
	var f []string
	if r.Prefix != "" {
		f = append(f, fmt.Sprintf("prefix=%q", r.Prefix))
	}
	if r.Suffix != "" {
		f = append(f, fmt.Sprintf("suffix=%q", r.Suffix))
	}
	f = r.ObjectFilter.describe(f)
	if len(f) == 0 {
		return ""
	}
	return "Filter: " + strings.Join(f, ", ")
}

// Set holds the rules of every bucket. Match may run concurrently with
// Replace.
type Set struct {
	m atomic.Pointer[map[string][]Rule]
}

// NewSet returns a set holding buckets.
func NewSet(buckets map[string][]Rule) *Set {
	s := &Set{}
	s.Replace(buckets)
	return s
}

// Replace swaps in a new rule table.
func (s *Set) Replace(buckets map[string][]Rule) {
	m := make(map[string][]Rule, len(buckets))
	for b, rs := range buckets {
		if len(rs) > 0 {
			m[b] = append([]Rule(nil), rs...)
		}
	}
	s.m.Store(&m)
}

// Bucket returns bucket's rules.
func (s *Set) Bucket(bucket string) []Rule {
	return append([]Rule(nil), (*s.m.Load())[bucket]...)
}

// Buckets returns every bucket's rules.
func (s *Set) Buckets() map[string][]Rule {
	m := *s.m.Load()
	out := make(map[string][]Rule, len(m))
	for b, rs := range m {
		out[b] = append([]Rule(nil), rs...)
	}
	return out
}

// Match returns the ARNs of the targets that receive an event named name
// on bucket/key: each at most once, in the order their first matching rule
// appears. dst is reused. Rules with object filters do not match: use
// MatchRecord for those.
func (s *Set) Match(dst []string, bucket, key string, name event.Name) []string {
	return s.MatchRecord(dst, bucket, key, name, nil)
}

// MatchRecord is Match for an event whose record's JSON is record: rules
// with object filters read it (parsed once, and only if such a rule is
// reached).
func (s *Set) MatchRecord(dst []string, bucket, key string, name event.Name, record []byte) []string {
	dst = dst[:0]
	rs := (*s.m.Load())[bucket]
	var obj func() *Object
	if record != nil {
		var o *Object
		obj = func() *Object {
			if o == nil {
				o = ObjectOf(record)
			}
			return o
		}
	}
	for i := range rs {
		r := &rs[i]
		if !r.MatchesObject(key, name, obj) {
			continue
		}
		dup := false
		for _, a := range dst {
			if a == r.ARN {
				dup = true
				break
			}
		}
		if !dup {
			dst = append(dst, r.ARN)
		}
	}
	return dst
}

// The S3 NotificationConfiguration document.
type xmlConfig struct {
	XMLName  xml.Name   `xml:"NotificationConfiguration"`
	XMLNS    string     `xml:"xmlns,attr,omitempty"`
	Queues   []xmlQueue `xml:"QueueConfiguration"`
	Topics   []struct{} `xml:"TopicConfiguration"`
	Lambdas  []struct{} `xml:"CloudFunctionConfiguration"`
	EventBus *struct{}  `xml:"EventBridgeConfiguration"`
}

type xmlQueue struct {
	ID     string     `xml:"Id,omitempty"`
	Queue  string     `xml:"Queue"`
	Events []string   `xml:"Event"`
	Filter *xmlFilter `xml:"Filter,omitempty"`
}

// xmlFilter is S3's key filter with Ceph's metadata and tag extensions,
// and the relay's own S3Object extension for size and content type.
type xmlFilter struct {
	Rules    []xmlFilterRule `xml:"S3Key>FilterRule,omitempty"`
	Metadata []xmlFilterRule `xml:"S3Metadata>FilterRule,omitempty"`
	Tags     []xmlFilterRule `xml:"S3Tags>FilterRule,omitempty"`
	Object   []xmlFilterRule `xml:"S3Object>FilterRule,omitempty"`
}

type xmlFilterRule struct {
	Name  string `xml:"Name"`
	Value string `xml:"Value"`
}

// ParseXML parses an S3 NotificationConfiguration document into rules.
// Only QueueConfiguration entries are supported: the relay's targets are
// queues in S3's terms.
func ParseXML(data []byte) ([]Rule, error) {
	var c xmlConfig
	if err := xml.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("rules: malformed NotificationConfiguration: %w", err)
	}
	if len(c.Topics) > 0 || len(c.Lambdas) > 0 || c.EventBus != nil {
		return nil, errors.New("rules: only QueueConfiguration is supported (no TopicConfiguration, CloudFunctionConfiguration or EventBridgeConfiguration)")
	}
	var out []Rule
	for i, q := range c.Queues {
		r := Rule{ID: q.ID, ARN: strings.TrimSpace(q.Queue)}
		if len(q.Events) == 0 {
			// S3 requires one Event or more; only Go-built rules default.
			return nil, fmt.Errorf("rules: QueueConfiguration %d: no events (S3 requires an Event)", i+1)
		}
		for _, e := range q.Events {
			r.Events = append(r.Events, event.Name(strings.TrimSpace(e)))
		}
		if q.Filter != nil {
			if err := r.parseXMLFilter(q.Filter); err != nil {
				return nil, fmt.Errorf("rules: QueueConfiguration %d: %w", i+1, err)
			}
		}
		n, err := r.Normalize()
		if err != nil {
			return nil, fmt.Errorf("rules: QueueConfiguration %d: %w", i+1, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// MarshalXML returns rules as an S3 NotificationConfiguration document.
func MarshalXML(rs []Rule) []byte {
	c := xmlConfig{XMLNS: "http://s3.amazonaws.com/doc/2006-03-01/"}
	for _, r := range rs {
		q := xmlQueue{ID: r.ID, Queue: r.ARN}
		for _, e := range r.Events {
			q.Events = append(q.Events, string(e))
		}
		q.Filter = r.xmlFilter()
		c.Queues = append(c.Queues, q)
	}
	b, _ := xml.MarshalIndent(c, "", "  ")
	return append([]byte(xml.Header), b...)
}

// ARNs returns the distinct ARNs rs name, sorted.
func ARNs(rs []Rule) []string {
	m := map[string]bool{}
	for _, r := range rs {
		m[r.ARN] = true
	}
	out := make([]string, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

package rules

import (
	"fmt"
	"net"
	"strings"
)

// CheckBucketName reports whether name is a valid S3 bucket name: 3 to 63
// characters of lowercase letters, digits, dots and hyphens, beginning and
// ending with a letter or a digit, without two adjacent dots and not
// written as an IP address. The error names the bucket and the rule it
// breaks.
func CheckBucketName(name string) error {
	bad := func(why string) error { return fmt.Errorf("rules: invalid bucket name %q: %s", name, why) }
	if len(name) < 3 || len(name) > 63 {
		return bad("must be 3 to 63 characters long")
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return bad(fmt.Sprintf("%q is not allowed (lowercase letters, digits, dots and hyphens only)", c))
		}
	}
	if !alnum(name[0]) || !alnum(name[len(name)-1]) {
		return bad("must begin and end with a lowercase letter or a digit")
	}
	if strings.Contains(name, "..") {
		return bad("must not contain two adjacent dots")
	}
	if net.ParseIP(name) != nil {
		return bad("must not be formatted as an IP address")
	}
	return nil
}

func alnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// Overlap reports whether a and b (normalized) select the same events
// for the same target: the same ARN, the same filters, and at least one
// event name in common (s3:ObjectCreated:* and s3:ObjectCreated:Put have
// one). A bucket configuration holding two such rules would deliver an
// event once for each, so it is refused, as MinIO refuses it.
func Overlap(a, b Rule) bool {
	if a.ARN != b.ARN || a.Filter() != b.Filter() {
		return false
	}
	for _, x := range a.Events {
		for _, y := range b.Events {
			if x.Matches(y) || y.Matches(x) {
				return true
			}
		}
	}
	return false
}

// CheckDuplicates returns an error naming the first pair of rules of rs
// that Overlap (numbered from 0), or nil.
func CheckDuplicates(rs []Rule) error {
	for i := range rs {
		for j := i + 1; j < len(rs); j++ {
			if Overlap(rs[i], rs[j]) {
				return &DuplicateError{First: i, Second: j, Rule: rs[j]}
			}
		}
	}
	return nil
}

// DuplicateError is a bucket configuration with two rules selecting the
// same events for the same target. First and Second are their indexes
// (from 0).
type DuplicateError struct {
	First, Second int
	Rule          Rule
}

func (e *DuplicateError) Error() string {
	names := make([]string, len(e.Rule.Events))
	for i, n := range e.Rule.Events {
		names[i] = string(n)
	}
	filter := e.Rule.Filter()
	if filter == "" {
		filter = "no filter"
	}
	return fmt.Sprintf("rules: duplicate rule: rule %d (numbered from 0) repeats rule %d: %s, events %s, %s",
		e.Second, e.First, e.Rule.ARN, strings.Join(names, ","), filter)
}

package rules

import (
	"errors"
	"strings"
	"testing"

	"github.com/bucketrelay/bucketrelay/event"
)

func TestCheckBucketName(t *testing.T) {
	for _, ok := range []string{"images", "my-bucket.logs", "abc", "a1b", strings.Repeat("a", 63)} {
		if err := CheckBucketName(ok); err != nil {
			t.Errorf("CheckBucketName(%q) = %v, want nil", ok, err)
		}
	}
	for name, why := range map[string]string{
		"bad bucket!":           "' ' is not allowed",
		"ab":                    "3 to 63",
		strings.Repeat("a", 64): "3 to 63",
		"Images":                "'I' is not allowed",
		"-abc":                  "begin and end",
		"abc.":                  "begin and end",
		"a..b":                  "adjacent dots",
		"192.168.1.1":           "IP address",
		"":                      "3 to 63",
	} {
		err := CheckBucketName(name)
		if err == nil || !strings.Contains(err.Error(), why) || !strings.Contains(err.Error(), "invalid bucket name") {
			t.Errorf("CheckBucketName(%q) = %v, want an error saying %q", name, err, why)
		}
	}
}

func TestCheckDuplicates(t *testing.T) {
	norm := func(r Rule) Rule {
		n, err := r.Normalize()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	const a = "arn:minio:sqs::1:webhook"
	put := norm(Rule{ARN: a, Events: []event.Name{"put"}, Suffix: ".jpg"})
	for _, c := range []struct {
		other Rule
		dup   bool
	}{
		{norm(Rule{ARN: a, Events: []event.Name{"put"}, Suffix: ".jpg"}), true},                           // the same rule twice
		{norm(Rule{ARN: a, Events: []event.Name{event.ObjectCreatedPut}, Suffix: ".jpg"}), true},          // a name the wildcard covers
		{norm(Rule{ARN: a, Events: []event.Name{"put", "delete"}, Suffix: ".jpg"}), true},                 // one event in common
		{norm(Rule{ARN: a, Events: []event.Name{"delete"}, Suffix: ".jpg"}), false},                       // other events
		{norm(Rule{ARN: a, Events: []event.Name{"put"}, Suffix: ".png"}), false},                          // another filter
		{norm(Rule{ARN: a, Events: []event.Name{"put"}}), false},                                          // no filter
		{norm(Rule{ARN: "arn:minio:sqs::2:webhook", Events: []event.Name{"put"}, Suffix: ".jpg"}), false}, // fan-out
	} {
		err := CheckDuplicates([]Rule{put, c.other})
		var de *DuplicateError
		if got := errors.As(err, &de); got != c.dup {
			t.Errorf("CheckDuplicates(put .jpg, %+v) = %v, want duplicate %v", c.other, err, c.dup)
		}
		if c.dup && (de.First != 0 || de.Second != 1 || !strings.Contains(err.Error(), a) || !strings.Contains(err.Error(), `suffix=".jpg"`)) {
			t.Errorf("duplicate error %q: want rule 1 repeating rule 0, naming the ARN and the filter", err)
		}
	}
}

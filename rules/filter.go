package rules

import (
	"fmt"
	"mime"
	"regexp"
	"sort"
	"strings"

	"github.com/tidwall/gjson"
)

// ObjectFilter selects events by what their record says of the object,
// beyond the key's prefix and suffix: a regular expression on the key, a
// size range, content types, user metadata and object tags (as Ceph's
// S3Metadata and S3Tags filters do). Every filter set must match; the zero
// value selects every object.
//
// A record that lacks what a filter looks at does not match it: delete
// records carry no size, AWS and MinIO records carry no tags.
type ObjectFilter struct {
	// KeyRegex is an RE2 regular expression the object key must match
	// (anywhere: anchor it with ^ and $ to match the whole key).
	KeyRegex string `json:"keyRegex,omitempty"`
	// MinSize and MaxSize bound the object size in bytes, inclusive.
	MinSize *int64 `json:"minSize,omitempty"`
	MaxSize *int64 `json:"maxSize,omitempty"`
	// ContentTypes are media types ("image/jpeg") or families ("image/*");
	// the object's content type must be one of them. Compared without
	// parameters and case.
	ContentTypes []string `json:"contentTypes,omitempty"`
	// Metadata are user metadata the object must carry with these values.
	// Names compare without case and with or without "x-amz-meta-".
	Metadata map[string]string `json:"metadata,omitempty"`
	// Tags are object tags the object must carry with these values.
	Tags map[string]string `json:"tags,omitempty"`

	re *regexp.Regexp // compiled KeyRegex, set by Normalize
}

// IsZero reports whether f filters nothing.
func (f *ObjectFilter) IsZero() bool {
	return f.KeyRegex == "" && f.MinSize == nil && f.MaxSize == nil && len(f.ContentTypes) == 0 && len(f.Metadata) == 0 && len(f.Tags) == 0
}

// needsObject reports whether matching needs more of the record than the
// key (the regular expression needs only the key).
func (f *ObjectFilter) needsObject() bool {
	return f.MinSize != nil || f.MaxSize != nil || len(f.ContentTypes) > 0 || len(f.Metadata) > 0 || len(f.Tags) > 0
}

// normalize checks f and compiles its expression.
func (f *ObjectFilter) normalize() error {
	if f.KeyRegex != "" {
		re, err := regexp.Compile(f.KeyRegex)
		if err != nil {
			return fmt.Errorf("keyRegex: %v", err)
		}
		f.re = re
	}
	if f.MinSize != nil && *f.MinSize < 0 {
		return fmt.Errorf("minSize: %d is negative", *f.MinSize)
	}
	if f.MaxSize != nil && *f.MaxSize < 0 {
		return fmt.Errorf("maxSize: %d is negative", *f.MaxSize)
	}
	if f.MinSize != nil && f.MaxSize != nil && *f.MinSize > *f.MaxSize {
		return fmt.Errorf("minSize %d is above maxSize %d", *f.MinSize, *f.MaxSize)
	}
	for i, ct := range f.ContentTypes {
		t := strings.ToLower(strings.TrimSpace(ct))
		if typ, sub, ok := strings.Cut(t, "/"); !ok || typ == "" || sub == "" || strings.ContainsAny(t, " ;") {
			return fmt.Errorf("contentTypes: %q is not a media type such as image/jpeg or image/*", ct)
		}
		f.ContentTypes[i] = t
	}
	if len(f.Metadata) > 0 {
		m := make(map[string]string, len(f.Metadata))
		for k, v := range f.Metadata {
			n := metaName(k)
			if n == "" {
				return fmt.Errorf("metadata: empty name")
			}
			m[n] = v
		}
		f.Metadata = m
	}
	for k := range f.Tags {
		if k == "" {
			return fmt.Errorf("tags: empty key")
		}
	}
	return nil
}

// metaName is a user metadata name as filters compare it.
func metaName(k string) string {
	k = strings.ToLower(strings.TrimSpace(k))
	return strings.TrimPrefix(k, "x-amz-meta-")
}

// matchesKey applies the key's regular expression.
func (f *ObjectFilter) matchesKey(key string) bool {
	if f.KeyRegex == "" {
		return true
	}
	if f.re == nil { // a rule built in Go and never normalized
		re, err := regexp.Compile(f.KeyRegex)
		if err != nil {
			return false
		}
		f.re = re
	}
	return f.re.MatchString(key)
}

// matchesObject applies the filters that need the record.
func (f *ObjectFilter) matchesObject(o *Object) bool {
	if o == nil {
		return false
	}
	if f.MinSize != nil || f.MaxSize != nil {
		if !o.HasSize || (f.MinSize != nil && o.Size < *f.MinSize) || (f.MaxSize != nil && o.Size > *f.MaxSize) {
			return false
		}
	}
	if len(f.ContentTypes) > 0 {
		ct := o.ContentType
		if ct == "" {
			return false
		}
		ok := false
		for _, want := range f.ContentTypes {
			if fam, found := strings.CutSuffix(want, "/*"); found {
				ok = strings.HasPrefix(ct, fam+"/")
			} else {
				ok = ct == want
			}
			if ok {
				break
			}
		}
		if !ok {
			return false
		}
	}
	for k, v := range f.Metadata {
		if got, ok := o.Metadata[k]; !ok || got != v {
			return false
		}
	}
	for k, v := range f.Tags {
		if got, ok := o.Tags[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// describe appends the filters to f as `mc events list` style key="value".
func (f *ObjectFilter) describe(out []string) []string {
	if f.KeyRegex != "" {
		out = append(out, fmt.Sprintf("regex=%q", f.KeyRegex))
	}
	if f.MinSize != nil {
		out = append(out, fmt.Sprintf("minSize=%d", *f.MinSize))
	}
	if f.MaxSize != nil {
		out = append(out, fmt.Sprintf("maxSize=%d", *f.MaxSize))
	}
	for _, ct := range f.ContentTypes {
		out = append(out, fmt.Sprintf("contentType=%q", ct))
	}
	for _, k := range sortedKeys(f.Metadata) {
		out = append(out, fmt.Sprintf("metadata.%s=%q", k, f.Metadata[k]))
	}
	for _, k := range sortedKeys(f.Tags) {
		out = append(out, fmt.Sprintf("tag.%s=%q", k, f.Tags[k]))
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Object is what the filters read of a record's s3.object.
type Object struct {
	// Size and HasSize: s3.object.size, when the record has it.
	Size    int64
	HasSize bool
	// ContentType: s3.object.contentType, else the content-type user
	// metadata MinIO records carry; lower case, without parameters.
	ContentType string
	// Metadata: user metadata by metaName (MinIO's userMetadata object or
	// Ceph's metadata list of {key, val}).
	Metadata map[string]string
	// Tags: object tags (Ceph's tags list of {key, val}, or an object).
	Tags map[string]string
}

// ObjectOf reads the filterable fields of a record's JSON.
func ObjectOf(record []byte) *Object {
	f := gjson.GetManyBytes(record, "s3.object.size", "s3.object.contentType", "s3.object.userMetadata", "s3.object.metadata", "s3.object.tags")
	o := &Object{}
	if f[0].Type == gjson.Number {
		o.Size, o.HasSize = f[0].Int(), true
	}
	o.Metadata = pairs(f[2], metaName)
	for k, v := range pairs(f[3], metaName) {
		if o.Metadata == nil {
			o.Metadata = map[string]string{}
		}
		o.Metadata[k] = v
	}
	o.Tags = pairs(f[4], func(s string) string { return s })
	ct := f[1].String()
	if ct == "" {
		ct = o.Metadata["content-type"]
	}
	if ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err == nil {
			ct = mt
		}
		o.ContentType = strings.ToLower(ct)
	}
	return o
}

// pairs reads {"k":"v",…} or [{"key":"k","val":"v"},…] (Ceph's form).
func pairs(v gjson.Result, name func(string) string) map[string]string {
	var m map[string]string
	add := func(k, val string) {
		if m == nil {
			m = map[string]string{}
		}
		m[name(k)] = val
	}
	switch {
	case v.IsObject():
		v.ForEach(func(k, val gjson.Result) bool { add(k.String(), val.String()); return true })
	case v.IsArray():
		v.ForEach(func(_, e gjson.Result) bool {
			val := e.Get("val")
			if !val.Exists() {
				val = e.Get("value")
			}
			add(e.Get("key").String(), val.String())
			return true
		})
	}
	return m
}

// parseXMLFilter reads a QueueConfiguration's Filter into r.
func (r *Rule) parseXMLFilter(f *xmlFilter) error {
	for _, fr := range f.Rules {
		switch strings.ToLower(fr.Name) {
		case "prefix":
			if r.Prefix != "" {
				return fmt.Errorf("more than one prefix filter")
			}
			r.Prefix = fr.Value
		case "suffix":
			if r.Suffix != "" {
				return fmt.Errorf("more than one suffix filter")
			}
			r.Suffix = fr.Value
		case "regex":
			if r.KeyRegex != "" {
				return fmt.Errorf("more than one regex filter")
			}
			r.KeyRegex = fr.Value
		default:
			return fmt.Errorf("S3Key filter rule name %q is not prefix, suffix or regex", fr.Name)
		}
	}
	for _, fr := range f.Metadata {
		if r.Metadata == nil {
			r.Metadata = map[string]string{}
		}
		r.Metadata[fr.Name] = fr.Value
	}
	for _, fr := range f.Tags {
		if r.Tags == nil {
			r.Tags = map[string]string{}
		}
		r.Tags[fr.Name] = fr.Value
	}
	for _, fr := range f.Object {
		switch strings.ToLower(fr.Name) {
		case "min-size", "max-size":
			var n int64
			if _, err := fmt.Sscan(strings.TrimSpace(fr.Value), &n); err != nil {
				return fmt.Errorf("S3Object filter %s: %q is not a number of bytes", fr.Name, fr.Value)
			}
			if strings.EqualFold(fr.Name, "min-size") {
				r.MinSize = &n
			} else {
				r.MaxSize = &n
			}
		case "content-type":
			r.ContentTypes = append(r.ContentTypes, fr.Value)
		default:
			return fmt.Errorf("S3Object filter rule name %q is not min-size, max-size or content-type", fr.Name)
		}
	}
	return nil
}

// xmlFilter returns r's filters as XML, nil without any.
func (r *Rule) xmlFilter() *xmlFilter {
	if r.Prefix == "" && r.Suffix == "" && r.ObjectFilter.IsZero() {
		return nil
	}
	f := &xmlFilter{}
	if r.Prefix != "" {
		f.Rules = append(f.Rules, xmlFilterRule{"prefix", r.Prefix})
	}
	if r.Suffix != "" {
		f.Rules = append(f.Rules, xmlFilterRule{"suffix", r.Suffix})
	}
	if r.KeyRegex != "" {
		f.Rules = append(f.Rules, xmlFilterRule{"regex", r.KeyRegex})
	}
	for _, k := range sortedKeys(r.Metadata) {
		name := k
		if !strings.HasPrefix(strings.ToLower(k), "x-amz-meta-") && k != "content-type" {
			name = "x-amz-meta-" + k
		}
		f.Metadata = append(f.Metadata, xmlFilterRule{name, r.Metadata[k]})
	}
	for _, k := range sortedKeys(r.Tags) {
		f.Tags = append(f.Tags, xmlFilterRule{k, r.Tags[k]})
	}
	if r.MinSize != nil {
		f.Object = append(f.Object, xmlFilterRule{"min-size", fmt.Sprint(*r.MinSize)})
	}
	if r.MaxSize != nil {
		f.Object = append(f.Object, xmlFilterRule{"max-size", fmt.Sprint(*r.MaxSize)})
	}
	for _, ct := range r.ContentTypes {
		f.Object = append(f.Object, xmlFilterRule{"content-type", ct})
	}
	return f
}

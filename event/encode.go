package event

import (
	"slices"
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends the JSON encoding of r to dst. It is what
// json.Marshal produces for a Record (same fields, order and omissions;
// map keys sorted), written without reflection because Publish encodes
// every record on the ingest path. Unlike json.Marshal it does not escape
// <, > and & for HTML.
func (r *Record) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"eventVersion":`...)
	dst = appendString(dst, r.EventVersion)
	dst = append(dst, `,"eventSource":`...)
	dst = appendString(dst, r.EventSource)
	dst = append(dst, `,"awsRegion":`...)
	dst = appendString(dst, r.AwsRegion)
	dst = append(dst, `,"eventTime":`...)
	dst = appendString(dst, r.EventTime)
	dst = append(dst, `,"eventName":`...)
	dst = appendString(dst, string(r.EventName))
	dst = append(dst, `,"userIdentity":{"principalId":`...)
	dst = appendString(dst, r.UserIdentity.PrincipalID)
	dst = append(dst, `},"requestParameters":`...)
	dst = appendMap(dst, r.RequestParameters, true)
	dst = append(dst, `,"responseElements":`...)
	dst = appendMap(dst, r.ResponseElements, true)
	s := &r.S3
	dst = append(dst, `,"s3":{"s3SchemaVersion":`...)
	dst = appendString(dst, s.SchemaVersion)
	dst = append(dst, `,"configurationId":`...)
	dst = appendString(dst, s.ConfigurationID)
	dst = append(dst, `,"bucket":{"name":`...)
	dst = appendString(dst, s.Bucket.Name)
	dst = append(dst, `,"ownerIdentity":{"principalId":`...)
	dst = appendString(dst, s.Bucket.OwnerIdentity.PrincipalID)
	dst = append(dst, `},"arn":`...)
	dst = appendString(dst, s.Bucket.ARN)
	o := &s.Object
	dst = append(dst, `},"object":{"key":`...)
	dst = appendString(dst, o.Key)
	if o.Size != 0 {
		dst = append(dst, `,"size":`...)
		dst = strconv.AppendInt(dst, o.Size, 10)
	}
	if o.ETag != "" {
		dst = append(dst, `,"eTag":`...)
		dst = appendString(dst, o.ETag)
	}
	if o.ContentType != "" {
		dst = append(dst, `,"contentType":`...)
		dst = appendString(dst, o.ContentType)
	}
	if len(o.UserMetadata) > 0 {
		dst = append(dst, `,"userMetadata":`...)
		dst = appendMap(dst, o.UserMetadata, false)
	}
	if o.VersionID != "" {
		dst = append(dst, `,"versionId":`...)
		dst = appendString(dst, o.VersionID)
	}
	dst = append(dst, `,"sequencer":`...)
	dst = appendString(dst, o.Sequencer)
	dst = append(dst, "}}"...)
	if r.Source != nil {
		dst = append(dst, `,"source":{"host":`...)
		dst = appendString(dst, r.Source.Host)
		dst = append(dst, `,"port":`...)
		dst = appendString(dst, r.Source.Port)
		dst = append(dst, `,"userAgent":`...)
		dst = appendString(dst, r.Source.UserAgent)
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// appendMap appends m with sorted keys; a nil map is null when nullable,
// as encoding/json writes it.
func appendMap(dst []byte, m map[string]string, nullable bool) []byte {
	if m == nil && nullable {
		return append(dst, "null"...)
	}
	dst = append(dst, '{')
	switch len(m) {
	case 0:
	case 1:
		for k, v := range m {
			dst = appendString(dst, k)
			dst = append(dst, ':')
			dst = appendString(dst, v)
		}
	default:
		var small [8]string // most maps of a record are this small: no allocation
		keys := small[:0]
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, k)
			dst = append(dst, ':')
			dst = appendString(dst, m[k])
		}
	}
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// plainRun returns the index after the run of 8-byte words of s from i in
// which no byte needs escaping in JSON or a look at UTF-8: none is a control
// character, '"', '\\' or above 0x7f (the SWAR tests for a zero byte and
// for a byte below 0x20).
func plainRun(s string, i int) int {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(s); i += 8 {
		w := s[i : i+8]
		x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
			uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
		q, bs := x^(lo*'"'), x^(lo*'\\')
		if (x|(q-lo)&^q|(bs-lo)&^bs|(x-lo*0x20)&^x)&hi != 0 {
			break
		}
	}
	return i
}

// appendString appends s as a JSON string, escaping what JSON requires and
// replacing invalid UTF-8 with U+FFFD, as encoding/json does.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// Eight plain bytes at a time: most of a record is keys, names and
		// times that need no escaping.
		if i = plainRun(s, i); i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

package event

import (
	"encoding/binary"
	"math/bits"
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends the JSON encoding of r to dst: byte for byte what
// json.Marshal produces for a Record (same fields, order and omissions, map
// keys sorted, the same escapes, HTML characters included), written
// without reflection and without allocating because Publish encodes every
// record on the ingest path.
func (r *Record) AppendJSON(dst []byte) []byte {
	// Each constant carries the quotes around the strings beside it, so a
	// string costs one escape check and one copy (appendBody).
	dst = append(dst, `{"eventVersion":"`...)
	dst = appendBody(dst, r.EventVersion)
	dst = append(dst, `","eventSource":"`...)
	dst = appendBody(dst, r.EventSource)
	dst = append(dst, `","awsRegion":"`...)
	dst = appendBody(dst, r.AwsRegion)
	dst = append(dst, `","eventTime":"`...)
	dst = appendBody(dst, r.EventTime)
	dst = append(dst, `","eventName":"`...)
	dst = appendBody(dst, string(r.EventName))
	dst = append(dst, `","userIdentity":{"principalId":"`...)
	dst = appendBody(dst, r.UserIdentity.PrincipalID)
	dst = append(dst, `"},"requestParameters":`...)
	dst = appendMap(dst, r.RequestParameters, true)
	dst = append(dst, `,"responseElements":`...)
	dst = appendMap(dst, r.ResponseElements, true)
	s := &r.S3
	dst = append(dst, `,"s3":{"s3SchemaVersion":"`...)
	dst = appendBody(dst, s.SchemaVersion)
	dst = append(dst, `","configurationId":"`...)
	dst = appendBody(dst, s.ConfigurationID)
	dst = append(dst, `","bucket":{"name":"`...)
	dst = appendBody(dst, s.Bucket.Name)
	dst = append(dst, `","ownerIdentity":{"principalId":"`...)
	dst = appendBody(dst, s.Bucket.OwnerIdentity.PrincipalID)
	dst = append(dst, `"},"arn":"`...)
	dst = appendBody(dst, s.Bucket.ARN)
	o := &s.Object
	dst = append(dst, `"},"object":{"key":"`...)
	dst = appendBody(dst, o.Key)
	dst = append(dst, '"')
	if o.Size != 0 {
		dst = append(dst, `,"size":`...)
		dst = strconv.AppendInt(dst, o.Size, 10)
	}
	if o.ETag != "" {
		dst = append(dst, `,"eTag":"`...)
		dst = appendBody(dst, o.ETag)
		dst = append(dst, '"')
	}
	if o.ContentType != "" {
		dst = append(dst, `,"contentType":"`...)
		dst = appendBody(dst, o.ContentType)
		dst = append(dst, '"')
	}
	if len(o.UserMetadata) > 0 {
		dst = append(dst, `,"userMetadata":`...)
		dst = appendMap(dst, o.UserMetadata, false)
	}
	if o.VersionID != "" {
		dst = append(dst, `,"versionId":"`...)
		dst = appendBody(dst, o.VersionID)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"sequencer":"`...)
	dst = appendBody(dst, o.Sequencer)
	dst = append(dst, `"}}`...)
	if r.Source != nil {
		dst = append(dst, `,"source":{"host":"`...)
		dst = appendBody(dst, r.Source.Host)
		dst = append(dst, `","port":"`...)
		dst = appendBody(dst, r.Source.Port)
		dst = append(dst, `","userAgent":"`...)
		dst = appendBody(dst, r.Source.UserAgent)
		dst = append(dst, `"}`...)
	}
	return append(dst, '}')
}

// appendMap appends m with sorted keys; a nil map is null when nullable,
// as encoding/json writes it. The pairs are gathered once, so sorting
// reads no value back from the map.
func appendMap(dst []byte, m map[string]string, nullable bool) []byte {
	if m == nil && nullable {
		return append(dst, "null"...)
	}
	dst = append(dst, '{')
	switch len(m) {
	case 0:
	case 1:
		for k, v := range m {
			dst = append(dst, '"')
			dst = appendBody(dst, k)
			dst = append(dst, '"', ':', '"')
			dst = appendBody(dst, v)
			dst = append(dst, '"')
		}
	default:
		var small [8]pair // most maps of a record are this small: no allocation
		kv := small[:0]
		for k, v := range m {
			kv = append(kv, pair{k, v})
		}
		// Insertion sort: a record's maps hold a few keys.
		for i := 1; i < len(kv); i++ {
			for j := i; j > 0 && kv[j].k < kv[j-1].k; j-- {
				kv[j], kv[j-1] = kv[j-1], kv[j]
			}
		}
		for i := range kv {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, '"')
			dst = appendBody(dst, kv[i].k)
			dst = append(dst, '"', ':', '"')
			dst = appendBody(dst, kv[i].v)
			dst = append(dst, '"')
		}
	}
	return append(dst, '}')
}

type pair struct{ k, v string }

const hexDigits = "0123456789abcdef"

// plain[c] is true for the ASCII bytes encoding/json copies as they are:
// not a control character, '"', '\\', or one of the HTML characters <, >
// and & (it escapes those by default, and Publish stored json.Marshal's
// bytes before AppendJSON). Bytes from 0x80 are false: they need a look
// at UTF-8.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = true
	}
	for _, c := range `"\<>&` {
		t[c] = false
	}
	return t
}()

// plainPrefix returns the index of the first byte of s from i on that may
// not be plain, or len(s). It tests eight bytes at a time, since most of a
// record is keys, names and times that need no escaping: the mask flags
// bytes from 0x80, bytes below 0x20, '"' and '&' (0x22, 0x26: zero after
// setting bit 2 and an XOR), and '<', '>' and '\\' (0x3c, 0x3e, 0x5c: zero
// after setting bits 1, 5 and 6 and an XOR, which also flags '^', '|' and
// '~': the caller checks the byte). A zero-byte test may also flag bytes
// after a flagged one (a borrow runs on), never one before it, so the
// lowest flag is exact.
func plainPrefix(s string, i int) int {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(s); i += 8 {
		w := s[i : i+8]
		x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
			uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
		qa, abs := (x|lo*0x04)^(lo*'&'), (x|lo*0x62)^(lo*0x7e)
		if m := (x | (qa-lo)&^qa | (abs-lo)&^abs | (x-lo*0x20)&^x) & hi; m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	if i < len(s) && len(s) >= 8 {
		// The tail, as the last eight bytes: those before i were checked.
		x := binary.LittleEndian.Uint64([]byte(s[len(s)-8:]))
		qa, abs := (x|lo*0x04)^(lo*'&'), (x|lo*0x62)^(lo*0x7e)
		if (x|(qa-lo)&^qa|(abs-lo)&^abs|(x-lo*0x20)&^x)&hi == 0 {
			return len(s)
		}
	}
	for i < len(s) && plain[s[i]] {
		i++
	}
	return i
}

// appendString appends s as a JSON string exactly as encoding/json
// writes it (HTML escaping on): \b, \f, \n, \r, \t and \uXXXX for
// other control characters and <, > and &, U+2028 and U+2029 escaped, and
// each byte of invalid UTF-8 replaced with U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = appendBody(dst, s)
	return append(dst, '"')
}

// appendBody appends s escaped as appendString does, without the quotes.
// Most strings of a record need no escape: one check and one copy.
func appendBody(dst []byte, s string) []byte {
	if i := plainPrefix(s, 0); i < len(s) {
		return appendEscaped(dst, s, i)
	}
	return append(dst, s...)
}

// appendEscaped is appendBody's slow path, for s whose bytes before i are
// plain.
func appendEscaped(dst []byte, s string, i int) []byte {
	start := 0
	for ; ; i = plainPrefix(s, i) {
		if i >= len(s) {
			break
		}
		c := s[i]
		if plain[c] { // '^', '|' or '~'
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
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
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(dst, s[start:]...)
}

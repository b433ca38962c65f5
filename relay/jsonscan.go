package relay

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/bucketrelay/bucketrelay/event"
)

// MaxJSONDepth is how deeply arrays and objects may nest in a POST
// /v1/events body, counting the body's own object as 1 (and in a record
// given to PublishJSON, counting the record as 1). Real S3 records nest 4
// levels. Deeper input is refused by an iterative scanner before anything
// recursive reads it: a body of millions of '[' once overflowed the stack.
const MaxJSONDepth = 64

// The scanner reads a body (or one record) once, iteratively, with a stack
// of at most MaxJSONDepth levels. In that one pass it checks the JSON
// grammar and UTF-8, finds the records of the "Records" array and the spans
// of the fields routing needs, checks their types and refuses a routing
// field that appears twice (gjson would route by the first, a JSON decoder
// downstream would see the last). Nothing is copied: records are slices of
// the body.

// node is a position on a routing path: what the scanner must check and
// keep there.
type node struct {
	name     string
	kind     byte    // 'o' object, 'a' array of records, 's' string, 'n' non-negative integer
	slot     int     // for scalars: index into recordFields.raw
	path     string  // JSON path inside the record ("s3.bucket.name")
	children []*node // object members on routing paths (at most 32)
	elem     *node   // array elements
}

// Slots of the routing fields in recordFields.raw.
const (
	slotEventName = iota
	slotEventTime
	slotBucket
	slotKey
	slotSize
	nSlots
)

// recordNode describes a record; bodyNode a POST /v1/events body.
var recordNode, bodyNode = func() (*node, *node) {
	rec := &node{kind: 'o', children: []*node{
		{name: "eventName", kind: 's', slot: slotEventName, path: "eventName"},
		{name: "eventTime", kind: 's', slot: slotEventTime, path: "eventTime"},
		{name: "s3", kind: 'o', path: "s3", children: []*node{
			{name: "bucket", kind: 'o', path: "s3.bucket", children: []*node{
				{name: "name", kind: 's', slot: slotBucket, path: "s3.bucket.name"},
			}},
			{name: "object", kind: 'o', path: "s3.object", children: []*node{
				{name: "key", kind: 's', slot: slotKey, path: "s3.object.key"},
				{name: "size", kind: 'n', slot: slotSize, path: "s3.object.size"},
			}},
		}},
	}}
	body := &node{kind: 'o', children: []*node{
		{name: "Records", kind: 'a', path: "Records", elem: rec},
	}}
	return rec, body
}()

// recordFields are the raw values of a record's routing fields (nil when
// absent), strings still quoted.
type recordFields struct {
	raw [nSlots][]byte
	// newline is set when a newline separates the record's tokens (it is
	// pretty-printed; strings cannot hold a raw newline).
	newline bool
}

// str returns the string in slot i, unescaped; "" when absent.
func (f *recordFields) str(i int) string {
	v := f.raw[i]
	if len(v) < 2 {
		return ""
	}
	for _, c := range v {
		if c == '\\' {
			var s string
			json.Unmarshal(v, &s) // valid: the scanner checked it
			return s
		}
	}
	return string(v[1 : len(v)-1])
}

// appendStr appends the string in slot i, unescaped, to dst; nothing when
// absent.
func (f *recordFields) appendStr(dst []byte, i int) []byte {
	v := f.raw[i]
	if len(v) < 2 {
		return dst
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return append(dst, v[1:len(v)-1]...)
	}
	var s string
	json.Unmarshal(v, &s) // valid: the scanner checked it
	return append(dst, s...)
}

// name returns the event name in slot i: the event package's constant for
// a known name, without allocating (event.NameOf).
func (f *recordFields) name(i int) event.Name {
	v := f.raw[i]
	if len(v) < 2 {
		return ""
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return event.NameOf(v[1 : len(v)-1])
	}
	return event.Name(f.str(i))
}

// scanError is a problem the scanner found. record is the index of the
// record it is in (from 0), or -1 outside any record; field is its path
// inside the record.
type scanError struct {
	record int
	field  string
	msg    string
}

func (e *scanError) Error() string { return e.msg }

type level struct {
	node  *node  // routing node of this container, or nil
	seen  uint32 // routing members met (bit per index in node.children)
	key   [2]int // span of the member name being read (objects), for error paths
	index int    // element being read (arrays)
	array bool
}

type scanner struct {
	b     []byte
	i     int
	depth int
	stack [MaxJSONDepth + 1]level

	recDepth int // depth of the record being read; 0 outside records
	recStart int
	recIndex int
	fields   recordFields
	// onRecord is called with each record as soon as it is read, so a
	// body of a million bad records fails at the first.
	onRecord func(index int, raw []byte, f *recordFields) error
}

// scanJSON scans b, whose top value is described by root (bodyNode or
// recordNode), calling onRecord for each record. It returns the root
// level's seen bits (which routing members were present) and the first
// error, a *scanError or one returned by onRecord.
func scanJSON(b []byte, root *node, onRecord func(int, []byte, *recordFields) error) (uint32, error) {
	return new(scanner).scan(b, root, onRecord)
}

// scan is scanJSON in s's storage: a pooled batch keeps one scanner, whose
// stack (a few KiB) is then not allocated per body or per record.
func (s *scanner) scan(b []byte, root *node, onRecord func(int, []byte, *recordFields) error) (uint32, error) {
	s.b, s.i, s.depth, s.onRecord = b, 0, 0, onRecord
	s.recDepth, s.recStart, s.recIndex, s.fields = 0, 0, 0, recordFields{}
	s.stack[1].seen = 0 // read when the root is no container
	err := s.run(root)
	s.b, s.onRecord = nil, nil
	return s.stack[1].seen, err
}

func (s *scanner) run(root *node) error {
	cur := root // routing node of the value about to be read
	s.skipWS()
	for {
		if s.i >= len(s.b) {
			return s.eof()
		}
		c := s.b[s.i]
		switch {
		case c == '{' || c == '[':
			if cur != nil && (c == '{') != (cur.kind == 'o') {
				return s.typeErr(cur)
			}
			if s.depth == MaxJSONDepth {
				return s.errf(false, "JSON nested deeper than %d levels at offset %d (the relay's nesting limit)", MaxJSONDepth, s.i)
			}
			s.depth++
			s.stack[s.depth] = level{node: cur, array: c == '['}
			if cur == recordNode {
				s.recDepth, s.recStart, s.fields = s.depth, s.i, recordFields{}
				if s.depth > 1 {
					s.recIndex = s.stack[s.depth-1].index
				}
			}
			s.i++
			s.skipWS()
			if s.i < len(s.b) && s.b[s.i] == c+2 { // '}' is '{'+2, ']' is '['+2
				s.i++
				if err := s.close(); err != nil {
					return err
				}
				break
			}
			if c == '{' {
				next, err := s.member()
				if err != nil {
					return err
				}
				cur = next
			} else {
				cur = elemOf(cur)
			}
			continue
		case c == '"':
			if cur != nil && cur.kind != 's' {
				return s.typeErr(cur)
			}
			start := s.i
			if err := s.str(); err != nil {
				return err
			}
			s.keep(cur, start)
		case c == '-' || c >= '0' && c <= '9':
			if cur != nil && cur.kind != 'n' {
				return s.typeErr(cur)
			}
			start := s.i
			if err := s.number(); err != nil {
				return err
			}
			if cur != nil {
				if v, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 64); err != nil || v < 0 {
					return s.typeErr(cur)
				}
			}
			s.keep(cur, start)
		case c == 't' || c == 'f' || c == 'n':
			if cur != nil {
				return s.typeErr(cur)
			}
			if err := s.literal(); err != nil {
				return err
			}
		default:
			return s.syntax("unexpected %s", quoteByte(c))
		}
		// After a value: a separator, the end of containers, or the end.
		for {
			if s.depth == 0 {
				s.skipWS()
				if s.i != len(s.b) {
					return s.syntax("data after the top-level value")
				}
				return nil
			}
			lv := &s.stack[s.depth]
			s.skipWS()
			if s.i >= len(s.b) {
				return s.eof()
			}
			c := s.b[s.i]
			if c == ',' {
				s.i++
				s.skipWS()
				if lv.array {
					lv.index++
					cur = elemOf(lv.node)
				} else {
					next, err := s.member()
					if err != nil {
						return err
					}
					cur = next
				}
				break
			}
			if lv.array && c != ']' || !lv.array && c != '}' {
				if lv.array {
					return s.syntax("expected ',' or ']'")
				}
				return s.syntax("expected ',' or '}'")
			}
			s.i++
			if err := s.close(); err != nil {
				return err
			}
		}
	}
}

func elemOf(n *node) *node {
	if n == nil {
		return nil
	}
	return n.elem
}

// close ends the container at the top of the stack (its closing byte read).
func (s *scanner) close() error {
	if s.depth == s.recDepth {
		s.recDepth = 0
		if s.onRecord != nil {
			if err := s.onRecord(s.recIndex, s.b[s.recStart:s.i:s.i], &s.fields); err != nil {
				return err
			}
		}
	}
	s.depth--
	return nil
}

// member reads an object member's name and colon and returns the routing
// node of its value.
func (s *scanner) member() (*node, error) {
	lv := &s.stack[s.depth]
	if s.i >= len(s.b) {
		return nil, s.eof()
	}
	if s.b[s.i] != '"' {
		return nil, s.syntax("expected a member name in quotes")
	}
	start := s.i
	lv.key = [2]int{} // a bad name is reported at its object
	if err := s.str(); err != nil {
		return nil, err
	}
	name := s.b[start+1 : s.i-1]
	var next *node
	if lv.node != nil && len(lv.node.children) > 0 {
		if bytes.IndexByte(name, '\\') >= 0 {
			// Rare: an escaped name ("event\u004eame" is eventName).
			var key string
			json.Unmarshal(s.b[start:s.i], &key)
			name = []byte(key)
		}
		for j, ch := range lv.node.children {
			if ch.name == string(name) { // no allocation
				if lv.seen&(1<<j) != 0 {
					if s.recDepth == 0 {
						return nil, &scanError{record: -1, msg: fmt.Sprintf("%q appears twice", ch.name)}
					}
					return nil, &scanError{record: s.recIndex, field: ch.path, msg: "appears twice in the record"}
				}
				lv.seen |= 1 << j
				next = ch
				break
			}
		}
	}
	lv.key = [2]int{start + 1, s.i - 1}
	s.skipWS()
	if s.i >= len(s.b) {
		return nil, s.eof()
	}
	if s.b[s.i] != ':' {
		return nil, s.syntax("expected ':' after a member name")
	}
	s.i++
	s.skipWS()
	return next, nil
}

// keep stores the value that began at start if n is a routing field.
func (s *scanner) keep(n *node, start int) {
	if n != nil && s.recDepth > 0 {
		s.fields.raw[n.slot] = s.b[start:s.i:s.i]
	}
}

func (s *scanner) skipWS() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r':
			s.i++
		case '\n':
			s.i++
			s.fields.newline = true // outside records it is reset at the next
		default:
			return
		}
	}
}

// str reads a string, checking escapes, control characters and UTF-8.
func (s *scanner) str() error {
	b := s.b
	i := s.i + 1
	for i < len(b) {
		// Eight plain ASCII bytes at a time, then straight to the first
		// byte that is not: most of a record's strings need no escape and
		// no UTF-8 decoding.
		for i+8 <= len(b) {
			if m := specialBytes(binary.LittleEndian.Uint64(b[i:])); m != 0 {
				i += bits.TrailingZeros64(m) / 8
				break
			}
			i += 8
		}
		if i >= len(b) {
			break
		}
		c := b[i]
		switch {
		case c == '"':
			s.i = i + 1
			return nil
		case c == '\\':
			if i+1 >= len(b) {
				s.i = len(b)
				return s.eof()
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					s.i = len(b)
					return s.eof()
				}
				for _, h := range b[i+2 : i+6] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						s.i = i
						return s.syntax("invalid \\u escape in a string")
					}
				}
				i += 6
			default:
				s.i = i
				return s.syntax("invalid escape in a string")
			}
		case c < 0x20:
			s.i = i
			return s.syntax("control character in a string (it must be escaped)")
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				s.i = i
				return s.errf(true, "not valid UTF-8 (at offset %d)", i)
			}
			i += size
		}
	}
	s.i = len(b)
	return s.eof()
}

// specialBytes flags (high bit) the bytes of x (little-endian) that are a
// control character, '"', '\\' or above 0x7f: SWAR tests for a zero byte
// and a byte below 0x20. A test may also flag bytes after a flagged one (a
// borrow runs on), never one before it: the lowest flag is exact.
func specialBytes(x uint64) uint64 {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	q, bs := x^(lo*'"'), x^(lo*'\\')
	return (x | (q-lo)&^q | (bs-lo)&^bs | (x-lo*0x20)&^x) & hi
}

// plainWord reports whether none of the 8 bytes of x is a control
// character, '"', '\\' or above 0x7f.
func plainWord(x uint64) bool { return specialBytes(x) == 0 }

func (s *scanner) number() error {
	b, i := s.b, s.i
	digits := func() bool {
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > j
	}
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		s.i = i
		return s.syntax("invalid number")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			s.i = i
			return s.syntax("invalid number")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			s.i = i
			return s.syntax("invalid number")
		}
	}
	s.i = i
	return nil
}

func (s *scanner) literal() error {
	for _, lit := range []string{"true", "false", "null"} {
		if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
			s.i += len(lit)
			return nil
		}
	}
	return s.syntax("invalid literal (want true, false or null)")
}

func (s *scanner) typeErr(n *node) error {
	what := map[byte]string{'o': "an object", 'a': "an array", 's': "a string", 'n': "a non-negative integer"}[n.kind]
	switch {
	case n == bodyNode:
		return &scanError{record: -1, msg: `the body is not a JSON object {"Records":[…]}`}
	case n == recordNode:
		e := &scanError{msg: "is not a JSON object"}
		if s.depth > 0 {
			e.record = s.stack[s.depth].index
		}
		return e
	}
	if s.recDepth == 0 {
		return &scanError{record: -1, msg: fmt.Sprintf("%q must be %s", n.path, what)}
	}
	return &scanError{record: s.recIndex, field: n.path, msg: "must be " + what}
}

func (s *scanner) eof() error {
	return s.syntax("unexpected end of input (a missing '}', ']' or '\"'?)")
}

func (s *scanner) syntax(format string, args ...any) error {
	return s.errf(false, "malformed JSON at offset %d: %s", s.i, fmt.Sprintf(format, args...))
}

// errf returns a scanError placed in the record being read, if any. With
// here, the field is the value at the scanner's position (a string being
// read); otherwise the record as a whole is named, by position only.
func (s *scanner) errf(here bool, format string, args ...any) error {
	e := &scanError{record: -1, msg: fmt.Sprintf(format, args...)}
	if s.recDepth > 0 {
		e.record = s.recIndex
		if here {
			e.field = s.path()
		}
	}
	return e
}

// path is the JSON path, inside the current record, of the value being
// read: "s3.object.key", "requestParameters.a[2]".
func (s *scanner) path() string {
	var b strings.Builder
	for d := s.recDepth; d <= s.depth; d++ {
		lv := &s.stack[d]
		if lv.array {
			fmt.Fprintf(&b, "[%d]", lv.index)
			continue
		}
		if lv.key[1] == 0 {
			break
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		k := strings.ToValidUTF8(string(s.b[lv.key[0]:lv.key[1]]), "\uFFFD")
		if len(k) > 64 {
			k = k[:64] + "…"
		}
		b.WriteString(k)
	}
	return b.String()
}

func quoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

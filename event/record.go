package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Record is one S3 event notification record, field for field as object
// stores emit it (the "Records" array of a notification message).
type Record struct {
	EventVersion      string            `json:"eventVersion"`
	EventSource       string            `json:"eventSource"`
	AwsRegion         string            `json:"awsRegion"`
	EventTime         string            `json:"eventTime"`
	EventName         Name              `json:"eventName"`
	UserIdentity      Identity          `json:"userIdentity"`
	RequestParameters map[string]string `json:"requestParameters"`
	ResponseElements  map[string]string `json:"responseElements"`
	S3                S3                `json:"s3"`
	Source            *Source           `json:"source,omitempty"`
}

// Identity names the principal behind a request or the owner of a bucket.
type Identity struct {
	PrincipalID string `json:"principalId"`
}

// S3 is the "s3" member of a record: the bucket and the object.
type S3 struct {
	SchemaVersion   string `json:"s3SchemaVersion"`
	ConfigurationID string `json:"configurationId"`
	Bucket          Bucket `json:"bucket"`
	Object          Object `json:"object"`
}

// Bucket is the bucket an event happened in.
type Bucket struct {
	Name          string   `json:"name"`
	OwnerIdentity Identity `json:"ownerIdentity"`
	ARN           string   `json:"arn"`
}

// Object is the object an event happened to. Key is URL-encoded, as S3
// sends it.
type Object struct {
	Key          string            `json:"key"`
	Size         int64             `json:"size,omitempty"`
	ETag         string            `json:"eTag,omitempty"`
	ContentType  string            `json:"contentType,omitempty"`
	UserMetadata map[string]string `json:"userMetadata,omitempty"`
	VersionID    string            `json:"versionId,omitempty"`
	Sequencer    string            `json:"sequencer"`
}

// Source is where the request that caused the event came from.
type Source struct {
	Host      string `json:"host"`
	Port      string `json:"port"`
	UserAgent string `json:"userAgent"`
}

// Errors returned by Record.Validate (wrapped in a *FieldError).
var (
	ErrNoBucket    = errors.New("event: s3.bucket.name is empty")
	ErrNoKey       = errors.New("event: s3.object.key is empty")
	ErrNoEventName = errors.New("event: eventName is empty")
)

// FieldError is a Validate error about one field of a record. It unwraps
// to ErrNoBucket, ErrNoKey or ErrNoEventName when the field is empty.
type FieldError struct {
	// Field is the field's JSON path in the record: "s3.object.key".
	Field string
	// Msg says what is wrong with it: "is empty".
	Msg string
	// Err is the sentinel for an empty field, or nil.
	Err error
}

func (e *FieldError) Error() string { return "event: " + e.Field + " " + e.Msg }

// Unwrap returns the sentinel, if any.
func (e *FieldError) Unwrap() error { return e.Err }

// Validate reports whether r has what routing needs: a concrete event name
// this package knows (a wildcard such as s3:ObjectCreated:* names a set of
// events, not an event), a bucket name and an object key, both valid UTF-8.
// A bad eventTime is reported too, since access-format targets store it.
// Errors are *FieldError.
func (r *Record) Validate() error {
	_, err := r.ValidateTime()
	return err
}

// ValidateTime is Validate returning also the parsed eventTime (the zero
// time when it is empty), for callers that need both: the time is parsed
// once.
func (r *Record) ValidateTime() (time.Time, error) {
	switch {
	case r.EventName == "":
		return time.Time{}, &FieldError{Field: "eventName", Msg: "is empty", Err: ErrNoEventName}
	case r.EventName.IsWildcard():
		return time.Time{}, &FieldError{Field: "eventName", Msg: fmt.Sprintf("%s is a wildcard, not an event name", Quote(string(r.EventName)))}
	case !r.EventName.Known():
		return time.Time{}, &FieldError{Field: "eventName", Msg: fmt.Sprintf("%s is not an S3 event name", Quote(string(r.EventName)))}
	case r.S3.Bucket.Name == "":
		return time.Time{}, &FieldError{Field: "s3.bucket.name", Msg: "is empty", Err: ErrNoBucket}
	case !utf8.ValidString(r.S3.Bucket.Name):
		return time.Time{}, &FieldError{Field: "s3.bucket.name", Msg: "is not valid UTF-8"}
	case r.S3.Object.Key == "":
		return time.Time{}, &FieldError{Field: "s3.object.key", Msg: "is empty", Err: ErrNoKey}
	case !utf8.ValidString(r.S3.Object.Key):
		return time.Time{}, &FieldError{Field: "s3.object.key", Msg: "is not valid UTF-8"}
	case r.S3.Object.Size < 0:
		return time.Time{}, &FieldError{Field: "s3.object.size", Msg: "is negative"}
	}
	if r.EventTime == "" {
		return time.Time{}, nil
	}
	t, err := ParseTime(r.EventTime)
	if err != nil {
		return time.Time{}, &FieldError{Field: "eventTime", Msg: fmt.Sprintf("%s is not an RFC 3339 time", Quote(r.EventTime))}
	}
	return t, nil
}

// Quote returns s quoted as a Go string, shortened to its first 64 bytes:
// error messages name a bad value without echoing megabytes of it.
func Quote(s string) string {
	const max = 64
	if len(s) <= max {
		return strconv.Quote(s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + fmt.Sprintf("… (%d bytes)", len(s))
}

// ObjectKey returns the object key decoded from its URL form (S3 sends
// "my+photo.jpg" for "my photo.jpg"). A key that does not decode is
// returned as it is.
func (r *Record) ObjectKey() string {
	if strings.IndexByte(r.S3.Object.Key, '%') < 0 && strings.IndexByte(r.S3.Object.Key, '+') < 0 {
		return r.S3.Object.Key // nothing to decode: the common case, checked fast
	}
	k, err := url.QueryUnescape(r.S3.Object.Key)
	if err != nil {
		return r.S3.Object.Key
	}
	return k
}

// Key returns "bucket/object", the key namespace-format targets store the
// object's state under and the "Key" of a notification message.
func (r *Record) Key() string {
	return r.S3.Bucket.Name + "/" + r.ObjectKey()
}

// Time returns the parsed eventTime, or the zero time if it is empty or
// malformed.
func (r *Record) Time() time.Time {
	t, _ := ParseTime(r.EventTime)
	return t
}

// ParseTime parses an eventTime: RFC 3339 with or without fractional
// seconds.
func ParseTime(s string) (time.Time, error) {
	if t, ok := parseUTC(s); ok {
		return t, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

// parseUTC parses the form object stores write, "2006-01-02T15:04:05Z"
// with an optional fraction of 1 to 9 digits, to the time time.Parse
// returns for it, at a fraction of its cost (Publish parses every
// record's time). It answers false for anything else, valid or not:
// time.Parse decides those.
func parseUTC(s string) (time.Time, bool) {
	n := len(s)
	if n < len("2006-01-02T15:04:05Z") || n > len("2006-01-02T15:04:05.999999999Z") || s[n-1] != 'Z' ||
		s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	ok := true
	num := func(i, j int) int {
		x := 0
		for ; i < j; i++ {
			c := s[i] - '0'
			if c > 9 {
				ok = false
			}
			x = x*10 + int(c)
		}
		return x
	}
	year, month, day := num(0, 4), num(5, 7), num(8, 10)
	hour, min, sec := num(11, 13), num(14, 16), num(17, 19)
	nsec := 0
	if n > 20 {
		if s[19] != '.' || n == 21 {
			return time.Time{}, false
		}
		nsec = num(20, n-1)
		for range 9 - (n - 21) {
			nsec *= 10
		}
	}
	if !ok || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) || hour > 23 || min > 59 || sec > 59 {
		return time.Time{}, false
	}
	// Days from 1970-01-01 to the date (the proleptic Gregorian calendar,
	// as time.Date counts).
	y, m := int64(year), int64(month)
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + int64(day) - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	days := era*146097 + doe - 719468
	return time.Unix(days*86400+int64(hour*3600+min*60+sec), int64(nsec)).UTC(), true
}

// daysIn returns the number of days of month in year.
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// Message is the body webhook and queue targets send: the event name, the
// "bucket/object" key and the records. Object stores name the first field
// EventName; some older ones sent EventType.
type Message struct {
	EventName Name              `json:"EventName"`
	Key       string            `json:"Key"`
	Records   []json.RawMessage `json:"Records"`
}

// AppendMessage appends to dst the JSON of a Message carrying one record
// whose JSON is raw. The record bytes are copied as they are, so a record is
// never re-encoded between ingest and delivery.
func AppendMessage(dst []byte, name, key string, raw []byte) []byte {
	dst = append(dst, `{"EventName":`...)
	dst = appendJSONString(dst, name)
	dst = append(dst, `,"Key":`...)
	dst = appendJSONString(dst, key)
	dst = append(dst, `,"Records":[`...)
	dst = append(dst, raw...)
	return append(dst, "]}"...)
}

// AppendRecords appends {"Records":[raw]} to dst: the value namespace and
// access-format targets store.
func AppendRecords(dst []byte, raw []byte) []byte {
	dst = append(dst, `{"Records":[`...)
	dst = append(dst, raw...)
	return append(dst, "]}"...)
}

func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			b, _ := json.Marshal(s)
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// Normalize strips insignificant whitespace from raw JSON so stored records
// are compact; it returns raw unchanged if it is already compact or invalid.
func Normalize(raw []byte) []byte {
	if bytes.IndexAny(raw, " \n\t\r") < 0 {
		return raw
	}
	var buf bytes.Buffer
	buf.Grow(len(raw))
	if err := json.Compact(&buf, raw); err != nil {
		return raw
	}
	return buf.Bytes()
}

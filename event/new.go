package event

import (
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Defaults NewRecord fills in.
const (
	// DefaultEventVersion is the eventVersion of records NewRecord builds,
	// what MinIO sends.
	DefaultEventVersion = "2.0"
	// DefaultEventSource is the eventSource of records NewRecord builds.
	DefaultEventSource = "minio:s3"
	// SchemaVersion is the s3SchemaVersion of every S3 event record.
	SchemaVersion = "1.0"
	// DefaultConfigurationID is the s3.configurationId NewRecord uses when
	// the request names none; MinIO sends "Config".
	DefaultConfigurationID = "Config"
	// TimeFormat is how NewRecord writes eventTime: UTC with milliseconds,
	// as S3 and MinIO do.
	TimeFormat = "2006-01-02T15:04:05.000Z"
	// TaggingKey is the userMetadata key under which NewRecord carries the
	// object's tags, URL-encoded (k1=v1&k2=v2) as in the x-amz-tagging
	// header: the record format has no field of its own for them.
	TaggingKey = "X-Amz-Tagging"
)

// ObjectInfo is what a storage server knows of an object when an event
// happens to it: the input of NewRecord.
type ObjectInfo struct {
	// Bucket is the bucket's name; required.
	Bucket string
	// Key is the object's key as stored (not URL-encoded); required.
	Key string
	// Size is the object's size in bytes; omitted from the record when 0
	// (deletes).
	Size int64
	// ETag is the object's entity tag; surrounding quotes are dropped.
	ETag string
	// VersionID is the object's version; empty for unversioned buckets.
	VersionID string
	// ContentType is the object's Content-Type; it also appears in
	// userMetadata as "content-type", as MinIO sends it.
	ContentType string
	// UserMetadata are the object's user-defined metadata (x-amz-meta-*).
	UserMetadata map[string]string
	// Tags are the object's tags; see TaggingKey.
	Tags map[string]string
}

// Request is the request that caused an event. Its zero value is usable:
// every field has a default.
type Request struct {
	// Time is when the event happened; zero means now.
	Time time.Time
	// Region is the awsRegion and requestParameters.region (omitted when
	// empty); empty by default.
	Region string
	// PrincipalID is the requester (userIdentity.principalId, and
	// requestParameters.principalId when set): the access key for MinIO.
	// Empty by default.
	PrincipalID string
	// OwnerID is the bucket owner's principal; empty means PrincipalID.
	OwnerID string
	// SourceIP is the client's address, "host:port" or "host": the
	// requestParameters' sourceIPAddress and the source's host and port.
	SourceIP string
	// UserAgent is the client's User-Agent.
	UserAgent string
	// RequestID is the x-amz-request-id response element; empty means a
	// generated one (a sequencer value).
	RequestID string
	// Endpoint is the server's URL (x-minio-origin-endpoint); omitted when
	// empty.
	Endpoint string
	// ConfigurationID is s3.configurationId; empty means
	// DefaultConfigurationID.
	ConfigurationID string
	// EventSource is the eventSource; empty means DefaultEventSource.
	EventSource string
	// Sequencer orders events of one key; empty means NextSequencer().
	Sequencer string
}

// lastSeq is the last value NextSequencer returned.
var lastSeq atomic.Uint64

// NextSequencer returns a sequencer: 16 upper-case hex digits of the wall
// clock in nanoseconds, strictly greater than every value returned before
// by this process, so that comparing two sequencers as strings orders
// events of one key as S3 specifies (even if the clock steps back).
func NextSequencer() string {
	for {
		last := lastSeq.Load()
		next := max(uint64(time.Now().UnixNano()), last+1)
		if lastSeq.CompareAndSwap(last, next) {
			s := strconv.FormatUint(next, 16)
			return strings.ToUpper(strings.Repeat("0", max(16-len(s), 0)) + s)
		}
	}
}

// EncodeKey returns key URL-encoded as object stores put it in a record
// ("my photo.jpg" becomes "my+photo.jpg"); Record.ObjectKey decodes it.
func EncodeKey(key string) string { return url.QueryEscape(key) }

// NewRecord returns the record an object store emits for the event name on
// obj, caused by req: eventVersion, eventSource, awsRegion, eventTime,
// userIdentity, requestParameters and responseElements (never null),
// s3SchemaVersion "1.0", configurationId, the bucket's name, owner and ARN
// (arn:aws:s3:::BUCKET), the object's URL-encoded key, size, eTag,
// versionId, contentType, userMetadata (with tags, see TaggingKey) and a
// sequencer, and the source when the request's address or user agent is
// known.
func NewRecord(name Name, obj ObjectInfo, req Request) Record {
	t := req.Time
	if t.IsZero() {
		t = time.Now()
	}
	seq := req.Sequencer
	if seq == "" {
		seq = NextSequencer()
	}
	reqID := req.RequestID
	if reqID == "" {
		reqID = seq
	}
	owner := req.OwnerID
	if owner == "" {
		owner = req.PrincipalID
	}
	params := map[string]string{"sourceIPAddress": req.SourceIP}
	if req.PrincipalID != "" {
		params["principalId"] = req.PrincipalID
	}
	if req.Region != "" {
		params["region"] = req.Region
	}
	resp := map[string]string{"x-amz-request-id": reqID}
	if req.Endpoint != "" {
		resp["x-minio-origin-endpoint"] = req.Endpoint
	}
	var meta map[string]string
	if len(obj.UserMetadata) > 0 || obj.ContentType != "" || len(obj.Tags) > 0 {
		meta = make(map[string]string, len(obj.UserMetadata)+2)
		for k, v := range obj.UserMetadata {
			meta[k] = v
		}
		if obj.ContentType != "" {
			if _, ok := meta["content-type"]; !ok {
				meta["content-type"] = obj.ContentType
			}
		}
		if len(obj.Tags) > 0 {
			v := url.Values{}
			for k, x := range obj.Tags {
				v.Set(k, x)
			}
			meta[TaggingKey] = v.Encode()
		}
	}
	r := Record{
		EventVersion:      DefaultEventVersion,
		EventSource:       or(req.EventSource, DefaultEventSource),
		AwsRegion:         req.Region,
		EventTime:         t.UTC().Format(TimeFormat),
		EventName:         name,
		UserIdentity:      Identity{PrincipalID: req.PrincipalID},
		RequestParameters: params,
		ResponseElements:  resp,
		S3: S3{
			SchemaVersion:   SchemaVersion,
			ConfigurationID: or(req.ConfigurationID, DefaultConfigurationID),
			Bucket: Bucket{
				Name:          obj.Bucket,
				OwnerIdentity: Identity{PrincipalID: owner},
				ARN:           "arn:aws:s3:::" + obj.Bucket,
			},
			Object: Object{
				Key:          EncodeKey(obj.Key),
				Size:         obj.Size,
				ETag:         strings.Trim(obj.ETag, `"`),
				ContentType:  obj.ContentType,
				UserMetadata: meta,
				VersionID:    obj.VersionID,
				Sequencer:    seq,
			},
		},
	}
	if req.SourceIP != "" || req.UserAgent != "" {
		host, port := req.SourceIP, ""
		if h, p, err := net.SplitHostPort(req.SourceIP); err == nil {
			host, port = h, p
		}
		r.Source = &Source{Host: host, Port: port, UserAgent: req.UserAgent}
	}
	return r
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

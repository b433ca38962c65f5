package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"hash/fnv"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/johannesboyne/gofakes3"

	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/relay"
)

// publishTimeout bounds how long a request waits for room in a full log
// before it is answered 503 SlowDown.
const publishTimeout = 10 * time.Second

// maxDeleteBody bounds a multi-object delete request (S3 allows 1000 keys).
const maxDeleteBody = 2 << 20

// server is the example S3 server: gofakes3 over a backend, with the
// relay's bucket-notification API mounted and every change published to
// the relay before its response is sent.
type server struct {
	backend gofakes3.Backend
	s3      http.Handler
	relay   *relay.Relay
	region  string
	lg      *slog.Logger
	// stripes serialize changes to one key, so the order of a key's events
	// in the log is the order the backend applied them.
	stripes [64]sync.Mutex
}

func newServer(backend gofakes3.Backend, r *relay.Relay, region string, lg *slog.Logger) http.Handler {
	if lg == nil {
		lg = slog.Default()
	}
	s := &server{backend: backend, relay: r, region: region, lg: lg}
	s.s3 = gofakes3.New(backend, gofakes3.WithAutoBucket(false)).Server()
	return r.S3Handler(http.HandlerFunc(s.serve), relay.S3Options{
		BucketExists: func(_ context.Context, bucket string) (bool, error) { return backend.BucketExists(bucket) },
	})
}

// change is what a request does to objects, as far as events go.
type change struct {
	name   event.Name // "" for a multi-object delete, whose keys are read from the body
	bucket string
	key    string   // "" for a browser POST until the form is parsed
	keys   []string // the keys of a multi-object delete
}

// classify returns the change req makes, or false for requests that change
// no object (reads, bucket operations, multipart parts).
func classify(req *http.Request) (change, bool) {
	path := strings.TrimPrefix(req.URL.Path, "/")
	bucket, key, _ := strings.Cut(path, "/")
	if bucket == "" {
		return change{}, false
	}
	q := req.URL.Query()
	has := func(k string) bool { _, ok := q[k]; return ok }
	c := change{bucket: bucket, key: key}
	switch req.Method {
	case http.MethodPut:
		if key == "" || has("uploadId") || has("partNumber") || has("tagging") || has("acl") || has("retention") || has("legal-hold") {
			return c, false
		}
		c.name = event.ObjectCreatedPut
		if req.Header.Get("X-Amz-Copy-Source") != "" {
			c.name = event.ObjectCreatedCopy
		}
		return c, true
	case http.MethodPost:
		switch {
		case key != "" && has("uploadId"):
			c.name = event.ObjectCreatedCompleteMultipartUpload
			return c, true
		case key == "" && has("delete"):
			return c, true
		case key == "" && len(q) == 0:
			c.name = event.ObjectCreatedPost
			return c, true
		}
	case http.MethodDelete:
		if key != "" && !has("uploadId") && !has("tagging") {
			c.name = event.ObjectRemovedDelete
			return c, true
		}
	}
	return c, false
}

func (s *server) serve(w http.ResponseWriter, req *http.Request) {
	c, ok := classify(req)
	if !ok {
		s.s3.ServeHTTP(w, req)
		return
	}
	if c.name == "" { // multi-object delete: the keys are in the body
		body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxDeleteBody))
		if err != nil {
			s3Error(w, req, http.StatusBadRequest, "MalformedXML", "reading the body: "+err.Error())
			return
		}
		var d struct {
			Objects []struct{ Key string } `xml:"Object"`
		}
		if err := xml.Unmarshal(body, &d); err != nil {
			s3Error(w, req, http.StatusBadRequest, "MalformedXML", err.Error())
			return
		}
		for _, o := range d.Objects {
			c.keys = append(c.keys, o.Key)
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	if c.key != "" || len(c.keys) > 0 {
		unlock := s.lock(c.bucket, append(c.keys, c.key)...)
		defer unlock()
	}
	rec := newRecorder()
	s.s3.ServeHTTP(rec, req)
	if rec.status >= 300 {
		rec.sendTo(w)
		return
	}
	records := s.records(req, rec, c)
	if len(records) > 0 {
		ctx, cancel := context.WithTimeout(req.Context(), publishTimeout)
		defer cancel()
		if err := s.relay.Publish(ctx, records...); err != nil {
			// The change is made but its event is not logged: the client
			// is told the request failed, so it retries (S3 requests are
			// idempotent) and the event is logged then.
			s.lg.Error("publishing the event of a change", "bucket", c.bucket, "err", err)
			if errors.Is(err, relay.ErrFull) {
				s3Error(w, req, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate: the event log is full.")
				return
			}
			s3Error(w, req, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
			return
		}
	}
	rec.sendTo(w)
}

// records builds the event records of a change the backend has made.
func (s *server) records(req *http.Request, rec *recorder, c change) []event.Record {
	r := event.Request{
		Region: s.region, PrincipalID: accessKey(req), SourceIP: req.RemoteAddr,
		UserAgent: req.Header.Get("User-Agent"), RequestID: rec.header.Get("x-amz-request-id"),
		Endpoint: endpoint(req),
	}
	switch {
	case c.name == event.ObjectRemovedDelete:
		name := event.ObjectRemovedDelete
		if rec.header.Get("x-amz-delete-marker") == "true" {
			name = event.ObjectRemovedDeleteMarkerCreated
		}
		return []event.Record{event.NewRecord(name, event.ObjectInfo{Bucket: c.bucket, Key: c.key, VersionID: rec.header.Get("x-amz-version-id")}, r)}
	case c.name == "":
		var res struct {
			Errors []struct{ Key string } `xml:"Error"`
		}
		xml.Unmarshal(rec.body.Bytes(), &res)
		failed := map[string]bool{}
		for _, e := range res.Errors {
			failed[e.Key] = true
		}
		var out []event.Record
		for _, k := range c.keys {
			if !failed[k] {
				out = append(out, event.NewRecord(event.ObjectRemovedDelete, event.ObjectInfo{Bucket: c.bucket, Key: k}, r))
			}
		}
		return out
	}
	key := c.key
	if c.name == event.ObjectCreatedPost && req.MultipartForm != nil {
		if v := req.MultipartForm.Value["key"]; len(v) == 1 {
			key = v[0]
		}
	}
	if key == "" {
		return nil
	}
	info := event.ObjectInfo{Bucket: c.bucket, Key: key, VersionID: rec.header.Get("x-amz-version-id")}
	obj, err := s.backend.HeadObject(c.bucket, key)
	if err != nil {
		s.lg.Warn("reading a new object's metadata for its event", "bucket", c.bucket, "err", err)
	} else {
		defer obj.Contents.Close()
		info.Size = obj.Size
		info.ETag = hex.EncodeToString(obj.Hash)
		info.ContentType = obj.Metadata["Content-Type"]
		for k, v := range obj.Metadata {
			if strings.HasPrefix(k, "X-Amz-Meta-") {
				if info.UserMetadata == nil {
					info.UserMetadata = map[string]string{}
				}
				info.UserMetadata[k] = v
			}
		}
		if obj.VersionID != "" {
			info.VersionID = string(obj.VersionID)
		}
	}
	if etag := rec.header.Get("ETag"); etag != "" {
		info.ETag = etag // the multipart ETag the client was given
	} else if etag := xmlETag(rec.body.Bytes()); etag != "" {
		info.ETag = etag
	}
	return []event.Record{event.NewRecord(c.name, info, r)}
}

// xmlETag returns the ETag of a CopyObjectResult or
// CompleteMultipartUploadResult body.
func xmlETag(body []byte) string {
	var v struct{ ETag string }
	if xml.Unmarshal(body, &v) != nil {
		return ""
	}
	return v.ETag
}

// lock locks the stripes of bucket's keys in ascending order and returns
// the unlock function.
func (s *server) lock(bucket string, keys ...string) func() {
	idx := map[int]bool{}
	for _, k := range keys {
		if k == "" {
			continue
		}
		h := fnv.New32a()
		io.WriteString(h, bucket+"/"+k)
		idx[int(h.Sum32()%uint32(len(s.stripes)))] = true
	}
	order := make([]int, 0, len(idx))
	for i := range idx {
		order = append(order, i)
	}
	sort.Ints(order)
	for _, i := range order {
		s.stripes[i].Lock()
	}
	return func() {
		for _, i := range order {
			s.stripes[i].Unlock()
		}
	}
}

// accessKey returns the access key of a SigV4 or SigV2 Authorization
// header, a presigned URL or a POST form; "" for anonymous requests. The
// example checks no signature: it only names the requester in events.
func accessKey(req *http.Request) string {
	a := req.Header.Get("Authorization")
	if _, cred, ok := strings.Cut(a, "Credential="); ok {
		k, _, _ := strings.Cut(cred, "/")
		return k
	}
	if k, ok := strings.CutPrefix(a, "AWS "); ok {
		k, _, _ = strings.Cut(k, ":")
		return k
	}
	if c := req.URL.Query().Get("X-Amz-Credential"); c != "" {
		k, _, _ := strings.Cut(c, "/")
		return k
	}
	if req.MultipartForm != nil { // a browser POST, once parsed
		for f, v := range req.MultipartForm.Value {
			if strings.EqualFold(f, "x-amz-credential") && len(v) == 1 {
				k, _, _ := strings.Cut(v[0], "/")
				return k
			}
		}
	}
	return ""
}

func endpoint(req *http.Request) string {
	if req.TLS != nil {
		return "https://" + req.Host
	}
	return "http://" + req.Host
}

// recorder holds a response until its event is durable.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newRecorder() *recorder { return &recorder{header: http.Header{}} }

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

// sendTo writes the held response to w.
func (r *recorder) sendTo(w http.ResponseWriter) {
	for k, v := range r.header {
		w.Header()[k] = v
	}
	if r.status == 0 {
		r.status = http.StatusOK
	}
	w.WriteHeader(r.status)
	w.Write(r.body.Bytes())
}

// s3Error writes an S3 XML error.
func s3Error(w http.ResponseWriter, req *http.Request, status int, code, msg string) {
	id := event.NextSequencer()
	b, _ := xml.Marshal(struct {
		XMLName   xml.Name `xml:"Error"`
		Code      string
		Message   string
		Resource  string
		RequestID string `xml:"RequestId"`
	}{Code: code, Message: msg, Resource: req.URL.Path, RequestID: id})
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("x-amz-request-id", id)
	w.WriteHeader(status)
	io.WriteString(w, xml.Header)
	w.Write(b)
}

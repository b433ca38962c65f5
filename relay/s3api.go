package relay

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/rules"
)

// S3Options configures the S3 bucket-notification handler. The zero value
// is usable.
type S3Options struct {
	// BucketExists reports whether the storage server has bucket; the
	// handler answers 404 NoSuchBucket when it has not, and 500
	// InternalError when it returns an error. nil means every bucket exists.
	BucketExists func(ctx context.Context, bucket string) (bool, error)
	// Authorize, if set, is called before every notification request; an
	// error answers 403 AccessDenied with the error's text. The handler
	// checks no S3 signature itself: a server that authenticates its
	// requests does it here or before the handler.
	Authorize func(req *http.Request) error
	// RequestID returns the request's x-amz-request-id; nil means the
	// response's x-amz-request-id header if already set, else a generated
	// one (a sequencer value).
	RequestID func(req *http.Request) string
}

// maxNotificationBytes bounds a PUT ?notification body.
const maxNotificationBytes = 1 << 20

// IsS3NotificationRequest reports whether req is a request of the S3
// bucket-notification API: GET or PUT /{bucket}?notification, path style.
func IsS3NotificationRequest(req *http.Request) bool {
	if _, ok := req.URL.Query()["notification"]; !ok {
		return false
	}
	b := strings.TrimPrefix(req.URL.Path, "/")
	return b != "" && !strings.Contains(strings.TrimSuffix(b, "/"), "/")
}

// S3Handler returns an http.Handler for the S3 bucket-notification API, to
// mount in a storage server that embeds the relay:
//
//	GET /{bucket}?notification  the bucket's rules as a NotificationConfiguration
//	PUT /{bucket}?notification  replaces them (SetBucketRules); an empty
//	                            configuration removes them
//
// These are what `mc event add|list|remove` and the SDKs'
// SetBucketNotification and GetBucketNotification call. Rules name the
// relay's targets by ARN (arn:minio:sqs:REGION:ID:KIND), in QueueConfiguration
// entries. Errors are S3's XML error bodies: MalformedXML for a body that is
// not a NotificationConfiguration, InvalidArgument for an unknown ARN, event
// name or filter, NoSuchBucket when S3Options.BucketExists says so.
//
// Requests that are not notification requests (IsS3NotificationRequest)
// go to next, the server's own S3 handler; with a nil next they are
// answered 501 NotImplemented.
func (r *Relay) S3Handler(next http.Handler, opts S3Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !IsS3NotificationRequest(req) {
			if next == nil {
				s3Error(w, req, opts, http.StatusNotImplemented, "NotImplemented", "A header or query you provided implies functionality that is not implemented.")
				return
			}
			next.ServeHTTP(w, req)
			return
		}
		r.serveS3Notification(w, req, opts)
	})
}

func (r *Relay) serveS3Notification(w http.ResponseWriter, req *http.Request, opts S3Options) {
	bucket := strings.TrimSuffix(strings.TrimPrefix(req.URL.Path, "/"), "/")
	if req.Method != http.MethodGet && req.Method != http.MethodPut {
		w.Header().Set("Allow", "GET, PUT")
		s3Error(w, req, opts, http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.")
		return
	}
	if opts.Authorize != nil {
		if err := opts.Authorize(req); err != nil {
			s3Error(w, req, opts, http.StatusForbidden, "AccessDenied", err.Error())
			return
		}
	}
	if opts.BucketExists != nil {
		ok, err := opts.BucketExists(req.Context(), bucket)
		if err != nil {
			r.lg.Error("checking whether a bucket exists", "bucket", bucket, "err", err)
			s3Error(w, req, opts, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
			return
		}
		if !ok {
			s3Error(w, req, opts, http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist")
			return
		}
	}
	if req.Method == http.MethodGet {
		setRequestID(w, req, opts)
		w.Header().Set("Content-Type", "application/xml")
		w.Write(rules.MarshalXML(r.BucketRules(bucket)))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxNotificationBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s3Error(w, req, opts, http.StatusBadRequest, "MaxMessageLengthExceeded", fmt.Sprintf("Your request was too big (more than %d bytes).", maxNotificationBytes))
			return
		}
		s3Error(w, req, opts, http.StatusBadRequest, "IncompleteBody", "reading the body: "+err.Error())
		return
	}
	if err := wellFormed(body); err != nil {
		s3Error(w, req, opts, http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema: "+err.Error())
		return
	}
	rs, err := rules.ParseXML(body)
	if err != nil {
		s3Error(w, req, opts, http.StatusBadRequest, "InvalidArgument", strings.TrimPrefix(err.Error(), "rules: "))
		return
	}
	if err := r.SetBucketRules(bucket, rs); err != nil {
		switch {
		case errors.Is(err, ErrUnknownTarget):
			s3Error(w, req, opts, http.StatusBadRequest, "InvalidArgument", "A specified destination ARN does not exist or is not well-formed: "+strings.TrimPrefix(err.Error(), "relay: "))
		case strings.HasPrefix(err.Error(), "rules:"):
			s3Error(w, req, opts, http.StatusBadRequest, "InvalidArgument", strings.TrimPrefix(err.Error(), "rules: "))
		default:
			r.lg.Error("saving bucket rules", "bucket", bucket, "err", err)
			s3Error(w, req, opts, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
		}
		return
	}
	setRequestID(w, req, opts)
	w.WriteHeader(http.StatusOK)
}

// wellFormed checks that body is one well-formed XML element named
// NotificationConfiguration.
func wellFormed(body []byte) error {
	dec := xml.NewDecoder(bytes.NewReader(body))
	root := ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
	if root != "NotificationConfiguration" {
		return errors.New("the root element is not NotificationConfiguration")
	}
	return nil
}

// s3ErrorBody is S3's XML error document.
type s3ErrorBody struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	Resource  string   `xml:"Resource"`
	RequestID string   `xml:"RequestId"`
}

func setRequestID(w http.ResponseWriter, req *http.Request, opts S3Options) string {
	id := ""
	if opts.RequestID != nil {
		id = opts.RequestID(req)
	}
	if id == "" {
		id = w.Header().Get("x-amz-request-id")
	}
	if id == "" {
		id = event.NextSequencer()
	}
	w.Header().Set("x-amz-request-id", id)
	return id
}

// s3Error writes an S3 XML error response.
func s3Error(w http.ResponseWriter, req *http.Request, opts S3Options, status int, code, msg string) {
	id := setRequestID(w, req, opts)
	b, _ := xml.Marshal(s3ErrorBody{Code: code, Message: msg, Resource: req.URL.Path, RequestID: id})
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	io.WriteString(w, xml.Header)
	w.Write(b)
}

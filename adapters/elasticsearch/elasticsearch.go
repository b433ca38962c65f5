package elasticsearch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	es "github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/event"
)

// Formats of Config.Format.
const (
	FormatNamespace = string(kit.FormatNamespace)
	FormatAccess    = string(kit.FormatAccess)
)

// Limits and defaults.
const (
	// MaxIDBytes is Elasticsearch's limit on a document _id. Namespace
	// events whose "bucket/object" key is longer fail permanently.
	MaxIDBytes = 512
	// DefaultTimeout bounds one request.
	DefaultTimeout = 30 * time.Second
	// PasswordEnv is the environment variable read for the password when
	// neither Config.Password nor the URL has one.
	PasswordEnv = "RELAY_ELASTICSEARCH_PASSWORD"
)

// Config is an Elasticsearch target's entry under notify.elasticsearch.<id>.
// Field names are the seed's, plus username, password and caFile.
type Config struct {
	// Enable starts the target; a disabled target is parsed, not started.
	Enable bool `json:"enable"`
	// Format is "namespace" (the default when empty) or "access".
	Format string `json:"format"`
	// URL is the node's address, http:// or https://, optionally with
	// credentials: http://elastic:MagicWord@127.0.0.1:9200. Required.
	URL string `json:"url"`
	// Index is the index documents are written to; it is created at the
	// first send when missing. Required: an Elasticsearch index name
	// (lower case, no \ / * ? " < > | , # : or space).
	Index string `json:"index"`
	// Username and Password for basic authentication; they take
	// precedence over credentials in URL. An empty password is read from
	// the environment variable RELAY_ELASTICSEARCH_PASSWORD.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// CAFile is a PEM file of CAs to trust for https instead of the
	// system's.
	CAFile string `json:"caFile,omitempty"`
}

// Namespace reports whether the index mirrors the bucket (format
// "namespace" or empty) rather than appending (format "access").
func (c *Config) Namespace() bool { return kit.Format(c.Format).Namespace() }

// Validate checks the configuration. Errors are *kit.FieldError.
func (c *Config) Validate() error {
	if err := kit.Format(c.Format).Validate(); err != nil {
		return err
	}
	if c.URL == "" {
		return kit.Fieldf("url", "required")
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return kit.Fieldf("url", "must be an http:// or https:// URL such as http://127.0.0.1:9200")
	}
	if err := kit.RequireTLSScheme(&kit.TLSFiles{CAFile: c.CAFile}, u.Scheme == "https", "an https:// url"); err != nil {
		return err
	}
	if c.Index == "" {
		return kit.Fieldf("index", "required")
	}
	if err := checkIndexName(c.Index); err != nil {
		return kit.Fieldf("index", "%v", err)
	}
	return nil
}

func checkIndexName(name string) error {
	switch {
	case len(name) > 255:
		return fmt.Errorf("longer than 255 bytes")
	case name == "." || name == "..":
		return fmt.Errorf("%q is not an index name", name)
	case strings.ToLower(name) != name:
		return fmt.Errorf("%q must be lower case", name)
	case strings.ContainsAny(name, "\\/*?\"<>| ,#:"):
		return fmt.Errorf("%q contains one of \\ / * ? \" < > | , # : or a space", name)
	case strings.IndexAny(name[:1], "-_+") == 0:
		return fmt.Errorf("%q starts with -, _ or +", name)
	}
	return nil
}

// Target writes events to one index with the bulk API.
type Target struct {
	cfg       Config
	client    *es.Client
	hc        *http.Transport
	namespace bool
	secret    string
	lg        *slog.Logger
	ready     atomic.Bool // the index exists
}

var _ delivery.Target = (*Target)(nil)

// New returns a target for cfg. It reads the CA file but does not connect.
func New(cfg Config, lg *slog.Logger) (*Target, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if lg == nil {
		lg = slog.Default()
	}
	u, _ := url.Parse(cfg.URL)
	user, pass := "", ""
	if u.User != nil {
		user = u.User.Username()
		pass, _ = u.User.Password()
		u.User = nil
	}
	if cfg.Username != "" {
		user = cfg.Username
	}
	if cfg.Password != "" {
		pass = cfg.Password
	}
	if pass == "" {
		pass = os.Getenv(PasswordEnv)
	}
	if pass != "" && user == "" {
		user = "elastic"
	}
	tlsConf, err := (&kit.TLSFiles{CAFile: cfg.CAFile}).Config("", "")
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsConf,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: DefaultTimeout,
	}
	client, err := es.NewClient(es.Config{
		Addresses: []string{u.String()},
		Username:  user,
		Password:  pass,
		Transport: tr,
		// The delivery engine retries, with backoff and its own view of
		// which errors are worth it.
		DisableRetry: true,
	})
	if err != nil {
		return nil, kit.Fieldf("url", "%s", kit.Redact(err.Error(), pass))
	}
	return &Target{cfg: cfg, client: client, hc: tr, namespace: cfg.Namespace(), secret: pass, lg: lg}, nil
}

// Close closes idle connections.
func (t *Target) Close() error {
	t.hc.CloseIdleConnections()
	return nil
}

func (t *Target) errorf(format string, args ...any) error {
	return fmt.Errorf("elasticsearch: %s", kit.Redact(fmt.Sprintf(format, args...), t.secret))
}

// Send writes items with one bulk request. See the package comment for
// which failures are retried.
func (t *Target) Send(ctx context.Context, items []delivery.Item) error {
	if len(items) == 0 {
		return nil
	}
	if err := t.ensureIndex(ctx); err != nil {
		return err
	}
	var failed []delivery.ItemError
	body := make([]byte, 0, len(items)*(len(items[0].Record)+160))
	sent := make([]int, 0, len(items)) // bulk position → item index
	for i := range items {
		if t.namespace && items[i].Op() == event.OpNone {
			continue // access events change no object: nothing to write
		}
		var err error
		body, err = t.appendOp(body, &items[i])
		if err != nil {
			failed = append(failed, delivery.ItemError{Index: i, Err: delivery.Permanent(err)})
			continue
		}
		sent = append(sent, i)
	}
	if len(sent) == 0 {
		if len(failed) == 0 {
			return nil
		}
		return &delivery.BatchError{Failed: failed}
	}
	res, err := esapi.BulkRequest{
		Index:      t.cfg.Index,
		Body:       bytes.NewReader(body),
		FilterPath: []string{"errors", "items.*.status", "items.*.error.type", "items.*.error.reason"},
	}.Do(ctx, t.client)
	if err != nil {
		return t.errorf("bulk request: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return t.statusError("bulk request", res)
	}
	var br struct {
		Errors bool            `json:"errors"`
		Items  json.RawMessage `json:"items"` // decoded only when some failed
	}
	if err := json.NewDecoder(res.Body).Decode(&br); err != nil {
		return t.errorf("reading the bulk response: %v", err)
	}
	if br.Errors {
		var results []map[string]struct {
			Status int `json:"status"`
			Error  *struct {
				Type   string `json:"type"`
				Reason string `json:"reason"`
			} `json:"error"`
		}
		if err := json.Unmarshal(br.Items, &results); err != nil {
			return t.errorf("reading the bulk response: %v", err)
		}
		if len(results) != len(sent) {
			return t.errorf("bulk response has %d items for %d operations", len(results), len(sent))
		}
		for pos, m := range results {
			for action, r := range m {
				if r.Status >= 200 && r.Status < 300 || (action == "delete" && r.Status == http.StatusNotFound) {
					continue
				}
				reason := fmt.Sprintf("status %d", r.Status)
				if r.Error != nil {
					reason = fmt.Sprintf("%s: %s", r.Error.Type, r.Error.Reason)
				}
				i := sent[pos]
				err := t.errorf("%s %s: %s", action, items[i].Key, reason)
				if r.Status != http.StatusTooManyRequests && r.Status != http.StatusRequestTimeout && r.Status >= 400 && r.Status < 500 {
					err = delivery.Permanent(err)
				}
				failed = append(failed, delivery.ItemError{Index: i, Err: err})
			}
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return &delivery.BatchError{Failed: failed}
}

// appendOp appends one bulk operation for it to body.
func (t *Target) appendOp(body []byte, it *delivery.Item) ([]byte, error) {
	if !t.namespace {
		// The event's id as the document's: a re-sent batch (at-least-once)
		// overwrites the same documents instead of adding copies.
		if it.LogID != "" {
			body = append(body, `{"index":{"_id":"`...)
			body = it.AppendEventID(body) // hex digits, '-' and a decimal: no escaping
			body = append(body, "\"}}\n"...)
		} else {
			body = append(body, `{"index":{}}`+"\n"...)
		}
		body = append(body, `{"Records":[`...)
		body, err := appendRecord(body, it.Record)
		if err != nil {
			return body, t.errorf("%s: %v", it.Key, err)
		}
		body = append(body, `],"eventTime":"`...)
		body = kit.EventTime(it).AppendFormat(body, time.RFC3339Nano)
		return append(body, "\"}\n"...), nil
	}
	if len(it.Key) > MaxIDBytes {
		return body, t.errorf("key %.64s… is %d bytes; Elasticsearch ids are at most %d", it.Key, len(it.Key), MaxIDBytes)
	}
	if it.Op() == event.OpDelete {
		body = append(body, `{"delete":{"_id":`...)
		body = appendJSONString(body, it.Key)
		return append(body, "}}\n"...), nil
	}
	body = append(body, `{"index":{"_id":`...)
	body = appendJSONString(body, it.Key)
	body = append(body, "}}\n"...)
	body = append(body, `{"Records":[`...)
	body, err := appendRecord(body, it.Record)
	if err != nil {
		return body, t.errorf("%s: %v", it.Key, err)
	}
	return append(body, "]}\n"...), nil
}

// appendJSONString appends s as a JSON string: as it is between quotes
// when it has nothing to escape (the usual object key), else as
// encoding/json writes it. The id of every namespace operation goes
// through it: json.Marshal took an allocation and a reflection each.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendRecord appends the record on one line: a record that spans lines
// (pretty-printed) is compacted, since a bulk body is one line per
// document.
func appendRecord(body []byte, rec []byte) ([]byte, error) {
	if bytes.IndexByte(rec, '\n') < 0 && bytes.IndexByte(rec, '\r') < 0 {
		return append(body, rec...), nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, rec); err != nil {
		return body, fmt.Errorf("record is not JSON: %v", err)
	}
	return append(body, b.Bytes()...), nil
}

// ensureIndex creates the index when it is missing, once.
func (t *Target) ensureIndex(ctx context.Context) error {
	if t.ready.Load() {
		return nil
	}
	res, err := esapi.IndicesExistsRequest{Index: []string{t.cfg.Index}}.Do(ctx, t.client)
	if err != nil {
		return t.errorf("checking index %s: %v", t.cfg.Index, err)
	}
	drain(res)
	switch res.StatusCode {
	case http.StatusOK:
		t.ready.Store(true)
		return nil
	case http.StatusNotFound:
	default:
		return t.statusError("checking index "+t.cfg.Index, res)
	}
	var mapping io.Reader
	if !t.namespace {
		mapping = strings.NewReader(`{"mappings":{"properties":{"eventTime":{"type":"date_nanos"}}}}`)
	}
	res, err = esapi.IndicesCreateRequest{Index: t.cfg.Index, Body: mapping}.Do(ctx, t.client)
	if err != nil {
		return t.errorf("creating index %s: %v", t.cfg.Index, err)
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusOK {
		t.lg.Info("created index", "index", t.cfg.Index)
		t.ready.Store(true)
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	if res.StatusCode == http.StatusBadRequest && bytes.Contains(b, []byte("resource_already_exists_exception")) {
		t.ready.Store(true) // created by someone else meanwhile
		return nil
	}
	return t.classify("creating index "+t.cfg.Index, res.StatusCode, b)
}

func drain(res *esapi.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
}

func (t *Target) statusError(what string, res *esapi.Response) error {
	b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	return t.classify(what, res.StatusCode, b)
}

// classify turns a failed response into Send's error: retryable for 408,
// 429, 5xx, and 401/403/404 (credentials or an index deleted under us: an
// operator can fix them, and the events must wait); permanent for other
// 4xx, which the engine then narrows down to the bad items.
func (t *Target) classify(what string, code int, body []byte) error {
	reason := strings.TrimSpace(string(body))
	var e struct {
		Error struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Type != "" {
		reason = e.Error.Type + ": " + e.Error.Reason
	}
	err := t.errorf("%s: %d %s: %.300s", what, code, http.StatusText(code), reason)
	switch {
	case code == http.StatusNotFound:
		t.ready.Store(false)
		return err
	case code == http.StatusUnauthorized, code == http.StatusForbidden,
		code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500:
		return err
	case code >= 400:
		return delivery.Permanent(err)
	}
	return err
}

package nats

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/stan.go"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/event/cloudevent"
)

// Defaults the configuration does not expose.
const (
	// DefaultDialTimeout bounds one connection attempt.
	DefaultDialTimeout = 5 * time.Second
	// DefaultReconnectWait is the pause between reconnect attempts.
	DefaultReconnectWait = time.Second
	// DefaultAckTimeout bounds the wait for a JetStream PubAck, a streaming
	// ack or a core flush.
	DefaultAckTimeout = 10 * time.Second
	// DefaultStreamingPingInterval is the streaming ping interval in
	// seconds; the connection is dropped after DefaultStreamingPingMaxOut
	// unanswered pings.
	DefaultStreamingPingInterval = 1
	// DefaultStreamingPingMaxOut: see DefaultStreamingPingInterval.
	DefaultStreamingPingMaxOut = 3
)

// Environment variables read when the matching field is empty.
const (
	EnvPassword = "RELAY_NATS_PASSWORD"
	EnvToken    = "RELAY_NATS_TOKEN"
)

// Config is a NATS target's entry under notify.nats.<id>.
type Config struct {
	// Enable starts the target; a disabled target is parsed, not started.
	Enable bool `json:"enable"`
	// Address is the server's host:port ("0.0.0.0:4222"), or a nats:// or
	// tls:// URL; several may be given separated by commas. Required.
	Address string `json:"address"`
	// Subject is the subject events are published on. Required; no
	// wildcards.
	Subject string `json:"subject"`
	// Username and Password authenticate with user credentials. An empty
	// Password is read from RELAY_NATS_PASSWORD.
	Username string `json:"username"`
	Password string `json:"password"`
	// Token authenticates with a token; empty means RELAY_NATS_TOKEN.
	Token string `json:"token"`
	// NKeySeed is a file holding an nkey user seed ("SU…"): the client
	// signs the server's challenge with it (nats-server's authorization by
	// nkey). Empty by default; exclusive with username, token and
	// credentials.
	NKeySeed string `json:"nkeySeed,omitempty"`
	// Credentials is a credentials file (a user JWT and its nkey seed, as
	// nsc writes it) for servers in operator (JWT) mode; read again at every
	// connection, so it can be replaced in place. Empty by default;
	// exclusive with username, token and nkeySeed.
	Credentials string `json:"credentials,omitempty"`
	// Secure connects with TLS.
	Secure bool `json:"secure"`
	// PingInterval is the client's ping interval in seconds; 0 means the
	// client's default (2 minutes).
	PingInterval int64 `json:"pingInterval"`
	// Streaming selects NATS Streaming.
	Streaming StreamingConfig `json:"streaming"`
	// JetStream selects JetStream.
	JetStream JetStreamConfig `json:"jetStream"`
	// Format is the message body: "" for the guide's
	// {"EventName","Key","Records"}, "cloudevents" for a CloudEvent 1.0
	// (NATS protocol binding).
	Format kit.Format `json:"format,omitempty"`
	// CloudEventsMode is "binary" (the default for core NATS and
	// JetStream: ce-* headers, the record as the body) or "structured"
	// (the JSON event format as the body; the only mode of NATS
	// Streaming, which has no headers).
	CloudEventsMode kit.CloudEventsMode `json:"cloudeventsMode,omitempty"`
	// TLSFiles are the CA file and the client certificate: caFile,
	// clientCert and clientKey. Naming one implies TLS.
	kit.TLSFiles
}

// StreamingConfig is the "streaming" object of a NATS target.
type StreamingConfig struct {
	// Enable publishes through NATS Streaming instead of core NATS.
	Enable bool `json:"enable"`
	// ClusterID is the streaming server's cluster ID. Required when
	// enabled.
	ClusterID string `json:"clusterID"`
	// ClientID names this publisher to the streaming server; it must be
	// unique among its clients. Required when enabled.
	ClientID string `json:"clientID"`
	// Async pipelines the batch (PublishAsync); false publishes one event at
	// a time, each waiting for its ack.
	Async bool `json:"async"`
	// MaxPubAcksInflight bounds the unacknowledged async publishes; 0 means
	// the client's default (16384).
	MaxPubAcksInflight int `json:"maxPubAcksInflight"`
}

// JetStreamConfig is the "jetStream" object of a NATS target.
type JetStreamConfig struct {
	// Enable publishes through JetStream and waits for PubAcks.
	Enable bool `json:"enable"`
}

// Mode names the publishing mode: "core", "jetstream" or "streaming".
func (c *Config) Mode() string {
	switch {
	case c.Streaming.Enable:
		return "streaming"
	case c.JetStream.Enable:
		return "jetstream"
	}
	return "core"
}

var clientIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Validate checks the configuration. Errors are *kit.FieldError.
func (c *Config) Validate() error {
	if strings.TrimSpace(c.Address) == "" {
		return kit.Fieldf("address", "required")
	}
	if _, err := serverURLs(c.Address, false); err != nil {
		return kit.Fieldf("address", "%s", kit.Redact(err.Error(), c.Password, c.Token))
	}
	if c.Subject == "" {
		return kit.Fieldf("subject", "required")
	}
	if strings.ContainsAny(c.Subject, "*> \t\r\n") {
		return kit.Fieldf("subject", "must not contain wildcards or white space")
	}
	for _, tok := range strings.Split(c.Subject, ".") {
		if tok == "" {
			return kit.Fieldf("subject", "has an empty token")
		}
	}
	if c.Token != "" && c.Username != "" {
		return kit.Fieldf("token", "token and username are exclusive")
	}
	if c.Password != "" && c.Username == "" {
		return kit.Fieldf("username", "required with password")
	}
	if c.PingInterval < 0 {
		return kit.Fieldf("pingInterval", "must not be negative")
	}
	if err := c.validateAuth(); err != nil {
		return err
	}
	if err := c.TLSFiles.Validate(""); err != nil {
		return err
	}
	if err := c.Format.ValidateMessage(); err != nil {
		return err
	}
	if err := c.CloudEventsMode.Validate(!c.Streaming.Enable); err != nil {
		return err
	}
	if c.Streaming.Enable && c.JetStream.Enable {
		return kit.Fieldf("jetStream.enable", "streaming and jetStream are exclusive")
	}
	if c.Streaming.Enable {
		if c.Streaming.ClusterID == "" {
			return kit.Fieldf("streaming.clusterID", "required")
		}
		if c.Streaming.ClientID == "" {
			return kit.Fieldf("streaming.clientID", "required")
		}
		if !clientIDRe.MatchString(c.Streaming.ClientID) {
			return kit.Fieldf("streaming.clientID", "may contain only letters, digits, '-' and '_'")
		}
		if c.Streaming.MaxPubAcksInflight < 0 {
			return kit.Fieldf("streaming.maxPubAcksInflight", "must not be negative")
		}
	}
	return nil
}

// serverURLs turns the address into the client's comma-separated URL list.
func serverURLs(addr string, secure bool) (string, error) {
	var urls []string
	for _, a := range strings.Split(addr, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if !strings.Contains(a, "://") {
			if _, _, err := net.SplitHostPort(a); err != nil {
				return "", fmt.Errorf("%q is not host:port", a)
			}
			scheme := "nats://"
			if secure {
				scheme = "tls://"
			}
			a = scheme + a
		}
		urls = append(urls, a)
	}
	if len(urls) == 0 {
		return "", errors.New("no server address")
	}
	return strings.Join(urls, ","), nil
}

// Target publishes events to one subject.
type Target struct {
	cfg      Config
	lg       *slog.Logger
	url      string
	password string
	token    string
	tls      *tls.Config   // nil: plain TCP
	auth     natsgo.Option // nkey or credentials; nil: none
	// binding is the CloudEvents NATS binding in binary mode, nil for the
	// guide's body and for structured mode.
	binding *cloudevent.Binding

	mu sync.Mutex // guards the connections against Close and lost-connection callbacks
	// pub is held while a core send publishes its batch: the sends in
	// flight publish one batch after another rather than message by
	// message in turn, each of which would take the client's lock against
	// the others (measured: a third more CPU per event with 4 sends);
	// their flushes, the round trips, still overlap.
	pub    sync.Mutex
	nc     *natsgo.Conn
	jsp    *jsPublisher // JetStream mode: the connection's publisher
	sc     stan.Conn
	scLost bool
	closed bool
}

var _ delivery.Target = (*Target)(nil)

// New returns a target for cfg. It reads the TLS files but does not connect.
func New(cfg Config, lg *slog.Logger) (*Target, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if lg == nil {
		lg = slog.Default()
	}
	t := &Target{cfg: cfg, password: cfg.Password, token: cfg.Token}
	if cfg.Format.CloudEvents() && !cfg.CloudEventsMode.Structured(!cfg.Streaming.Enable) {
		t.binding = &cloudevent.NATS
	}
	if t.password == "" && cfg.Username != "" {
		t.password = os.Getenv(EnvPassword)
	}
	if t.token == "" && cfg.Username == "" && cfg.NKeySeed == "" && cfg.Credentials == "" {
		t.token = os.Getenv(EnvToken)
	}
	secure := cfg.Secure || cfg.TLSFiles.IsSet()
	if secure {
		tc, err := cfg.TLSFiles.Config("", "")
		if err != nil {
			return nil, err
		}
		t.tls = tc
	}
	t.url, _ = serverURLs(cfg.Address, secure)
	var err error
	if t.auth, err = cfg.authOption(); err != nil {
		return nil, err
	}
	t.lg = lg.With("target", "nats", "address", kit.Redact(cfg.Address, t.password, t.token), "subject", cfg.Subject, "mode", cfg.Mode())
	return t, nil
}

// Send publishes items in order; see the package comment for what each mode
// waits for.
func (t *Target) Send(ctx context.Context, items []delivery.Item) error {
	if len(items) == 0 {
		return nil
	}
	switch t.cfg.Mode() {
	case "jetstream":
		return t.sendJetStream(ctx, items)
	case "streaming":
		return t.sendStreaming(ctx, items)
	}
	return t.sendCore(ctx, items)
}

// options returns the NATS client options for this target.
func (t *Target) options() []natsgo.Option {
	opts := []natsgo.Option{
		natsgo.Name("bucketrelay"),
		natsgo.Timeout(DefaultDialTimeout),
		natsgo.MaxReconnects(-1),
		natsgo.ReconnectWait(DefaultReconnectWait),
		natsgo.ReconnectJitter(100*time.Millisecond, time.Second),
		// No reconnect buffer: a publish while disconnected fails at once
		// and the relay retries it from its log.
		natsgo.ReconnectBufSize(-1),
		natsgo.DisconnectErrHandler(func(_ *natsgo.Conn, err error) {
			if err != nil {
				t.lg.Warn("nats: disconnected", "err", t.redact(err.Error()))
			}
		}),
		natsgo.ReconnectHandler(func(*natsgo.Conn) { t.lg.Info("nats: reconnected") }),
		natsgo.ErrorHandler(func(_ *natsgo.Conn, _ *natsgo.Subscription, err error) {
			t.lg.Warn("nats: asynchronous error", "err", t.redact(err.Error()))
		}),
	}
	if t.cfg.Username != "" {
		opts = append(opts, natsgo.UserInfo(t.cfg.Username, t.password))
	}
	if t.token != "" {
		opts = append(opts, natsgo.Token(t.token))
	}
	if t.auth != nil {
		opts = append(opts, t.auth)
	}
	if t.tls != nil {
		opts = append(opts, natsgo.Secure(t.tls.Clone()))
	}
	if t.cfg.PingInterval > 0 {
		opts = append(opts, natsgo.PingInterval(time.Duration(t.cfg.PingInterval)*time.Second))
	}
	return opts
}

// conn returns the NATS connection, connecting on first use.
func (t *Target) conn() (*natsgo.Conn, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, errClosed
	}
	if t.nc != nil && !t.nc.IsClosed() {
		return t.nc, nil
	}
	t.nc = nil
	nc, err := natsgo.Connect(t.url, t.options()...)
	if err != nil {
		return nil, fmt.Errorf("nats: connecting to %s: %s", t.redact(t.cfg.Address), t.redact(err.Error()))
	}
	t.lg.Info("nats: connected", "server", nc.ConnectedUrlRedacted())
	t.nc = nc
	return nc, nil
}

var (
	errClosed  = errors.New("nats: target is closed")
	errNotSent = fmt.Errorf("nats: not sent: %w", delivery.ErrEarlierFailed)
	errResent  = fmt.Errorf("nats: sent again: %w", delivery.ErrEarlierFailed)
	// errReconnected fails the rest of a pipelined batch once the client
	// has reconnected during it: the messages published on the old
	// connection may be lost with the server that went away, and those
	// published on the new one would be stored ahead of them, out of order.
	errReconnected = errors.New("nats: not sent: the connection was remade during the batch")
)

// reconnectCount returns how often nc reconnected (0 for nil).
func reconnectCount(nc *natsgo.Conn) uint64 {
	if nc == nil {
		return 0
	}
	return nc.Stats().Reconnects
}

// connected checks that nc can publish now.
func (t *Target) connected(nc *natsgo.Conn) error {
	if s := nc.Status(); s != natsgo.CONNECTED {
		return fmt.Errorf("nats: not connected to %s (%s)", t.redact(t.cfg.Address), strings.ToLower(s.String()))
	}
	return nil
}

// sendCore publishes the batch and flushes: at-most-once.
func (t *Target) sendCore(ctx context.Context, items []delivery.Item) error {
	nc, err := t.conn()
	if err != nil {
		return err
	}
	if err := t.connected(nc); err != nil {
		return err
	}
	errs := make([]error, len(items))
	if err := t.publishCore(nc, items, errs); err != nil {
		return err
	}
	fctx, cancel := context.WithTimeout(ctx, DefaultAckTimeout)
	defer cancel()
	if err := nc.FlushWithContext(fctx); err != nil {
		return fmt.Errorf("nats: flush: %s", t.redact(err.Error()))
	}
	return ordered(errs)
}

// publishCore publishes items on nc, holding t.pub, and sets errs[i] for
// each item not published.
func (t *Target) publishCore(nc *natsgo.Conn, items []delivery.Item, errs []error) error {
	headers := nc.HeadersSupported()
	if !headers && t.binding != nil {
		return fmt.Errorf("nats: the server does not take headers (NATS 2.2 or later): cloudeventsMode binary needs them; set it to structured")
	}
	var reuse coreMsg
	t.pub.Lock()
	defer t.pub.Unlock()
	for i := range items {
		msg := reuse.next(t, items, i)
		if !headers {
			msg.Header = nil // the event's id goes without
		}
		if err := nc.PublishMsg(msg); err != nil {
			errs[i] = t.publishErr(err)
			if !delivery.IsPermanent(errs[i]) {
				for j := i + 1; j < len(items); j++ {
					errs[j] = errNotSent
				}
				return nil
			}
		}
	}
	return nil
}

// publishErr classifies an error of a publish call.
func (t *Target) publishErr(err error) error {
	e := fmt.Errorf("nats: publish: %s", t.redact(err.Error()))
	if errors.Is(err, natsgo.ErrMaxPayload) || errors.Is(err, jetstream.ErrStreamMessageExceedsMaximum) {
		return delivery.Permanent(e)
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum {
		return delivery.Permanent(e)
	}
	return e
}

// ordered turns per-item errors (nil: acknowledged) into Send's result.
// Items after the first retryable failure are reported failed too, even if
// acknowledged, so that the retry sends them again after it: the subject
// sees every event in log order, possibly twice, never out of order.
func ordered(errs []error) error {
	var failed []delivery.ItemError
	retry := false
	for i, err := range errs {
		switch {
		case err != nil:
			failed = append(failed, delivery.ItemError{Index: i, Err: err})
			if !delivery.IsPermanent(err) {
				retry = true
			}
		case retry:
			failed = append(failed, delivery.ItemError{Index: i, Err: errResent})
		}
	}
	if failed == nil {
		return nil
	}
	return &delivery.BatchError{Failed: failed}
}

// message returns it's message: the body of the target's format, the
// CloudEvents headers in binary mode, and the event's id as Nats-Msg-Id,
// by which JetStream drops a re-send of the same event within the
// stream's duplicate window (core NATS subscribers can drop duplicates by
// it too).
func (t *Target) message(it *delivery.Item) *natsgo.Msg {
	var h natsgo.Header
	set := func(k, v string) {
		if h == nil {
			h = make(natsgo.Header, 8)
		}
		h[k] = []string{v} // as the binding spells it, not canonicalised
	}
	msg := &natsgo.Msg{Subject: t.cfg.Subject}
	msg.Data, _ = t.cfg.Format.Encode(it, t.binding, set)
	if id := it.EventID(); id != "" {
		set(natsgo.MsgIdHdr, id)
	}
	msg.Header = h
	return msg
}

// coreMsg builds core NATS and JetStream messages in one message, header
// and buffer reused for every item of a send: PublishMsg copies what it
// publishes before it returns (JetStream sends publish with PublishMsg and
// a reply subject of their own, jetstream.go, and keep no message). The
// send's event ids are one string, made once per send (ids), and each
// message's Nats-Msg-Id is a slice of it: no allocation per event.
type coreMsg struct {
	msg natsgo.Msg
	hdr natsgo.Header
	buf []byte
	ids string // the send's event ids, end to end
	end []int  // end[i]: where item i's id ends in ids
}

// next returns the message of items[i], valid until the next call. The
// first call of a send builds the send's ids.
func (c *coreMsg) next(t *Target, items []delivery.Item, i int) *natsgo.Msg {
	it := &items[i]
	if t.cfg.Format.CloudEvents() {
		return t.message(it)
	}
	if c.end == nil {
		c.buildIDs(items)
	}
	c.buf = it.AppendMessage(c.buf[:0])
	c.msg = natsgo.Msg{Subject: t.cfg.Subject, Data: c.buf}
	start := 0
	if i > 0 {
		start = c.end[i-1]
	}
	if id := c.ids[start:c.end[i]]; id != "" {
		if c.hdr == nil {
			c.hdr = natsgo.Header{natsgo.MsgIdHdr: make([]string, 1)}
		}
		c.hdr[natsgo.MsgIdHdr][0] = id
		c.msg.Header = c.hdr
	}
	return &c.msg
}

// buildIDs writes the event ids of items (delivery.Item.EventID) into one
// string.
func (c *coreMsg) buildIDs(items []delivery.Item) {
	c.end = make([]int, len(items))
	var b []byte
	if len(items) > 0 {
		b = make([]byte, 0, len(items)*(len(items[0].LogID)+12))
	}
	for i := range items {
		b = items[i].AppendEventID(b)
		c.end[i] = len(b)
	}
	c.ids = string(b)
}

// ackErr classifies a failed PubAck.
func (t *Target) ackErr(err error) error {
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, natsgo.ErrNoResponders) {
		return fmt.Errorf("nats: no stream answers on subject %q (no responders): create a JetStream stream covering it: %w", t.cfg.Subject, err)
	}
	return t.publishErr(err)
}

func (t *Target) redact(s string) string { return kit.Redact(s, t.password, t.token) }

// Close closes the connections. Send waits for its acks, so nothing is in
// flight when Close is called.
func (t *Target) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	var err error
	if t.sc != nil {
		if e := t.sc.Close(); e != nil && !errors.Is(e, stan.ErrConnectionClosed) {
			err = fmt.Errorf("nats: closing streaming connection: %s", t.redact(e.Error()))
		}
		t.sc = nil
	}
	if t.jsp != nil {
		t.jsp.close()
		t.jsp = nil
	}
	if t.nc != nil {
		t.nc.Close()
		t.nc = nil
	}
	return err
}

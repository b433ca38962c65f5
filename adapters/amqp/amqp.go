package amqp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"strconv"
	"sync"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/event/cloudevent"
)

// Defaults.
const (
	// DefaultConfirmTimeout bounds the wait for the broker's confirmations
	// of one batch; past it the connection is dropped and the unconfirmed
	// items are retried.
	DefaultConfirmTimeout = 30 * time.Second
	// DefaultDialTimeout bounds connecting and the AMQP handshake.
	DefaultDialTimeout = 10 * time.Second
	// closeTimeout bounds closing a connection: the close handshake with a
	// broker that no longer answers must not block a send.
	closeTimeout = time.Second
	// ContentType is the content type of the guide's message (a CloudEvent
	// in structured mode is application/cloudevents+json).
	ContentType = kit.JSONContentType
)

// Environment variables read by New when the configuration has no
// credentials of its own.
const (
	EnvUsername = "RELAY_AMQP_USERNAME"
	EnvPassword = "RELAY_AMQP_PASSWORD"
)

// Config is an AMQP target's entry under notify.amqp.<id>. The first twelve
// fields are the seed's parameters, with the same names.
type Config struct {
	// Enable starts the target; a disabled target is parsed, not started.
	Enable bool `json:"enable"`
	// URL is the broker, amqp://user:password@host:5672/vhost or amqps://…
	// for TLS. Required.
	URL string `json:"url"`
	// Exchange is the exchange published to; empty means the default
	// exchange, which routes by queue name (RoutingKey is then the queue).
	Exchange string `json:"exchange"`
	// RoutingKey is the routing key of every message; empty by default.
	RoutingKey string `json:"routingKey"`
	// ExchangeType is the type the exchange is declared with (direct,
	// fanout, topic, headers or a plugin's x-… type). Empty means the
	// exchange must already exist: it is declared passively.
	ExchangeType string `json:"exchangeType"`
	// DeliveryMode is 0 or 1 for transient messages, 2 for persistent ones;
	// 0 (the default) sends transient messages.
	DeliveryMode uint8 `json:"deliveryMode"`
	// Mandatory asks the broker to return messages no queue takes; they are
	// then retried (see the package comment). False by default.
	Mandatory bool `json:"mandatory"`
	// Immediate is not supported by RabbitMQ 3+; true is a Validate error.
	Immediate bool `json:"immediate"`
	// Durable declares a durable exchange. False by default.
	Durable bool `json:"durable"`
	// Internal declares an internal exchange. False by default.
	Internal bool `json:"internal"`
	// NoWait declares the exchange without waiting for the broker's answer.
	// False by default.
	NoWait bool `json:"noWait"`
	// AutoDeleted declares an auto-deleted exchange. False by default.
	AutoDeleted bool `json:"autoDeleted"`

	// PublisherConfirms waits for the broker's acknowledgement of every
	// message before counting it delivered. Nil (the default) means true;
	// false trades the at-least-once guarantee for latency.
	PublisherConfirms *bool `json:"publisherConfirms,omitempty"`
	// Username and Password, if set, replace the URL's credentials. When
	// both and the URL's password are empty, RELAY_AMQP_USERNAME and
	// RELAY_AMQP_PASSWORD are used if set.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// TLSFiles are the CA file and the client certificate (amqps:// only):
	// caFile, clientCert and clientKey.
	kit.TLSFiles
	// Format is the message body: "" for the guide's
	// {"EventName","Key","Records"}, "cloudevents" for a CloudEvent 1.0
	// (AMQP protocol binding).
	Format kit.Format `json:"format,omitempty"`
	// CloudEventsMode is "binary" (the default: the attributes as
	// cloudEvents_* application properties, the record as the body) or
	// "structured" (content-type application/cloudevents+json).
	CloudEventsMode kit.CloudEventsMode `json:"cloudeventsMode,omitempty"`
}

// Confirms reports whether publisher confirms are on (the default).
func (c *Config) Confirms() bool { return c.PublisherConfirms == nil || *c.PublisherConfirms }

// Validate checks the configuration. Errors are *kit.FieldError.
func (c *Config) Validate() error {
	if c.URL == "" {
		return kit.Fieldf("url", "required")
	}
	u, err := amqp091.ParseURI(c.URL)
	if err != nil {
		// The parser's message quotes pieces of the URL, a password's among
		// them when it holds a raw '/', '#' or '?': say what is wrong
		// without it.
		return kit.Fieldf("url", "not an AMQP URI such as amqp://user:password@host:5672/vhost (percent-encode '/', '@', '#' and '?' in the user and password, or set username and password)")
	}
	if c.DeliveryMode > 2 {
		return kit.Fieldf("deliveryMode", "must be 0 or 1 (transient) or 2 (persistent), not %d", c.DeliveryMode)
	}
	if c.Immediate {
		return kit.Fieldf("immediate", "not supported by RabbitMQ 3.0 and later (the broker closes the connection); use mandatory")
	}
	if c.Exchange == "" && c.ExchangeType != "" {
		return kit.Fieldf("exchangeType", "needs an exchange (the default exchange cannot be declared)")
	}
	if err := c.TLSFiles.Validate(""); err != nil {
		return err
	}
	if u.Scheme != "amqps" {
		switch {
		case c.CAFile != "":
			return kit.Fieldf("caFile", "needs an amqps:// url")
		case c.ClientCert != "":
			return kit.Fieldf("clientCert", "needs an amqps:// url")
		}
	}
	if err := c.Format.ValidateMessage(); err != nil {
		return err
	}
	return c.CloudEventsMode.Validate(true)
}

// Target publishes events to one exchange. Send is safe for concurrent
// use: the sends in flight share one connection and one channel in
// confirm mode, each publishing its batch in order and waiting for its own
// messages' confirmations (and, with mandatory, returns), so the engine
// can keep several batches in flight (kit.Kind.InFlight).
type Target struct {
	cfg      Config
	lg       *slog.Logger
	amqpCfg  amqp091.Config
	password string // for redaction
	// binding is the CloudEvents AMQP binding in binary mode, nil for the
	// guide's body and for structured mode.
	binding *cloudevent.Binding

	mu   sync.Mutex // guards sess and connecting
	sess *session   // nil until the first Send, and after a failure
}

// session is one connection and its channel, shared by the sends in
// flight until it fails.
type session struct {
	conn    *amqp091.Connection
	ch      *amqp091.Channel
	returns chan amqp091.Return // nil without mandatory
	dead    chan struct{}       // closed when the channel or the connection closed
	reason  *amqp091.Error      // why, if the broker said; set before dead is closed

	mu       sync.Mutex
	returned map[string]amqp091.Return // by message id, until the send that published it takes it
}

// alive reports whether the session's channel and connection are open.
func (s *session) alive() bool {
	select {
	case <-s.dead:
		return false
	default:
		return !s.ch.IsClosed() && !s.conn.IsClosed()
	}
}

// maxReturned bounds the returns kept: without publisher confirms no send
// waits for its returns, so nothing takes them.
const maxReturned = 1 << 16

// collect keeps a returned message until its send takes it.
func (s *session) collect(r amqp091.Return) {
	s.mu.Lock()
	if len(s.returned) >= maxReturned {
		clear(s.returned)
	}
	s.returned[r.MessageId] = r
	s.mu.Unlock()
}

// drainReturns collects the returns already handed over.
func (s *session) drainReturns() {
	for {
		select {
		case r, ok := <-s.returns:
			if !ok {
				return
			}
			s.collect(r)
		default:
			return
		}
	}
}

// take removes and returns the return of it's message, if any.
func (s *session) take(it *delivery.Item) (amqp091.Return, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.returned) == 0 {
		return amqp091.Return{}, false // the usual case: no id to format
	}
	id := messageID(it)
	r, ok := s.returned[id]
	if ok {
		delete(s.returned, id)
	}
	return r, ok
}

var _ delivery.Target = (*Target)(nil)

// New returns a target for cfg. It reads the TLS files and the credentials
// from the environment but does not connect.
func New(cfg Config, lg *slog.Logger) (*Target, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if lg == nil {
		lg = slog.Default()
	}
	u, _ := amqp091.ParseURI(cfg.URL)
	user, pass := u.Username, u.Password
	switch {
	case cfg.Username != "" || cfg.Password != "":
		if cfg.Username != "" {
			user = cfg.Username
		}
		pass = cfg.Password
	case u.Password == "":
		if v := os.Getenv(EnvUsername); v != "" {
			user = v
		}
		if v := os.Getenv(EnvPassword); v != "" {
			pass = v
		}
	}
	t := &Target{cfg: cfg, lg: lg, password: pass}
	if cfg.Format.CloudEvents() && !cfg.CloudEventsMode.Structured(true) {
		t.binding = &cloudevent.AMQP
	}
	t.amqpCfg = amqp091.Config{
		SASL:       []amqp091.Authentication{&amqp091.PlainAuth{Username: user, Password: pass}},
		Vhost:      u.Vhost,
		Heartbeat:  10 * time.Second,
		Locale:     "en_US",
		Dial:       amqp091.DefaultDial(DefaultDialTimeout),
		Properties: amqp091.Table{"connection_name": "bucketrelay"},
	}
	if u.Scheme == "amqps" {
		tc, err := cfg.TLSFiles.Config("", u.Host)
		if err != nil {
			return nil, err
		}
		t.amqpCfg.TLSClientConfig = tc
	}
	return t, nil
}

func (t *Target) errorf(format string, args ...any) error {
	return errors.New(kit.Redact("amqp: "+fmt.Sprintf(format, args...), t.password))
}

// dial connects to the broker (TLS for amqps) and logs in; amqp091 takes
// no context, so the dial runs aside and, when ctx ends first, its
// connection is closed once it comes.
func (t *Target) dial(ctx context.Context) (*amqp091.Connection, error) {
	type dialed struct {
		c   *amqp091.Connection
		err error
	}
	res := make(chan dialed, 1)
	// amqp091 writes into Config.Properties while it dials: each dial
	// (Probe and Send may dial at once) gets its own map.
	cfg := t.amqpCfg
	cfg.Properties = maps.Clone(cfg.Properties)
	go func() {
		c, err := amqp091.DialConfig(t.cfg.URL, cfg)
		res <- dialed{c, err}
	}()
	select {
	case d := <-res:
		if d.err != nil {
			return nil, t.errorf("connecting to %s: %v", t.cfg.URL, d.err)
		}
		return d.c, nil
	case <-ctx.Done():
		go func() {
			if d := <-res; d.c != nil {
				_ = d.c.CloseDeadline(time.Now().Add(closeTimeout))
			}
		}()
		return nil, ctx.Err()
	}
}

// session returns the open session, or opens one: a connection, its
// channel in confirm mode, and the exchange declared. Concurrent sends
// wait for one connect rather than each opening a connection.
func (t *Target) session(ctx context.Context) (*session, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.sess; s != nil && s.alive() {
		return s, nil
	}
	t.resetLocked(t.sess)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	conn, err := t.dial(ctx)
	if err != nil {
		return nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		_ = conn.CloseDeadline(time.Now().Add(closeTimeout))
		return nil, t.errorf("opening a channel: %v", err)
	}
	if t.cfg.Confirms() {
		if err := ch.Confirm(false); err != nil {
			_ = conn.CloseDeadline(time.Now().Add(closeTimeout))
			return nil, t.errorf("enabling publisher confirms: %v", err)
		}
	}
	if t.cfg.Exchange != "" {
		if t.cfg.ExchangeType == "" {
			err = ch.ExchangeDeclarePassive(t.cfg.Exchange, "", false, false, false, false, nil)
		} else {
			err = ch.ExchangeDeclare(t.cfg.Exchange, t.cfg.ExchangeType, t.cfg.Durable, t.cfg.AutoDeleted, t.cfg.Internal, t.cfg.NoWait, nil)
		}
		if err != nil {
			_ = conn.CloseDeadline(time.Now().Add(closeTimeout))
			return nil, t.errorf("declaring exchange %q: %v", t.cfg.Exchange, err)
		}
	}
	s := &session{conn: conn, ch: ch, dead: make(chan struct{}), returned: map[string]amqp091.Return{}}
	var once sync.Once
	reason := func(c chan *amqp091.Error) {
		e, ok := <-c
		once.Do(func() {
			if ok && e != nil {
				s.reason = e
			}
			close(s.dead)
		})
	}
	go reason(ch.NotifyClose(make(chan *amqp091.Error, 1)))
	go reason(conn.NotifyClose(make(chan *amqp091.Error, 1)))
	if t.cfg.Mandatory {
		s.returns = ch.NotifyReturn(make(chan amqp091.Return, 256))
	}
	t.sess = s
	t.lg.Debug("amqp: connected", "exchange", t.cfg.Exchange)
	return s, nil
}

// reset drops s if it is still the target's session; the next Send
// reconnects. Sends still waiting on s fail their unconfirmed items.
func (t *Target) reset(s *session) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.resetLocked(s)
}

func (t *Target) resetLocked(s *session) {
	if s == nil || t.sess != s {
		return
	}
	_ = s.conn.CloseDeadline(time.Now().Add(closeTimeout))
	t.sess = nil
}

// Send publishes items in order and, with publisher confirms, waits for the
// broker to acknowledge them all. Items that were nacked, returned or not
// confirmed before the connection failed are reported in a
// *delivery.BatchError; all are retryable. Send is safe for concurrent
// use: each send's errors are its own items'.
func (t *Target) Send(ctx context.Context, items []delivery.Item) error {
	if len(items) == 0 {
		return nil
	}
	s, err := t.session(ctx)
	if err != nil {
		return err
	}
	ch := s.ch
	// Writes to the socket and the waits below do not take a context:
	// closing the connection unblocks them.
	stop := context.AfterFunc(ctx, func() { _ = s.conn.CloseDeadline(time.Now().Add(closeTimeout)) })
	defer stop()

	confirms := t.cfg.Confirms()
	dcs := make([]*amqp091.DeferredConfirmation, 0, len(items))
	var pubErr error
	// The client writes a message out before Publish returns: one buffer
	// holds every body of the send in turn.
	var buf []byte
	var header func(k, v string)
	var msg amqp091.Publishing
	if t.binding != nil {
		header = func(k, v string) {
			if k == t.binding.ContentType {
				return // the message's content-type property, set below
			}
			if msg.Headers == nil {
				msg.Headers = make(amqp091.Table, 8)
			}
			msg.Headers[k] = v
		}
	}
	for i := range items {
		it := &items[i]
		msg = amqp091.Publishing{
			DeliveryMode: t.cfg.DeliveryMode,
			MessageId:    messageID(it),
			Timestamp:    it.EventTime,
		}
		if t.cfg.Format.CloudEvents() {
			msg.Body, msg.ContentType = t.cfg.Format.Encode(it, t.binding, header)
		} else {
			buf = it.AppendMessage(buf[:0])
			msg.Body, msg.ContentType = buf, ContentType
		}
		dc, err := ch.PublishWithDeferredConfirm(t.cfg.Exchange, t.cfg.RoutingKey, t.cfg.Mandatory, t.cfg.Immediate, msg)
		if err != nil {
			pubErr = err
			break
		}
		dcs = append(dcs, dc)
	}
	if ctx.Err() != nil && pubErr != nil {
		pubErr = ctx.Err()
	}
	// Wait for every confirmation, collecting returned messages meanwhile
	// (of this send or another: the session keeps them by message id).
	// The broker sends a message's basic.return before its basic.ack, and
	// the client hands both over in that order, so once a message is
	// confirmed its return, if any, is collected or in the channel.
	rets := s.returns
	timer := time.NewTimer(DefaultConfirmTimeout)
	defer timer.Stop()
	timedOut := false
	for i := 0; confirms && i < len(dcs) && !timedOut; i++ {
		for waiting := true; waiting; {
			select {
			case <-dcs[i].Done():
				waiting = false
			case r, ok := <-rets:
				if !ok {
					rets = nil
					continue
				}
				s.collect(r)
			case <-timer.C:
				timedOut = true
				waiting = false
			}
		}
	}
	if rets != nil {
		s.drainReturns()
	}
	// connErr says why unconfirmed items failed; computed once.
	var whyClosed error
	connErr := func() error {
		if whyClosed != nil {
			return whyClosed
		}
		switch {
		case ctx.Err() != nil:
			whyClosed = ctx.Err()
		case timedOut:
			whyClosed = fmt.Errorf("no confirmation within %v", DefaultConfirmTimeout)
		default:
			whyClosed = errors.New("connection closed before the broker confirmed")
			select {
			case <-s.dead:
				if s.reason != nil {
					whyClosed = fmt.Errorf("broker closed the channel before confirming: %v", s.reason)
				}
			case <-time.After(50 * time.Millisecond):
			}
		}
		return whyClosed
	}
	bad := timedOut || pubErr != nil
	var failed []delivery.ItemError
	ok := 0
	for i, dc := range dcs {
		var err error
		if r, returned := s.take(&items[i]); returned {
			err = t.errorf("broker returned the message: %d %s (no queue is bound to exchange %q with key %q)", r.ReplyCode, r.ReplyText, t.cfg.Exchange, t.cfg.RoutingKey)
		} else if confirms && !dc.Acked() {
			select {
			case <-dc.Done():
				if ch.IsClosed() {
					err = t.errorf("%v", connErr())
					bad = true
				} else {
					err = t.errorf("broker nacked the message")
				}
			default:
				err = t.errorf("%v", connErr())
				bad = true
			}
		}
		if err != nil {
			failed = append(failed, delivery.ItemError{Index: i, Err: err})
		} else {
			ok++
		}
	}
	for i := len(dcs); i < len(items); i++ {
		failed = append(failed, delivery.ItemError{Index: i, Err: t.errorf("publishing: %v", pubErr)})
		bad = true
	}
	if bad || ch.IsClosed() {
		t.reset(s)
	}
	if failed == nil {
		return nil
	}
	if ok == 0 && len(failed) == len(items) {
		// Nothing went through: one error for the whole batch.
		return failed[0].Err
	}
	return &delivery.BatchError{Failed: failed}
}

// Close closes the connection.
func (t *Target) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.resetLocked(t.sess)
	return nil
}

// messageID is an item's AMQP message-id: the event's id (the same on every
// retry, for consumers that drop duplicates), or its sequence for an item
// from a log without one.
func messageID(it *delivery.Item) string {
	if id := it.EventID(); id != "" {
		return id
	}
	return strconv.FormatUint(it.Seq, 10)
}

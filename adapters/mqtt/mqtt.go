package mqtt

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
)

// Defaults.
const (
	// DefaultKeepAlive is the keep-alive interval when Config.KeepAlive is
	// empty.
	DefaultKeepAlive = 30 * time.Second
	// DefaultConnectTimeout bounds connecting to the broker.
	DefaultConnectTimeout = 10 * time.Second
	// DefaultAckTimeout bounds the wait for the broker's acknowledgements of
	// one batch; past it the connection is dropped and the unacknowledged
	// items are retried.
	DefaultAckTimeout = 30 * time.Second
	// publishWriteTimeout bounds how long one publish waits for the client's
	// writer, which stops taking messages when the connection is lost.
	publishWriteTimeout = 5 * time.Second
	// ClientIDPrefix starts the client ID generated when Config.ClientID is
	// empty: "bucketrelay-" and 16 random hex digits.
	ClientIDPrefix = "bucketrelay-"
	// EnvPassword is read by New when Config.Password is empty.
	EnvPassword = "RELAY_MQTT_PASSWORD"
	// DefaultMaxInFlight bounds the QoS 1 messages awaiting acknowledgement
	// when Config.MaxInFlight is 0.
	DefaultMaxInFlight = 4096
	// DefaultMaxInFlightQoS2 bounds the QoS 2 messages awaiting
	// acknowledgement when Config.MaxInFlight is 0: Mosquitto's default
	// max_inflight_messages. Mosquitto acknowledges, then silently drops,
	// the QoS 2 messages an MQTT 3.1.1 client sends beyond that limit.
	DefaultMaxInFlightQoS2 = 20
)

// Config is an MQTT target's entry under notify.mqtt.<id>. The first seven
// fields are the seed's parameters, with the same names.
type Config struct {
	// Enable starts the target; a disabled target is parsed, not started.
	Enable bool `json:"enable"`
	// Broker is the broker's URL: tcp://host:1883, tls://… or ssl://… for
	// TLS (port 8883 usually), ws://… or wss://… for WebSocket (the path is
	// kept). mqtt:// and mqtts:// are aliases of tcp:// and tls://.
	// Required.
	Broker string `json:"broker"`
	// Topic is the topic every event is published on. Required; it may not
	// contain the wildcards + and #.
	Topic string `json:"topic"`
	// QoS is 0 (at-most-once), 1 or 2 (at-least-once); 0 by default, as the
	// seed's parameter, though its example and the recommended value is 1.
	QoS int `json:"qos"`
	// ClientID identifies the relay to the broker; empty means
	// "bucketrelay-" and random hex digits. Two clients with the same ID
	// disconnect each other: give each target its own.
	ClientID string `json:"clientId"`
	// Username and Password authenticate to the broker, if it asks. An
	// empty Password is read from RELAY_MQTT_PASSWORD.
	Username string `json:"username"`
	Password string `json:"password"`

	// TLSFiles are the CA file and the client certificate (tls://, ssl://,
	// wss:// only): caFile, clientCert and clientKey.
	kit.TLSFiles
	// KeepAlive is the keep-alive interval, as a Go duration ("30s");
	// empty means DefaultKeepAlive.
	KeepAlive string `json:"keepAlive,omitempty"`
	// MaxInFlight bounds the messages published and not yet acknowledged
	// (QoS 1 and 2), shared by the sends in flight. 0 means DefaultMaxInFlight for QoS 1 and
	// DefaultMaxInFlightQoS2 for QoS 2; for QoS 2 it must not exceed the
	// broker's limit (Mosquitto: max_inflight_messages), which the broker
	// enforces by dropping messages it has acknowledged.
	MaxInFlight int `json:"maxInFlight,omitempty"`
	// Format is the message payload: "" for the guide's
	// {"EventName","Key","Records"}, "cloudevents" for a CloudEvent 1.0 in
	// structured mode (the MQTT binding for 3.1.1, which has no headers:
	// the event's id travels only there).
	Format kit.Format `json:"format,omitempty"`
	// CloudEventsMode is "structured" (the only mode of MQTT 3.1.1, which
	// has no user properties) or, with ProtocolVersion 5, "binary" (the
	// default there: the attributes as user properties, the record as the
	// payload).
	CloudEventsMode kit.CloudEventsMode `json:"cloudeventsMode,omitempty"`
	// ProtocolVersion is 4 (MQTT 3.1.1, the default when 0) or 5 (MQTT 5,
	// tcp:// and tls:// brokers): every message then carries the event's
	// id as the user property event-id, and CloudEvents can travel in
	// binary mode. MQTT 5 publishes one message at a time per send in
	// flight, each waiting for its acknowledgement (maxInFlight does not
	// apply).
	ProtocolVersion int `json:"protocolVersion,omitempty"`
}

// inFlight returns the effective MaxInFlight.
func (c *Config) inFlight() int {
	switch {
	case c.MaxInFlight > 0:
		return c.MaxInFlight
	case c.QoS == 2:
		return DefaultMaxInFlightQoS2
	default:
		return DefaultMaxInFlight
	}
}

var schemes = map[string]bool{"tcp": false, "mqtt": false, "ws": false, "tls": true, "ssl": true, "tcps": true, "mqtts": true, "wss": true}

// Validate checks the configuration. Errors are *kit.FieldError.
func (c *Config) Validate() error {
	if c.Broker == "" {
		return kit.Fieldf("broker", "required")
	}
	u, err := url.Parse(c.Broker)
	if err != nil {
		// The parser's message quotes pieces of the URL, a password's among
		// them: say what is wrong without it.
		return kit.Fieldf("broker", "not a URL such as tcp://host:1883 (percent-encode '/', '@', '#' and '?' in a user or password, or set username and password)")
	}
	secure, ok := schemes[u.Scheme]
	if !ok || u.Host == "" {
		return kit.Fieldf("broker", "must be a tcp://, tls://, ssl://, ws:// or wss:// URL with a host")
	}
	if c.Topic == "" {
		return kit.Fieldf("topic", "required")
	}
	if strings.ContainsAny(c.Topic, "+#\x00") {
		return kit.Fieldf("topic", "may not contain the wildcards + and #")
	}
	if c.QoS < 0 || c.QoS > 2 {
		return kit.Fieldf("qos", "must be 0, 1 or 2, not %d", c.QoS)
	}
	if len(c.ClientID) > 65535 {
		return kit.Fieldf("clientId", "too long")
	}
	if err := c.Format.ValidateMessage(); err != nil {
		return err
	}
	switch c.ProtocolVersion {
	case 0, 4:
	case 5:
		if strings.HasPrefix(u.Scheme, "ws") {
			return kit.Fieldf("protocolVersion", "5 needs a tcp://, mqtt://, tls://, ssl:// or mqtts:// broker")
		}
	default:
		return kit.Fieldf("protocolVersion", "must be 4 (MQTT 3.1.1) or 5 (MQTT 5), not %d", c.ProtocolVersion)
	}
	if err := c.CloudEventsMode.Validate(c.ProtocolVersion == 5); err != nil {
		return err
	}
	if err := c.TLSFiles.Validate(""); err != nil {
		return err
	}
	if !secure {
		switch {
		case c.CAFile != "":
			return kit.Fieldf("caFile", "needs a tls://, ssl:// or wss:// broker")
		case c.ClientCert != "":
			return kit.Fieldf("clientCert", "needs a tls://, ssl:// or wss:// broker")
		}
	}
	if c.MaxInFlight < 0 || c.MaxInFlight > 65535 {
		return kit.Fieldf("maxInFlight", "must be between 1 and 65535 (0 for the default)")
	}
	if c.KeepAlive != "" {
		if d, err := time.ParseDuration(c.KeepAlive); err != nil || d < time.Second {
			return kit.Fieldf("keepAlive", "must be a duration of at least 1s such as \"30s\"")
		}
	}
	return nil
}

// Target publishes events on one topic. Send is safe for concurrent use:
// the sends in flight share one connection, each publishing its items in
// order and waiting for its own acknowledgements, so the engine can keep
// several batches in flight (kit.Kind.InFlight). maxInFlight bounds the
// messages awaiting acknowledgement across all of them.
type Target struct {
	cfg      Config
	lg       *slog.Logger
	opts     *paho.ClientOptions
	password string

	mu     sync.Mutex // guards client, c5 and abandoned
	client paho.Client
	// abandoned, when set, is closed once a connect that a send gave up
	// half way has ended and its client is closed: the next connect waits
	// for it, because that connect could still complete at the broker
	// under the same client id and take the new client's session.
	abandoned chan struct{}
	// slots holds a token per message published and not yet acknowledged
	// (MQTT 3.1.1), up to maxInFlight, shared by the sends in flight.
	slots chan struct{}

	// MQTT 5 (ProtocolVersion 5): the connection, the TLS configuration
	// and the keep-alive it is made with.
	c5        *conn5
	tls       *tls.Config
	keepAlive time.Duration
}

var _ delivery.Target = (*Target)(nil)

// New returns a target for cfg. It reads the TLS files and the password
// from the environment but does not connect.
func New(cfg Config, lg *slog.Logger) (*Target, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if lg == nil {
		lg = slog.Default()
	}
	if cfg.ClientID == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		cfg.ClientID = ClientIDPrefix + hex.EncodeToString(b[:])
	}
	pass := cfg.Password
	if pass == "" {
		pass = os.Getenv(EnvPassword)
	}
	keepAlive := DefaultKeepAlive
	if cfg.KeepAlive != "" {
		keepAlive, _ = time.ParseDuration(cfg.KeepAlive)
	}
	broker := cfg.Broker
	if u, _ := url.Parse(broker); u.Scheme == "mqtt" || u.Scheme == "mqtts" {
		u.Scheme = map[string]string{"mqtt": "tcp", "mqtts": "tls"}[u.Scheme]
		broker = u.String()
	}
	opts := paho.NewClientOptions().
		AddBroker(broker).
		SetClientID(cfg.ClientID).
		SetUsername(cfg.Username).
		SetPassword(pass).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetKeepAlive(keepAlive).
		SetPingTimeout(10 * time.Second).
		SetConnectTimeout(DefaultConnectTimeout).
		SetWriteTimeout(publishWriteTimeout).
		SetOrderMatters(true).
		SetProtocolVersion(4)
	tc, err := cfg.TLSFiles.Config("", "")
	if err != nil {
		return nil, err
	}
	opts.SetTLSConfig(tc)
	if u, err := url.Parse(broker); err == nil {
		if dial := bufferedDial(u.Scheme); dial != nil {
			opts.SetCustomOpenConnectionFn(dial)
		}
	}
	t := &Target{cfg: cfg, lg: lg, opts: opts, password: pass, tls: tc, keepAlive: keepAlive, slots: make(chan struct{}, cfg.inFlight())}
	opts.SetConnectionLostHandler(func(_ paho.Client, err error) {
		lg.Debug("mqtt: connection lost", "err", t.redact(err.Error()))
	})
	return t, nil
}

func (t *Target) redact(s string) string { return kit.Redact(s, t.password) }

func (t *Target) errorf(format string, args ...any) error {
	return errors.New(t.redact("mqtt: " + fmt.Sprintf(format, args...)))
}

// wait waits for tok, ctx or the deadline. With a client, it also gives up
// shortly after the client's connection closed: a publish racing with the
// loss of the connection can be left with a token nothing completes.
func wait(ctx context.Context, c paho.Client, tok paho.Token, deadline <-chan time.Time) error {
	var tick <-chan time.Time
	if c != nil {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		tick = t.C
	}
	return waitTick(ctx, c, tok, deadline, tick)
}

// waitTick is wait with the ticker of a send (nil without a client): an
// acknowledgement that has come is taken without a select or a timer, and
// one still to come is waited for without a ticker of its own, so a
// send's 1,000 waits make no timer each.
func waitTick(ctx context.Context, c paho.Client, tok paho.Token, deadline, tick <-chan time.Time) error {
	if done(tok) {
		return tok.Error()
	}
	lost := 0
	for {
		select {
		case <-tok.Done():
			return tok.Error()
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return errTimeout
		case <-tick:
			if c.IsConnectionOpen() {
				lost = 0
			} else if lost++; lost >= 3 {
				return errConnLost
			}
		}
	}
}

var errConnLost = errors.New("connection lost before the broker acknowledged")

var errTimeout = errors.New("timed out")

// connect returns the connected client, or connects a new one.
// Concurrent sends wait for one connect rather than each connecting.
func (t *Target) connect(ctx context.Context) (paho.Client, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.client != nil && t.client.IsConnectionOpen() {
		return t.client, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, t.errorf("connecting to %s: %v", t.cfg.Broker, err)
	}
	t.resetLocked(t.client)
	timer := time.NewTimer(DefaultConnectTimeout + time.Second)
	defer timer.Stop()
	if t.abandoned != nil {
		select {
		case <-t.abandoned:
			t.abandoned = nil
		case <-ctx.Done():
			return nil, t.errorf("connecting to %s: %v", t.cfg.Broker, ctx.Err())
		case <-timer.C:
			return nil, t.errorf("connecting to %s: an earlier connect given up is still open", t.cfg.Broker)
		}
	}
	c := paho.NewClient(t.opts)
	tok := c.Connect()
	if err := wait(ctx, nil, tok, timer.C); err != nil {
		if ctx.Err() == nil {
			c.Disconnect(0)
			return nil, t.errorf("connecting to %s: %v", t.cfg.Broker, err)
		}
		// Given up half way: close the client once its connect ended,
		// without holding this send back.
		ch := make(chan struct{})
		t.abandoned = ch
		go func() {
			defer close(ch)
			tok.WaitTimeout(DefaultConnectTimeout + time.Second)
			c.Disconnect(0)
		}()
		return nil, t.errorf("connecting to %s: %v", t.cfg.Broker, err)
	}
	t.client = c
	t.lg.Debug("mqtt: connected", "broker", kit.Redact(t.cfg.Broker))
	return c, nil
}

// reset drops c if it is still the target's client; the next Send
// connects a new one.
func (t *Target) reset(c paho.Client) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.resetLocked(c)
}

func (t *Target) resetLocked(c paho.Client) {
	if c != nil && t.client == c {
		t.client.Disconnect(0)
		t.client = nil
	}
}

// Send publishes items in order, up to maxInFlight messages unacknowledged
// (shared with the other sends in flight), then waits for the broker's
// acknowledgements (QoS 1 and 2). Items not acknowledged are reported in
// a *delivery.BatchError; all are retryable.
func (t *Target) Send(ctx context.Context, items []delivery.Item) error {
	if len(items) == 0 {
		return nil
	}
	if t.cfg.ProtocolVersion == 5 {
		return t.send5(ctx, items)
	}
	c, err := t.connect(ctx)
	if err != nil {
		return err
	}
	deadline := time.NewTimer(DefaultAckTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	qos := byte(t.cfg.QoS)
	toks := make([]paho.Token, len(items))
	errs := make([]error, len(items))
	broken := false
	// Messages toks[acked:n] hold a slot each; the slots are given back
	// as their acknowledgements are taken, and all of them on return.
	n, acked := 0, 0
	defer func() {
		for ; acked < n; acked++ {
			<-t.slots
		}
	}()
	// take waits for the acknowledgement of toks[acked] and gives its slot
	// back; false when it failed.
	take := func() bool {
		errs[acked] = waitTick(ctx, c, toks[acked], deadline.C, tick.C)
		<-t.slots
		acked++
		return errs[acked-1] == nil
	}
	// The client keeps a payload until it is acknowledged: the bodies
	// share one buffer per send, not one allocation each.
	buf := t.payloadBuffer(items)
	lost := 0
	for n < len(items) && !broken {
		if ctx.Err() != nil || !c.IsConnectionOpen() {
			broken = true
			break
		}
		// A slot: free, or given back by this send's oldest message. The
		// usual case, a free slot, is taken without the select below.
		acquired := false
		select {
		case t.slots <- struct{}{}:
			acquired = true
		default:
		}
		for !acquired && !broken {
			var oldest <-chan struct{}
			if acked < n {
				oldest = toks[acked].Done()
			}
			select {
			case t.slots <- struct{}{}:
				acquired = true
			case <-oldest:
				broken = !take()
			case <-ctx.Done():
				broken = true
			case <-deadline.C:
				errs[acked] = errTimeout // this send's oldest message, or its next one when none is in flight
				broken = true
			case <-tick.C:
				if c.IsConnectionOpen() {
					lost = 0
				} else if lost++; lost >= 3 {
					broken = true
				}
			}
		}
		if broken {
			break
		}
		// Publish blocks (up to publishWriteTimeout) while the client's
		// writer does not take the message; a token that failed at once
		// means the connection is gone.
		var body []byte
		body, buf = t.appendPayload(buf, &items[n])
		toks[n] = c.Publish(t.cfg.Topic, qos, false, body)
		n++
		if done(toks[n-1]) && toks[n-1].Error() != nil {
			broken = true
		}
	}
	for acked < n && !broken {
		broken = !take()
	}
	var failed []delivery.ItemError
	delivered := 0
	for i := range items {
		err := errs[i]
		switch {
		case err != nil:
		case i >= n:
			err = errors.New("not published: the connection failed first")
		case !done(toks[i]):
			err = errors.New("not acknowledged: the connection failed first")
		}
		if err == nil {
			err = toks[i].Error()
		}
		if err != nil {
			if errors.Is(err, errTimeout) {
				err = fmt.Errorf("no acknowledgement within %v", DefaultAckTimeout)
			}
			failed = append(failed, delivery.ItemError{Index: i, Err: t.errorf("publishing to %s: %v", t.cfg.Topic, err)})
			broken = true
			continue
		}
		delivered++
	}
	// A send that ends with its context leaves the connection to the
	// sends beside it: its messages still in flight are acknowledged or
	// lost with the connection, and retried either way.
	if broken && ctx.Err() == nil {
		t.reset(c)
	}
	if failed == nil {
		return nil
	}
	if delivered == 0 {
		return failed[0].Err
	}
	return &delivery.BatchError{Failed: failed}
}

func done(tok paho.Token) bool {
	select {
	case <-tok.Done():
		return true
	default:
		return false
	}
}

// Close disconnects from the broker, waiting up to 250 ms for messages in
// flight.
func (t *Target) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.reset5Locked(t.c5)
	if t.client != nil {
		t.client.Disconnect(250)
		t.client = nil
	}
	return nil
}

// payloadBuffer returns a buffer that can hold the guide's bodies of items
// (nil with format "cloudevents", whose bodies are made one by one).
func (t *Target) payloadBuffer(items []delivery.Item) []byte {
	if t.cfg.Format.CloudEvents() {
		return nil
	}
	size := 0
	for i := range items {
		it := &items[i]
		size += len(it.Record) + len(it.Key) + len(it.EventName) + 64
	}
	return make([]byte, 0, size)
}

// appendPayload returns it's payload, appended to buf when it is the
// guide's body, and buf.
func (t *Target) appendPayload(buf []byte, it *delivery.Item) ([]byte, []byte) {
	if t.cfg.Format.CloudEvents() {
		return t.payload(it), buf
	}
	start := len(buf)
	buf = it.AppendMessage(buf)
	return buf[start:len(buf):len(buf)], buf
}

// payload returns it's message: the guide's body or, with format
// "cloudevents", a structured CloudEvent whose id is the event's id.
func (t *Target) payload(it *delivery.Item) []byte {
	b, _ := t.cfg.Format.Encode(it, nil, nil)
	return b
}

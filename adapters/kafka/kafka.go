package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/event/cloudevent"
)

// Defaults the configuration does not expose.
const (
	// DefaultDialTimeout bounds one connection attempt to a broker.
	DefaultDialTimeout = 5 * time.Second
	// DefaultRequestTimeout bounds a produce request, and the broker's wait
	// for its in-sync replicas.
	DefaultRequestTimeout = 10 * time.Second
	// DefaultRetries is how often the producer retries a produce request
	// itself before Send reports the failure.
	DefaultRetries = 3
)

// EnvSASLPassword is read when sasl.password is empty.
const EnvSASLPassword = "RELAY_KAFKA_SASL_PASSWORD"

// Config is a Kafka target's entry under notify.kafka.<id>.
type Config struct {
	// Enable starts the target; a disabled target is parsed, not started.
	Enable bool `json:"enable"`
	// Brokers are the bootstrap brokers, host:port. Required.
	Brokers []string `json:"brokers"`
	// Topic receives the events. Required.
	Topic string `json:"topic"`
	// TLS configures encryption.
	TLS TLSConfig `json:"tls"`
	// SASL configures authentication.
	SASL SASLConfig `json:"sasl"`
	// Compression is the codec of produced batches: "none" (the default),
	// "gzip", "snappy", "lz4" or "zstd" (Kafka 2.1 or later).
	Compression string `json:"compression,omitempty"`
	// Version is the Kafka version of the brokers ("2.8.0"); empty means
	// the client's default (2.8.0). Versions before 0.11 get a producer
	// without idempotence.
	Version string `json:"version,omitempty"`
	// Format is the record's value: "" for the guide's
	// {"EventName","Key","Records"}, "cloudevents" for a CloudEvent 1.0
	// (Kafka protocol binding).
	Format kit.Format `json:"format,omitempty"`
	// CloudEventsMode is "binary" (the default: ce_* record headers, the
	// record as the value) or "structured" (the JSON event format, with
	// content-type application/cloudevents+json).
	CloudEventsMode kit.CloudEventsMode `json:"cloudeventsMode,omitempty"`
}

// TLSConfig is the "tls" object of a Kafka target.
type TLSConfig struct {
	// Enable connects with TLS.
	Enable bool `json:"enable"`
	// SkipVerify accepts any broker certificate (insecure; for tests).
	SkipVerify bool `json:"skipVerify"`
	// TLSFiles are the CA file and the client certificate: tls.caFile,
	// tls.clientCert and tls.clientKey.
	kit.TLSFiles
}

// SASLConfig is the "sasl" object of a Kafka target.
type SASLConfig struct {
	// Enable authenticates with SASL.
	Enable bool `json:"enable"`
	// Username and Password are the credentials; an empty Password is read
	// from RELAY_KAFKA_SASL_PASSWORD.
	Username string `json:"username"`
	Password string `json:"password"`
	// Mechanism is "plain" (the default), "sha256" (SCRAM-SHA-256) or
	// "sha512" (SCRAM-SHA-512).
	Mechanism string `json:"mechanism,omitempty"`
}

var codecs = map[string]sarama.CompressionCodec{
	"": sarama.CompressionNone, "none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP,
	"snappy": sarama.CompressionSnappy, "lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD,
}

// Validate checks the configuration. Errors are *kit.FieldError.
func (c *Config) Validate() error {
	if len(c.Brokers) == 0 {
		return kit.Fieldf("brokers", "required")
	}
	for _, b := range c.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return kit.Fieldf("brokers", "%q is not host:port", b)
		}
	}
	if c.Topic == "" {
		return kit.Fieldf("topic", "required")
	}
	if len(c.Topic) > 249 || strings.Trim(c.Topic, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" || c.Topic == "." || c.Topic == ".." {
		return kit.Fieldf("topic", "may contain only letters, digits, '.', '_' and '-' (at most 249)")
	}
	codec, ok := codecs[strings.ToLower(c.Compression)]
	if !ok {
		return kit.Fieldf("compression", "must be none, gzip, snappy, lz4 or zstd")
	}
	v := sarama.DefaultVersion
	if c.Version != "" {
		var err error
		if v, err = sarama.ParseKafkaVersion(c.Version); err != nil {
			return kit.Fieldf("version", "%v", err)
		}
	}
	if codec == sarama.CompressionZSTD && !v.IsAtLeast(sarama.V2_1_0_0) {
		return kit.Fieldf("compression", "zstd needs Kafka 2.1 or later (version)")
	}
	if err := c.Format.ValidateMessage(); err != nil {
		return err
	}
	if err := c.CloudEventsMode.Validate(true); err != nil {
		return err
	}
	if c.Format.CloudEvents() && !v.IsAtLeast(sarama.V0_11_0_0) {
		return kit.Fieldf("format", "CloudEvents need record headers: Kafka 0.11 or later (version)")
	}
	if err := c.TLS.TLSFiles.Validate("tls."); err != nil {
		return err
	}
	// TLS files without tls.enable would be ignored and the connection
	// made in plain text: refuse instead.
	if !c.TLS.Enable {
		switch {
		case c.TLS.CAFile != "":
			return kit.Fieldf("tls.caFile", "needs tls.enable: true")
		case c.TLS.ClientCert != "":
			return kit.Fieldf("tls.clientCert", "needs tls.enable: true")
		case c.TLS.SkipVerify:
			return kit.Fieldf("tls.skipVerify", "needs tls.enable: true")
		}
	}
	if c.SASL.Enable {
		if c.SASL.Username == "" {
			return kit.Fieldf("sasl.username", "required")
		}
		switch strings.ToLower(c.SASL.Mechanism) {
		case "", "plain", "sha256", "sha512":
		default:
			return kit.Fieldf("sasl.mechanism", "must be plain, sha256 or sha512")
		}
	}
	return nil
}

// Target produces events to one topic.
type Target struct {
	cfg      Config
	lg       *slog.Logger
	sc       *sarama.Config
	password string

	headers bool // the brokers take record headers (Kafka 0.11 on)
	// binding is the CloudEvents Kafka binding in binary mode, nil for the
	// guide's value and for structured mode.
	binding *cloudevent.Binding

	mu       sync.Mutex // guards producer against Close
	producer *producer
	closed   bool
}

// EventIDHeader is the record header carrying the event's id (see
// delivery.Item.EventID), the same on every retry.
const EventIDHeader = "event-id"

var _ delivery.Target = (*Target)(nil)

// New returns a target for cfg. It reads the TLS files but does not connect.
func New(cfg Config, lg *slog.Logger) (*Target, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if lg == nil {
		lg = slog.Default()
	}
	t := &Target{cfg: cfg, password: cfg.SASL.Password}
	if t.password == "" && cfg.SASL.Enable {
		t.password = os.Getenv(EnvSASLPassword)
	}
	sc, err := t.saramaConfig()
	if err != nil {
		return nil, err
	}
	t.sc = sc
	t.headers = sc.Version.IsAtLeast(sarama.V0_11_0_0)
	if cfg.Format.CloudEvents() && !cfg.CloudEventsMode.Structured(true) {
		t.binding = &cloudevent.Kafka
	}
	t.lg = lg.With("target", "kafka", "brokers", strings.Join(cfg.Brokers, ","), "topic", cfg.Topic)
	return t, nil
}

func (t *Target) saramaConfig() (*sarama.Config, error) {
	cfg := t.cfg
	sc := sarama.NewConfig()
	sc.ClientID = "bucketrelay"
	if cfg.Version != "" {
		sc.Version, _ = sarama.ParseKafkaVersion(cfg.Version)
	}
	sc.Net.DialTimeout = DefaultDialTimeout
	sc.Net.ReadTimeout = DefaultRequestTimeout + 5*time.Second
	sc.Net.WriteTimeout = DefaultRequestTimeout
	sc.Net.MaxOpenRequests = 1 // required for idempotence; keeps order
	sc.Metadata.Retry.Max = 1
	sc.Metadata.Retry.Backoff = 200 * time.Millisecond
	sc.Metadata.Full = false
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Idempotent = sc.Version.IsAtLeast(sarama.V0_11_0_0)
	sc.Producer.Timeout = DefaultRequestTimeout
	sc.Producer.Retry.Max = DefaultRetries
	sc.Producer.Retry.Backoff = 100 * time.Millisecond
	// InitProducerID is retried this often (default 50 × 100 ms): fail fast
	// and let the relay retry instead.
	sc.Producer.Transaction.Retry.Max = 2
	sc.Producer.Transaction.Retry.Backoff = 100 * time.Millisecond
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Producer.Compression = codecs[strings.ToLower(cfg.Compression)]
	sc.Producer.Partitioner = sarama.NewHashPartitioner
	// Gather what the sends hand over into few produce requests rather
	// than sending the first message of a batch alone.
	sc.Producer.Flush.Frequency = time.Millisecond
	if cfg.TLS.Enable {
		tc, err := cfg.TLS.TLSFiles.Config("tls.", "")
		if err != nil {
			return nil, err
		}
		tc.InsecureSkipVerify = cfg.TLS.SkipVerify //nolint:gosec // the user asked for it
		// TLS by our dialer, which shakes hands within the dial timeout
		// (see tlsDialer), not by sarama's Net.TLS.
		sc.Net.Proxy.Enable = true
		sc.Net.Proxy.Dialer = &tlsDialer{timeout: DefaultDialTimeout, config: tc}
	}
	if cfg.SASL.Enable {
		sc.Net.SASL.Enable = true
		sc.Net.SASL.Handshake = true
		sc.Net.SASL.User = cfg.SASL.Username
		sc.Net.SASL.Password = t.password
		switch strings.ToLower(cfg.SASL.Mechanism) {
		case "sha256":
			sc.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
			sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return newSCRAM256() }
		case "sha512":
			sc.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
			sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return newSCRAM512() }
		default:
			sc.Net.SASL.Mechanism = sarama.SASLTypePlaintext
		}
	}
	if err := sc.Validate(); err != nil {
		return nil, kit.Fieldf("version", "%v", err)
	}
	return sc, nil
}

var (
	errClosed = errors.New("kafka: target is closed")
	errResent = fmt.Errorf("kafka: sent again, an earlier event of the same object failed: %w", delivery.ErrEarlierFailed)
)

// conn returns the producer, creating it (and dialling the brokers) on
// first use and after a failure.
func (t *Target) conn() (*producer, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, errClosed
	}
	if t.producer != nil {
		return t.producer, nil
	}
	p, err := sarama.NewAsyncProducer(t.cfg.Brokers, t.sc)
	if err != nil {
		return nil, fmt.Errorf("kafka: connecting to %s: %s", strings.Join(t.cfg.Brokers, ","), t.redact(err.Error()))
	}
	t.lg.Info("kafka: connected")
	t.producer = newProducer(p)
	return t.producer, nil
}

// drop closes p, if it is still the producer, so the next Send makes a new
// one: after a failure the producer's idempotence state may be stale.
// Sends still in flight on p get their answers first.
func (t *Target) drop(p *producer) {
	t.mu.Lock()
	if t.producer == p {
		t.producer = nil
	} else {
		p = nil
	}
	t.mu.Unlock()
	if p != nil {
		go p.close() // waits for the sends in flight; nobody waits for it
	}
}

// eventIDKey is the key of every event-id header; sarama only reads it.
var eventIDKey = []byte(EventIDHeader)

// Send produces items, keyed by object, and returns when every broker
// acknowledged them with acks=all. Several sends may be in flight at once
// (the kind's window): they share one producer, whose requests carry
// messages of every send.
func (t *Target) Send(ctx context.Context, items []delivery.Item) error {
	if len(items) == 0 {
		return nil
	}
	p, err := t.conn()
	if err != nil {
		return err
	}
	f, err := p.send(ctx, t.messages(items))
	if errors.Is(err, errClosed) {
		// Dropped after another send's failure between conn and send.
		return errors.New("kafka: producing: the producer was closed after a failed send")
	}
	if err != nil {
		t.drop(p)
		return fmt.Errorf("kafka: producing: %w", err)
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		t.drop(p)
		return fmt.Errorf("kafka: producing: %w", ctx.Err())
	}
	errs := make([]error, len(items))
	failed := false
	for i, e := range f.errs {
		if e != nil {
			errs[i] = t.itemErr(e)
			failed = true
		}
	}
	if !failed {
		return nil
	}
	t.drop(p)
	return keyOrdered(items, errs)
}

// messages builds the batch's messages. The guide's values, the event ids
// and the headers of a batch share a few allocations (sarama only reads
// them, and they live until Send returns).
func (t *Target) messages(items []delivery.Item) []sarama.ProducerMessage {
	msgs := make([]sarama.ProducerMessage, len(items))
	keys := make([]sarama.StringEncoder, len(items))
	vals := make([]sarama.ByteEncoder, len(items))
	if t.cfg.Format.CloudEvents() {
		for i := range items {
			var hdrs []sarama.RecordHeader
			add := func(k, v string) { hdrs = append(hdrs, sarama.RecordHeader{Key: []byte(k), Value: []byte(v)}) }
			value, ctype := t.cfg.Format.Encode(&items[i], t.binding, add)
			if t.binding == nil {
				add("content-type", ctype) // structured mode, as the binding says
			}
			if id := items[i].EventID(); id != "" && t.headers {
				add(EventIDHeader, id)
			}
			keys[i], vals[i] = sarama.StringEncoder(items[i].Key), value
			msgs[i] = sarama.ProducerMessage{Topic: t.cfg.Topic, Key: &keys[i], Value: &vals[i], Headers: hdrs}
		}
		return msgs
	}
	size := 0
	for i := range items {
		size += len(items[i].Record) + len(items[i].Key) + len(items[i].EventName) + 64 + len(items[i].LogID) + 21
	}
	buf := make([]byte, 0, size)
	var hdrs []sarama.RecordHeader
	if t.headers {
		hdrs = make([]sarama.RecordHeader, len(items))
	}
	for i := range items {
		it := &items[i]
		start := len(buf)
		buf = it.AppendMessage(buf)
		keys[i], vals[i] = sarama.StringEncoder(it.Key), buf[start:len(buf):len(buf)]
		msgs[i] = sarama.ProducerMessage{Topic: t.cfg.Topic, Key: &keys[i], Value: &vals[i]}
		// The event's id as a record header, for consumers that drop
		// duplicates (headers need Kafka 0.11; older brokers go without).
		if hdrs != nil && it.LogID != "" {
			start = len(buf)
			buf = it.AppendEventID(buf)
			hdrs[i] = sarama.RecordHeader{Key: eventIDKey, Value: buf[start:len(buf):len(buf)]}
			msgs[i].Headers = hdrs[i : i+1 : i+1]
		}
	}
	return msgs
}

// itemErr classifies the failure of one message.
func (t *Target) itemErr(err error) error {
	e := fmt.Errorf("kafka: producing: %s", t.redact(err.Error()))
	var ce sarama.ConfigurationError // the client refuses the record itself: larger than Producer.MaxMessageBytes
	if errors.Is(err, sarama.ErrMessageSizeTooLarge) || errors.Is(err, sarama.ErrInvalidRecord) || errors.As(err, &ce) {
		return delivery.Permanent(e)
	}
	return e
}

// keyOrdered turns per-item errors (nil: acknowledged) into Send's result.
// An acknowledged item is reported failed too when an earlier item of the
// same object failed and will be retried, so that the retry keeps the
// object's events in order (a consumer may then see one twice).
func keyOrdered(items []delivery.Item, errs []error) error {
	var failed []delivery.ItemError
	var retried map[string]bool
	for i, err := range errs {
		switch {
		case err != nil:
			failed = append(failed, delivery.ItemError{Index: i, Err: err})
			if !delivery.IsPermanent(err) {
				if retried == nil {
					retried = map[string]bool{}
				}
				retried[items[i].Key] = true
			}
		case retried[items[i].Key]:
			failed = append(failed, delivery.ItemError{Index: i, Err: errResent})
		}
	}
	if failed == nil {
		return nil
	}
	return &delivery.BatchError{Failed: failed}
}

func (t *Target) redact(s string) string { return kit.Redact(s, t.password) }

// Close closes the producer. Send waits for its acks, so nothing is in
// flight when Close is called.
func (t *Target) Close() error {
	t.mu.Lock()
	t.closed = true
	p := t.producer
	t.producer = nil
	t.mu.Unlock()
	if p != nil {
		p.close()
	}
	return nil
}

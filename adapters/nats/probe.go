package nats

import (
	"context"
	"errors"
	"fmt"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bucketrelay/bucketrelay/delivery"
)

var _ delivery.Prober = (*Target)(nil)

// Probe checks that the server accepts the target's connection: it
// connects (TLS, user and password or token as configured) on a
// connection of its own, without reconnecting, and, in JetStream mode,
// asks which stream stores the subject: a subject no stream captures
// fails the probe, since every publish would fail too. In streaming mode
// only the NATS connection is checked (a second streaming client with the
// target's client id would be refused). Nothing is published.
func (t *Target) Probe(ctx context.Context) error {
	timeout := DefaultDialTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	opts := []natsgo.Option{natsgo.Name("bucketrelay-probe"), natsgo.Timeout(timeout), natsgo.NoReconnect()}
	if t.cfg.Username != "" {
		opts = append(opts, natsgo.UserInfo(t.cfg.Username, t.password))
	}
	if t.token != "" {
		opts = append(opts, natsgo.Token(t.token))
	}
	if t.tls != nil {
		opts = append(opts, natsgo.Secure(t.tls.Clone()))
	}
	nc, err := natsgo.Connect(t.url, opts...)
	if err != nil {
		return fmt.Errorf("nats: connecting to %s: %s", t.redact(t.cfg.Address), t.redact(err.Error()))
	}
	defer nc.Close()
	if t.cfg.Mode() != "jetstream" {
		return nil
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("nats: jetstream: %s", t.redact(err.Error()))
	}
	if _, err := js.StreamNameBySubject(ctx, t.cfg.Subject); err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("nats: jetstream: no stream stores subject %q", t.cfg.Subject)
		}
		return fmt.Errorf("nats: jetstream: finding the stream of subject %q: %s", t.cfg.Subject, t.redact(err.Error()))
	}
	return nil
}

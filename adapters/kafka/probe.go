package kafka

import (
	"context"
	"fmt"
	"strings"

	"github.com/IBM/sarama"

	"github.com/bucketrelay/bucketrelay/delivery"
)

var _ delivery.Prober = (*Target)(nil)

// Probe checks that the brokers accept the target's connection: a client
// of its own dials them (TLS and SASL as configured), asks for the
// topic's metadata and closes. A topic the brokers do not have fails the
// probe; the probe never creates it (auto-creation is off for it).
// Nothing is produced.
func (t *Target) Probe(ctx context.Context) error {
	sc := *t.sc
	sc.Metadata.AllowAutoTopicCreation = false
	sc.ClientID = "bucketrelay-probe"
	type result struct{ err error }
	res := make(chan result, 1)
	go func() {
		c, err := sarama.NewClient(t.cfg.Brokers, &sc)
		if err != nil {
			res <- result{err}
			return
		}
		defer c.Close()
		_, err = c.Partitions(t.cfg.Topic)
		res <- result{err}
	}()
	select {
	case r := <-res:
		if r.err != nil {
			return fmt.Errorf("kafka: probing %s: %s", strings.Join(t.cfg.Brokers, ","), t.redact(r.err.Error()))
		}
		return nil
	case <-ctx.Done():
		return ctx.Err() // the client closes when its dial gives up
	}
}

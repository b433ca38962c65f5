package relay

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"

	"github.com/bucketrelay/bucketrelay/adapters/amqp"
	"github.com/bucketrelay/bucketrelay/adapters/elasticsearch"
	"github.com/bucketrelay/bucketrelay/adapters/kafka"
	"github.com/bucketrelay/bucketrelay/adapters/mqtt"
	"github.com/bucketrelay/bucketrelay/adapters/mysql"
	"github.com/bucketrelay/bucketrelay/adapters/nats"
	"github.com/bucketrelay/bucketrelay/adapters/postgresql"
	"github.com/bucketrelay/bucketrelay/adapters/redis"
	"github.com/bucketrelay/bucketrelay/adapters/webhook"
	"github.com/bucketrelay/bucketrelay/delivery"
)

// kind knows how to parse and build one kind of target.
type kind struct {
	// parse decodes and validates a notify entry; ns reports a
	// namespace-format store.
	parse func(raw json.RawMessage) (params any, ns bool, err error)
	// build makes the target from parsed params.
	build func(params any, lg *slog.Logger) (delivery.Target, error)
	// maxBatch is the Send size that suits the kind.
	maxBatch int
}

// adapterConfig is what every adapter's Config provides.
type adapterConfig interface {
	Validate() error
}

// namespaced is provided by the Config of store kinds.
type namespaced interface {
	Namespace() bool
}

// register builds a kind from an adapter's Config type and New function.
func register[C any, PC interface {
	*C
	adapterConfig
}, T delivery.Target](name string, maxBatch int, newTarget func(C, *slog.Logger) (T, error)) {
	kindByName[name] = kind{
		parse: func(raw json.RawMessage) (any, bool, error) {
			var c C
			if err := decodeStrict(raw, &c); err != nil {
				return nil, false, err
			}
			if err := PC(&c).Validate(); err != nil {
				return nil, false, err
			}
			ns := false
			if n, ok := any(PC(&c)).(namespaced); ok {
				ns = n.Namespace()
			}
			return c, ns, nil
		},
		build: func(params any, lg *slog.Logger) (delivery.Target, error) {
			c, ok := params.(C)
			if !ok {
				return nil, fmt.Errorf("relay: %s: parameters of type %T", name, params)
			}
			return newTarget(c, lg)
		},
		maxBatch: maxBatch,
	}
}

var kindByName = map[string]kind{}

func init() {
	// Batch sizes: what one Send carries. Brokers pipeline a batch under one
	// wait for acknowledgements; stores write a batch in one statement or
	// round trip.
	register[amqp.Config](KindAMQP, 1000, amqp.New)
	register[mqtt.Config](KindMQTT, 1000, mqtt.New)
	register[elasticsearch.Config](KindElasticsearch, 1000, elasticsearch.New)
	register[redis.Config](KindRedis, 1000, redis.New)
	register[nats.Config](KindNATS, 1000, nats.New)
	register[postgresql.Config](KindPostgreSQL, 1000, postgresql.New)
	register[mysql.Config](KindMySQL, 500, mysql.New)
	register[kafka.Config](KindKafka, 1000, kafka.New)
	register[webhook.Config](KindWebhook, 500, webhook.New)
}

// Kinds of target, as named under "notify" and in ARNs.
const (
	KindAMQP          = "amqp"
	KindMQTT          = "mqtt"
	KindElasticsearch = "elasticsearch"
	KindRedis         = "redis"
	KindNATS          = "nats"
	KindPostgreSQL    = "postgresql"
	KindMySQL         = "mysql"
	KindKafka         = "kafka"
	KindWebhook       = "webhook"
)

func kindNames() []string {
	var out []string
	for k := range kindByName {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

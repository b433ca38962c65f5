package relay

import (
	"sort"

	"github.com/bucketrelay/bucketrelay/adapters/amqp"
	"github.com/bucketrelay/bucketrelay/adapters/elasticsearch"
	"github.com/bucketrelay/bucketrelay/adapters/kafka"
	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/adapters/mqtt"
	"github.com/bucketrelay/bucketrelay/adapters/mysql"
	"github.com/bucketrelay/bucketrelay/adapters/nats"
	"github.com/bucketrelay/bucketrelay/adapters/postgresql"
	"github.com/bucketrelay/bucketrelay/adapters/redis"
	"github.com/bucketrelay/bucketrelay/adapters/webhook"
)

// kinds are the kinds of target the "notify" section knows, each described
// once by its adapter package (name, Config, constructor, batch size,
// format option, parameters).
var kinds = []*kit.Kind{
	&webhook.Kind,
	&amqp.Kind,
	&mqtt.Kind,
	&nats.Kind,
	&kafka.Kind,
	&redis.Kind,
	&postgresql.Kind,
	&mysql.Kind,
	&elasticsearch.Kind,
}

var kindByName = func() map[string]*kit.Kind {
	m := make(map[string]*kit.Kind, len(kinds))
	for _, k := range kinds {
		m[k.Name] = k
	}
	return m
}()

// Kinds returns the descriptions of the kinds of target the relay knows,
// in the order README lists them. The caller must not change them.
func Kinds() []*kit.Kind { return append([]*kit.Kind(nil), kinds...) }

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

// Package deps pins the project's dependencies while the adapters that use
// them are written in parallel. It is removed once every adapter imports its
// own client library.
package deps

import (
	_ "github.com/IBM/sarama"
	_ "github.com/cenkalti/backoff/v5"
	_ "github.com/eclipse/paho.mqtt.golang"
	_ "github.com/elastic/go-elasticsearch/v8"
	_ "github.com/go-sql-driver/mysql"
	_ "github.com/gomodule/redigo/redis"
	_ "github.com/jackc/pgx/v5"
	_ "github.com/klauspost/compress/zstd"
	_ "github.com/nats-io/nats-server/v2/server"
	_ "github.com/nats-io/nats-streaming-server/server"
	_ "github.com/nats-io/nats.go"
	_ "github.com/nats-io/stan.go"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/rabbitmq/amqp091-go"
	_ "github.com/twmb/franz-go/pkg/kfake"
	_ "go.etcd.io/bbolt"
	_ "pgregory.net/rapid"
)

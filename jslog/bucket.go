package jslog

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket opens, creating it if needed, the key-value bucket Stream_suffix
// beside the log's stream (file storage, the stream's replicas, one
// revision per key), for state the relay shares across the cluster, such
// as bucket rules ("rules" gives RELAY_rules).
func (l *Log) Bucket(ctx context.Context, suffix string) (jetstream.KeyValue, error) {
	name := l.cfg.Stream + "_" + suffix
	get := func(ctx context.Context) (jetstream.KeyValue, error) { return l.js.KeyValue(ctx, name) }
	kv, err := retry(ctx, get)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = retry(ctx, func(ctx context.Context) (jetstream.KeyValue, error) {
			return l.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
				Bucket: name, History: 1, Storage: jetstream.FileStorage, Replicas: l.replicas,
			})
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = retry(ctx, get)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("jslog: bucket %s: %w", name, err)
	}
	return kv, nil
}

// KeyOf returns the key-value key the log uses for a target or lane ID
// (base64url, since IDs hold characters keys may not).
func KeyOf(id string) string { return keyOf(id) }

// IDOf is KeyOf's inverse; false for a key that is not base64url.
func IDOf(key string) (string, bool) { return targetOf(key) }

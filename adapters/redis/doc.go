// Package redis stores events in one Redis key, in the two formats object
// stores use for Redis.
//
// # Formats
//
// namespace (the default): the key is a hash whose fields are
// "bucket/object" and whose values are {"Records":[record]}, the event that
// created or last replaced the object. A put event sets the field (HSET), a
// delete event removes it (HDEL); the hash mirrors the objects of the
// bucket.
//
// access: the key is a list; every event is appended (RPUSH) as the JSON
// array [eventTime, {"Records":[record]}], eventTime an RFC 3339 string.
// Items are never changed or removed by the relay; consumers pop them from
// the left (BLPOP).
//
// # Guarantees
//
// Delivery is at least once. A batch is applied whole or not at all: a
// namespace batch is one MULTI/EXEC transaction (one HSET and one HDEL,
// pipelined in a single round trip), an access batch one RPUSH of every
// item, which Redis applies atomically. A batch is acknowledged when EXEC
// (or RPUSH) has answered without error. If the connection breaks after the
// command was sent and before the answer arrived, the batch is sent again:
// a namespace hash converges to the same state, an access list may hold
// the batch twice.
//
// Ordering: the engine gives a namespace target at most one item per key
// per batch (the newest), so the hash always moves forward; an access
// batch is appended in log order.
//
// # Errors
//
// Network errors, timeouts and server errors (OOM, LOADING, READONLY,
// NOAUTH…) are retried. A key of the wrong type (a string where a hash is
// wanted…) is a permanent error naming the key: the events cannot be stored
// until an operator deletes or renames the key. The target connects
// lazily, in Send, checks the key's type once per connection, and
// reconnects by itself after a failure.
//
// Durability of what Redis acknowledged depends on the server's own
// persistence settings (RDB/AOF): an acknowledged event the server loses
// in a restart without persistence is not sent again.
package redis

// Package postgresql stores events in a PostgreSQL table, in the two
// formats object stores use for PostgreSQL.
//
// # Formats and schemas
//
// namespace (the default): a table (key VARCHAR PRIMARY KEY, value JSONB)
// with one row per object: key is "bucket/object", value is
// {"Records":[record]}, the event that created or last replaced the
// object. A put event upserts the row (INSERT … ON CONFLICT (key) DO
// UPDATE), a delete event deletes it; the table mirrors the bucket.
//
// access: a table (event_time TIMESTAMPTZ NOT NULL, event_data JSONB);
// every event is inserted as a new row, never changed or deleted. The table
// has no ordering column, as in the seed; each object's rows are inserted
// in log order, but batches in flight together (kit.Kind.InFlight) insert
// side by side, so the physical order (ctid) is no order across objects.
// Add a column such as "id BIGSERIAL" yourself if consumers need a stable
// order: extra columns with defaults are accepted.
//
// The table is created at the first send if it does not exist. A table
// that exists without the columns the format needs is a permanent error
// naming the table and the column.
//
// # Guarantees
//
// Delivery is at least once. A batch is applied whole or not at all: a
// namespace batch is one upsert of every put (unnest of a text[] and a
// jsonb[]) and one delete of every removed key (key = ANY($1)), pipelined
// in one round trip and run as one transaction; an access batch is one
// INSERT … SELECT FROM unnest … WITH ORDINALITY, ordered as the log. A
// batch is acknowledged when the transaction committed. If the connection
// breaks before the commit's answer arrives, the batch is sent again: a
// namespace table converges to the same state, an access table may hold
// the batch twice.
//
// # Errors
//
// Connection errors, timeouts, serialization failures, a missing table
// (it is created again) and other server errors are retried. A data error
// (SQLSTATE class 22 or 23: for example a record JSONB refuses, such as one
// holding \u0000) is permanent for the item that caused it: the batch is
// retried item by item to find it, and Send returns a *delivery.BatchError
// listing only the bad items. The target connects lazily, in Send, and
// reconnects by itself after a failure.
//
// # Concurrency
//
// Send is safe for concurrent use: each send in flight takes an idle
// connection of the target's (at most 16 kept idle) or dials a new one,
// and checks the table once per connection. The delivery engine never has
// two sends in flight that share a key, so each object's writes stay in
// log order.
package postgresql

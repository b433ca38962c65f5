// Package mysql stores bucket events in a MySQL or MariaDB table, in one of
// the two formats of the seed's MySQL target.
//
// # Formats
//
// In the namespace format (the default when "format" is empty) the table
// mirrors the bucket: one row per object, keyed by "bucket/object":
//
//	CREATE TABLE t (key_name VARBINARY(2048) NOT NULL PRIMARY KEY, value JSON)
//
// A put event upserts the row with {"Records":[record]}; a delete event
// deletes it. key_name is VARBINARY so that the primary key holds a whole
// S3 key (up to 1,024 bytes of object name plus the bucket) within
// InnoDB's 3,072-byte index limit, and so that keys compare byte for byte
// as S3 does ("A.jpg" and "a.jpg" are two objects). A VARCHAR(1024)
// utf8mb4 primary key would need 4,096 bytes and a case-insensitive
// collation would merge distinct objects.
//
// In the access format every event is appended and never changed:
//
//	CREATE TABLE t (event_time DATETIME(6) NOT NULL, event_data JSON)
//
// event_time is the event's eventTime in UTC (the time it entered the
// relay's log when the record has none); event_data is {"Records":[record]}.
//
// The table is created at the first send when it does not exist. An
// existing table must have the format's columns (and, for namespace, a
// unique index on key_name alone); otherwise every send fails with a
// permanent error naming the table and the column.
//
// # Delivery guarantee
//
// At-least-once. A batch is written in one transaction: for namespace, one
// multi-row INSERT … ON DUPLICATE KEY UPDATE per 500 rows and one DELETE …
// WHERE key_name IN (…) per 500 keys; for access, multi-row INSERTs. A batch
// is acknowledged when its transaction commits. Connection failures,
// deadlocks (1213) and lock-wait timeouts (1205) are retried by the
// delivery engine; a batch whose commit outcome is unknown may be written
// twice, which is harmless for namespace (idempotent upserts) and shows as
// a duplicate row for access. Within a batch, rows are written in order; the
// engine sends batches in log order, so access rows appear in log order.
//
// An item the server refuses for its data (invalid JSON, value too long,
// bad character) fails alone: the batch is retried statement by statement
// and only the refused items are reported, as permanent, to be
// quarantined.
//
// # Connections
//
// New does no network I/O. The pool (at most 4 connections) dials at the
// first Send, which pings the server and creates or checks the table, and
// redials by itself after the server comes back.
package mysql

// Package elasticsearch stores bucket events in an Elasticsearch index, in
// one of the two formats of the seed's Elasticsearch target, with the
// official client (github.com/elastic/go-elasticsearch/v8) and the bulk API.
//
// # Formats
//
// In the namespace format (the default when "format" is empty) the index
// mirrors the bucket: one document per object, whose _id is
// "bucket/object" and whose body is {"Records":[record]}. A put event
// indexes (creates or replaces) the document; a delete event deletes it,
// and deleting a document that is not there counts as done. Elasticsearch
// limits _id to 512 bytes: an event whose key is longer fails permanently
// (it is quarantined, never sent).
//
// In the access format every event is appended as a new document with an
// id chosen by Elasticsearch and the body
//
//	{"Records":[record],"eventTime":"2026-11-25T12:00:00.000001Z"}
//
// eventTime, the event's time in UTC (the time it entered the relay's log
// when the record has none, never the time of the send), stands for the "timestamp of the event" the seed
// describes (the _timestamp field of old Elasticsearch versions, which
// later versions removed); an index the target creates maps it as
// date_nanos, so documents can be sorted and ranged by it.
//
// The index is created at the first send when it does not exist.
//
// # Delivery guarantee
//
// At-least-once. A batch is one bulk request; it is acknowledged when the
// node answers it and, per item, when the item's status is 2xx (or 404 for a
// delete). Items that fail with 429 or 5xx, and whole requests that fail
// with a network error, 408, 429, 5xx, 401, 403 or 404, are retried by the
// delivery engine; an item that fails with another 4xx (a mapping conflict,
// a malformed record) is permanent and quarantined alone while the rest of
// the batch is delivered. A retried access-format item may appear twice.
// Operations of one batch are applied in order, and batches are sent in log
// order.
//
// # Compatibility and connections
//
// The target speaks the REST API of Elasticsearch 7.14 and later (the
// client requires the X-Elastic-Product header those versions send) and
// does not sniff the cluster. New does no network I/O; the first Send
// checks and creates the index. Credentials in the URL are taken out of it
// and sent as basic authentication; they never appear in logs or errors.
package elasticsearch

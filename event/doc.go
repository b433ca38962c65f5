// Package event is the S3 bucket notification model shared by every other
// package: the event record as object stores emit it, the event names and
// their wildcards, and the message body that webhook and queue targets carry.
//
// It is a leaf package: it imports nothing from this module.
package event

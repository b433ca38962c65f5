package wal

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
)

// ID returns the log's id: 16 hex digits drawn when the file was created,
// stored in it and the same for as long as the file lives. With a record's
// sequence it names the record uniquely (EventID), across retries and
// restarts; consumers use it to drop duplicates. A log opened read-only
// that predates ids has "".
func (l *Log) ID() string { return l.id }

// EventID returns the id of the record at seq in the log with id logID:
// "logID-seq", the sequence in decimal.
func EventID(logID string, seq uint64) string {
	b := make([]byte, 0, len(logID)+21)
	b = append(b, logID...)
	b = append(b, '-')
	return string(strconv.AppendUint(b, seq, 10))
}

func newLogID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("wal: no randomness for the log's id: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

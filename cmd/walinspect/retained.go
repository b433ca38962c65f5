package main

import (
	"fmt"
	"io"
	"time"

	"github.com/bucketrelay/bucketrelay/wal"
)

// retainedJSON is info's retained range.
type retainedJSON struct {
	// FirstSeq is the oldest sequence a target can be rewound to, LastSeq
	// the last appended; FirstSeq is LastSeq+1 when no record is held.
	FirstSeq uint64 `json:"firstSeq"`
	LastSeq  uint64 `json:"lastSeq"`
	// OldestAppendTime is when FirstSeq was appended; absent when none.
	OldestAppendTime *time.Time `json:"oldestAppendTime,omitempty"`
	// Events and Bytes are the delivered records retention keeps.
	Events int64 `json:"events"`
	Bytes  int64 `json:"bytes"`
}

func retainedOf(l *wal.Log) retainedJSON {
	s := l.Retained()
	out := retainedJSON{FirstSeq: s.First, LastSeq: s.Last, Events: s.Events, Bytes: s.Bytes}
	if !s.Oldest.IsZero() {
		out.OldestAppendTime = &s.Oldest
	}
	return out
}

// printRetained prints info's retained line.
func printRetained(w io.Writer, r retainedJSON, now time.Time) {
	if r.FirstSeq > r.LastSeq || r.OldestAppendTime == nil {
		fmt.Fprintf(w, "retained\t- (no record a target can be rewound to)\n")
		return
	}
	fmt.Fprintf(w, "retained\tseq %d-%d, oldest %s (%s ago); %d delivered records kept (%s)\n",
		r.FirstSeq, r.LastSeq, r.OldestAppendTime.Format(time.RFC3339), age(now.Sub(*r.OldestAppendTime)), r.Events, bytesHuman(r.Bytes))
}

package wal

import (
	"encoding/json"
	"sort"
	"time"
)

// Damage is a stored frame that cannot be read: its records are lost, the
// rest of the log is not affected.
type Damage struct {
	// First and Last are the range of sequences the frame covered, from
	// its header or, when that is damaged too, from its neighbours.
	First, Last uint64
	// Reason says what is wrong, such as "frame checksum mismatch".
	Reason string
}

// Damage returns the damaged frames the log holds, oldest first: those
// found at Open (unreadable headers) and those Read, Backlogs or
// compaction have met since. A damaged frame is deleted like any other
// once every target passed it, and leaves the list then; the quarantine
// entries it caused stay. DamageMet keeps them.
func (l *Log) Damage() []Damage {
	l.ix.mu.Lock()
	defer l.ix.mu.Unlock()
	var out []Damage
	for _, m := range l.ix.frames {
		if m.damage != "" {
			out = append(out, Damage{First: m.first, Last: m.last, Reason: m.damage})
		}
	}
	return out
}

// DamageMet returns every damaged frame met since the log was opened, in
// the order met, including those deleted since: what the relay reports to
// operators (readiness notes, metrics) until it restarts. It keeps the
// first maxDamageNoted.
func (l *Log) DamageMet() []Damage {
	l.ix.mu.Lock()
	defer l.ix.mu.Unlock()
	return append([]Damage(nil), l.ix.damaged...)
}

// maxDamageNoted bounds the damaged frames DamageMet lists.
const maxDamageNoted = 1000

// damagedFrame is damage met by a scan, to be noted outside its
// transaction.
type damagedFrame struct {
	first, last uint64
	reason      string
	targets     []tally // the frame's target table, when known
	known       bool    // the target table could be read
}

// noteDamage records a damaged frame once: it is marked in the index,
// logged, and each target that has not passed it gets a quarantine entry.
func (l *Log) noteDamage(d damagedFrame) {
	l.ix.mu.Lock()
	defer l.ix.mu.Unlock()
	m := l.ix.find(d.first)
	if m == nil || m.damage != "" {
		return // reclaimed meanwhile, or noted already
	}
	m.damage = d.reason
	l.ix.shape++ // retention.go: the frame is no longer whole
	if !d.known {
		// Whom it served is unknown: it pins every target with a cursor
		// before it, and counts in no target's pending load.
		l.ix.setTallies(m, nil, m.count, m.bytes, m.last)
	}
	l.quarantineDamage(m)
}

// quarantineLoadDamage quarantines the damage found by Open.
func (l *Log) quarantineLoadDamage() {
	l.ix.mu.Lock()
	defer l.ix.mu.Unlock()
	for _, m := range l.ix.frames {
		if m.damage != "" {
			l.quarantineDamage(m)
		}
	}
}

// quarantineDamage logs damaged frame m and queues one quarantine entry
// for each target whose cursor has not passed it: the targets of its
// table, or every target with a cursor when the table cannot be read.
// Called with the index's mu held.
func (l *Log) quarantineDamage(m *frameMeta) {
	if len(l.ix.damaged) < maxDamageNoted {
		l.ix.damaged = append(l.ix.damaged, Damage{First: m.first, Last: m.last, Reason: m.damage})
	}
	affected := l.ix.affected(m)
	l.log.Error("wal: damaged frame; its records are lost and quarantined for the targets that still needed them",
		"file", l.db.Path(), "firstSeq", m.first, "lastSeq", m.last, "reason", m.damage, "targets", affected)
	if l.readOnly {
		return
	}
	l.ix.quar = append(l.ix.quar, damageEntries(m, affected)...)
}

// affected returns the targets whose cursor has not passed damaged frame
// m: those of its table, or every target with a cursor when the table
// cannot be read. Called with mu held.
func (ix *index) affected(m *frameMeta) []string {
	var out []string
	if m.targets != nil {
		for _, t := range m.targets {
			if c, ok := ix.cursors[t.target]; !ok || c <= m.last {
				out = append(out, t.target)
			}
		}
		return out
	}
	for t, c := range ix.cursors {
		if c <= m.last {
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out
}

// damageEntries are the quarantine entries of damaged frame m.
func damageEntries(m *frameMeta, targets []string) []QuarantineEntry {
	now := time.Now().UTC()
	out := make([]QuarantineEntry, 0, len(targets))
	for _, t := range targets {
		out = append(out, QuarantineEntry{
			Target: t, Seq: m.first, Last: m.last, Error: "damaged frame: " + m.damage, Time: now,
		})
	}
	return out
}

// jsonMarshal encodes a quarantine entry; a record that is not valid JSON
// is kept as a JSON string rather than lost.
func jsonMarshal(q QuarantineEntry) ([]byte, error) {
	v, err := json.Marshal(q)
	if err == nil {
		return v, nil
	}
	s, _ := json.Marshal(string(q.Data))
	q.Data = s
	return json.Marshal(q)
}

package event

import "strings"

// Name is an S3 event name such as "s3:ObjectCreated:Put", or a wildcard
// such as "s3:ObjectCreated:*".
type Name string

// Event names object stores emit. The first six are the ones the seed guide
// lists; the rest are what current S3-compatible stores send.
const (
	ObjectCreatedAll                     Name = "s3:ObjectCreated:*"
	ObjectCreatedPut                     Name = "s3:ObjectCreated:Put"
	ObjectCreatedPost                    Name = "s3:ObjectCreated:Post"
	ObjectCreatedCopy                    Name = "s3:ObjectCreated:Copy"
	ObjectCreatedCompleteMultipartUpload Name = "s3:ObjectCreated:CompleteMultipartUpload"
	ObjectCreatedPutRetention            Name = "s3:ObjectCreated:PutRetention"
	ObjectCreatedPutLegalHold            Name = "s3:ObjectCreated:PutLegalHold"
	ObjectCreatedPutTagging              Name = "s3:ObjectCreated:PutTagging"
	ObjectCreatedDeleteTagging           Name = "s3:ObjectCreated:DeleteTagging"

	ObjectRemovedAll                 Name = "s3:ObjectRemoved:*"
	ObjectRemovedDelete              Name = "s3:ObjectRemoved:Delete"
	ObjectRemovedDeleteMarkerCreated Name = "s3:ObjectRemoved:DeleteMarkerCreated"
	ObjectRemovedNoOP                Name = "s3:ObjectRemoved:NoOP"
	ObjectRemovedDeleteAllVersions   Name = "s3:ObjectRemoved:DeleteAllVersions"

	ObjectAccessedAll          Name = "s3:ObjectAccessed:*"
	ObjectAccessedGet          Name = "s3:ObjectAccessed:Get"
	ObjectAccessedHead         Name = "s3:ObjectAccessed:Head"
	ObjectAccessedGetRetention Name = "s3:ObjectAccessed:GetRetention"
	ObjectAccessedGetLegalHold Name = "s3:ObjectAccessed:GetLegalHold"
	ObjectAccessedAttributes   Name = "s3:ObjectAccessed:Attributes"

	ObjectRestoreAll       Name = "s3:ObjectRestore:*"
	ObjectRestorePost      Name = "s3:ObjectRestore:Post"
	ObjectRestoreCompleted Name = "s3:ObjectRestore:Completed"

	ObjectTransitionAll      Name = "s3:ObjectTransition:*"
	ObjectTransitionFailed   Name = "s3:ObjectTransition:Failed"
	ObjectTransitionComplete Name = "s3:ObjectTransition:Complete"

	ObjectTaggingAll    Name = "s3:ObjectTagging:*"
	ObjectTaggingPut    Name = "s3:ObjectTagging:Put"
	ObjectTaggingDelete Name = "s3:ObjectTagging:Delete"

	ReplicationAll                               Name = "s3:Replication:*"
	ReplicationOperationFailedReplication        Name = "s3:Replication:OperationFailedReplication"
	ReplicationOperationCompletedReplication     Name = "s3:Replication:OperationCompletedReplication"
	ReplicationOperationMissedThreshold          Name = "s3:Replication:OperationMissedThreshold"
	ReplicationOperationReplicatedAfterThreshold Name = "s3:Replication:OperationReplicatedAfterThreshold"
	ReplicationOperationNotTracked               Name = "s3:Replication:OperationNotTracked"

	LifecycleExpirationAll                 Name = "s3:LifecycleExpiration:*"
	LifecycleExpirationDelete              Name = "s3:LifecycleExpiration:Delete"
	LifecycleExpirationDeleteMarkerCreated Name = "s3:LifecycleExpiration:DeleteMarkerCreated"
	LifecycleTransition                    Name = "s3:LifecycleTransition"
	IntelligentTiering                     Name = "s3:IntelligentTiering"

	ObjectScannerManyVersions Name = "s3:Scanner:ManyVersions"
	ObjectScannerBigPrefix    Name = "s3:Scanner:BigPrefix"
)

// names lists every concrete (non-wildcard) event name.
var names = []Name{
	ObjectCreatedPut, ObjectCreatedPost, ObjectCreatedCopy, ObjectCreatedCompleteMultipartUpload,
	ObjectCreatedPutRetention, ObjectCreatedPutLegalHold, ObjectCreatedPutTagging, ObjectCreatedDeleteTagging,
	ObjectRemovedDelete, ObjectRemovedDeleteMarkerCreated, ObjectRemovedNoOP, ObjectRemovedDeleteAllVersions,
	ObjectAccessedGet, ObjectAccessedHead, ObjectAccessedGetRetention, ObjectAccessedGetLegalHold, ObjectAccessedAttributes,
	ObjectRestorePost, ObjectRestoreCompleted,
	ObjectTransitionFailed, ObjectTransitionComplete,
	ObjectTaggingPut, ObjectTaggingDelete,
	ReplicationOperationFailedReplication, ReplicationOperationCompletedReplication,
	ReplicationOperationMissedThreshold, ReplicationOperationReplicatedAfterThreshold, ReplicationOperationNotTracked,
	LifecycleExpirationDelete, LifecycleExpirationDeleteMarkerCreated, LifecycleTransition, IntelligentTiering,
	ObjectScannerManyVersions, ObjectScannerBigPrefix,
}

var known = func() map[Name]bool {
	m := make(map[Name]bool, 2*len(names))
	for _, n := range names {
		m[n] = true
		if w := n.family(); w != "" {
			m[w] = true
		}
	}
	return m
}()

// canonical maps each known name and wildcard to itself, so that a name
// read from bytes is looked up without allocating (NameOf).
var canonical = func() map[string]Name {
	m := make(map[string]Name, len(known))
	for n := range known {
		m[string(n)] = n
	}
	return m
}()

// NameOf returns the name spelled by b: one of this package's constants
// when it is a known name or wildcard (no allocation, as ingest reads every
// record's name from a request body), a new string otherwise.
func NameOf(b []byte) Name {
	if n, ok := canonical[string(b)]; ok {
		return n
	}
	return Name(b)
}

// Names returns every concrete event name, wildcards excluded.
func Names() []Name { return append([]Name(nil), names...) }

// Known reports whether n is an event name or wildcard this package knows.
func (n Name) Known() bool { return known[n] }

// IsWildcard reports whether n ends in ":*".
func (n Name) IsWildcard() bool { return strings.HasSuffix(string(n), ":*") }

// family returns the wildcard covering n ("s3:ObjectCreated:*" for
// "s3:ObjectCreated:Put"), or "" if n has no family.
func (n Name) family() Name {
	s := string(n)
	i := strings.LastIndexByte(s, ':')
	if i <= len("s3") {
		return ""
	}
	return Name(s[:i] + ":*")
}

// Matches reports whether the event name n is selected by pattern, which is
// either an exact name or a wildcard.
func (n Name) Matches(pattern Name) bool {
	if n == pattern {
		return true
	}
	// n's family is pattern: n is pattern without its "*", then a last
	// element without ':' (what family computes, compared in place).
	p := string(pattern)
	if !pattern.IsWildcard() || len(n) < len(p)-1 || len(p) <= len("s3:*") || string(n[:len(p)-1]) != p[:len(p)-1] {
		return false
	}
	return strings.IndexByte(string(n[len(p)-1:]), ':') < 0
}

// Expand returns the concrete names a pattern selects.
func (n Name) Expand() []Name {
	if !n.IsWildcard() {
		return []Name{n}
	}
	var out []Name
	for _, c := range names {
		if c.Matches(n) {
			out = append(out, c)
		}
	}
	return out
}

// Op is what an event means for the object's state in a namespace-format
// target.
type Op uint8

// The operations an event maps to.
const (
	// OpNone leaves the object's state as it is (reads, restores, replication).
	OpNone Op = iota
	// OpPut creates or replaces the object's state.
	OpPut
	// OpDelete removes it; a delete marker hides the object, so it deletes too.
	OpDelete
)

// Op returns what n does to an object's state.
func (n Name) Op() Op {
	s := string(n)
	switch {
	case strings.HasPrefix(s, "s3:ObjectCreated:"):
		return OpPut
	case strings.HasPrefix(s, "s3:ObjectRemoved:"), strings.HasPrefix(s, "s3:LifecycleExpiration:"):
		if n == ObjectRemovedNoOP {
			return OpNone
		}
		return OpDelete
	}
	return OpNone
}

// Shorthand maps the short names `mc events add --events` takes to the
// wildcards they stand for.
var Shorthand = map[string]Name{
	"put":     ObjectCreatedAll,
	"delete":  ObjectRemovedAll,
	"get":     ObjectAccessedAll,
	"replica": ReplicationAll,
	"ilm":     ObjectTransitionAll,
	"scanner": "s3:Scanner:*",
}

// Package kit holds what every adapter repeats, written once: field-path
// configuration errors (FieldError, Fieldf), redaction of secrets in error
// texts (Redact), the TLS files block (TLSFiles), the namespace/access
// format option of the stores (Format), the time an access row or document
// carries (EventTime), the newest item of each key (Newest), and the
// description of a kind of target (Kind) from which the relay builds its
// table of kinds and internal/gendocs writes the README's targets table and
// the parameter tables of docs/targets.
//
// Guarantees: Redact never returns a text with a URL password, a URL query
// value or one of the secrets it was given; EventTime never returns the
// current time (a row's time is the event's, or the time it entered the
// log); every error from this package's functions that is about a
// configuration field is a *FieldError naming it.
package kit

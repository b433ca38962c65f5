package kit

import "fmt"

// FieldError reports a configuration field that is missing or invalid.
// Field is the parameter's path inside the target's object as it appears
// in the configuration file ("endpoint", "streaming.clusterID",
// "tls.caFile"); the relay prefixes it with the target's path
// (notify.webhook.1). Msg must not hold a secret.
type FieldError struct {
	Field string
	Msg   string
}

// Error returns "field: message".
func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Fieldf returns a *FieldError for field, its message formatted as by
// fmt.Sprintf.
func Fieldf(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

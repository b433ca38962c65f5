package kit

// Format is the "format" option of the store targets (Redis, PostgreSQL,
// MySQL, Elasticsearch): how events land in the store. The zero value ""
// means FormatNamespace, as the guide's MySQL example relies on.
type Format string

// Formats.
const (
	// FormatNamespace mirrors the bucket: one row, hash field or document
	// per object, keyed "bucket/object", upserted on a put and deleted on
	// a delete.
	FormatNamespace Format = "namespace"
	// FormatAccess appends every event with its time, never changing one.
	FormatAccess Format = "access"
)

// Namespace reports whether the format is namespace (or empty).
func (f Format) Namespace() bool { return f != FormatAccess }

// Name returns the format's name, "namespace" for the empty format.
func (f Format) Name() string {
	if f.Namespace() {
		return string(FormatNamespace)
	}
	return string(FormatAccess)
}

// Validate checks the format; the error is a *FieldError on "format".
func (f Format) Validate() error {
	switch f {
	case "", FormatNamespace, FormatAccess:
		return nil
	}
	return Fieldf("format", "must be %q or %q, not %q", FormatNamespace, FormatAccess, string(f))
}

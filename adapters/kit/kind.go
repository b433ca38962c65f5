package kit

import (
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strings"

	"github.com/bucketrelay/bucketrelay/delivery"
)

// Config is what every adapter's *Config provides.
type Config interface {
	// Validate checks the configuration; errors are *FieldError.
	Validate() error
}

// Kind describes one kind of target, once: its name under "notify", how to
// make its configuration and its target, the batch size that suits it,
// whether it has the namespace/access format, and its parameters for the
// documentation. Each adapter package exports its description as the
// variable Kind; the relay's table of kinds lists them.
type Kind struct {
	// Name is the kind under "notify" and in ARNs ("webhook").
	Name string
	// Title is the kind's name in prose ("Webhook", "AMQP (RabbitMQ)").
	Title string
	// MaxBatch is the Send size that suits the kind: brokers pipeline a
	// batch under one wait for acknowledgements, stores write one in one
	// statement or round trip.
	MaxBatch int
	// Namespace is set for kinds with the "format" option (the stores).
	Namespace bool
	// InFlight is the default in-flight window of the kind's targets (the
	// target's "inflight" option, delivery.Policy.InFlight): how many
	// batches the engine sends before the first is acknowledged. 0 means
	// the kind's Send is not safe for concurrent use, and its targets
	// refuse "inflight" and "lanes" above 1; 1 means one at a time unless
	// the target asks for more.
	InFlight int
	// Params documents every parameter of the kind's configuration, in the
	// order the documentation lists them.
	Params []Param
	// Delivery is the README's one-line delivery guarantee (Markdown).
	Delivery string

	// NewConfig returns a pointer to a new zero Config of the kind, to
	// decode a notify entry into. Set by Define.
	NewConfig func() Config
	// Build makes the kind's target from a Config (the pointer NewConfig
	// returned, or the Config value). Set by Define.
	Build func(cfg any, lg *slog.Logger) (delivery.Target, error)
}

// Param documents one parameter (or a few that go together, such as
// clientCert and clientKey) of a kind's configuration.
type Param struct {
	// Name is the parameter's path in the target's object ("endpoint",
	// "tls.caFile"); several that share one row are separated by commas
	// ("clientCert,clientKey").
	Name string
	// Type is the JSON type as the documentation names it ("string",
	// "bool", "int", "[]string", "duration").
	Type string
	// Default is what an absent parameter means (Markdown): "required",
	// "false", "`10s`", "`$RELAY_X_PASSWORD`", or empty for nothing.
	Default string
	// Doc says what the parameter does (Markdown, one paragraph).
	Doc string
	// Guide is set for the parameters of the MinIO bucket notification
	// guide, which keep its names and meaning; the others are added by the
	// relay.
	Guide bool
	// Brief, if set, follows the name in README's targets table
	// (Markdown): "(default true)".
	Brief string
}

// Names returns the parameter names of the row.
func (p *Param) Names() []string { return strings.Split(p.Name, ",") }

// Define returns k with NewConfig and Build set from the adapter's Config
// type C and its constructor.
func Define[C any, PC interface {
	*C
	Config
}, T delivery.Target](k Kind, newTarget func(C, *slog.Logger) (T, error)) Kind {
	k.NewConfig = func() Config { return PC(new(C)) }
	k.Build = func(cfg any, lg *slog.Logger) (delivery.Target, error) {
		switch c := cfg.(type) {
		case *C:
			return newTarget(*c, lg)
		case C:
			return newTarget(c, lg)
		}
		return nil, fmt.Errorf("kit: %s: configuration of type %T, want %T", k.Name, cfg, new(C))
	}
	return k
}

// IsNamespace reports whether a target of the kind with configuration cfg
// mirrors its buckets (format "namespace", or empty): false for kinds
// without the format option.
func (k *Kind) IsNamespace(cfg any) bool {
	if !k.Namespace {
		return false
	}
	n, ok := cfg.(interface{ Namespace() bool })
	return ok && n.Namespace()
}

// CheckParams reports the difference between k.Params and the JSON fields
// of k's Config: a field nobody documented, or a documented parameter that
// does not exist. It keeps the documentation and the code in step.
func (k *Kind) CheckParams() error {
	fields := map[string]bool{}
	jsonFields(reflect.TypeOf(k.NewConfig()).Elem(), "", fields)
	documented := map[string]bool{}
	var problems []string
	for _, p := range k.Params {
		for _, n := range p.Names() {
			if documented[n] {
				problems = append(problems, n+" documented twice")
			}
			documented[n] = true
			if !fields[n] {
				problems = append(problems, n+" documented but not in Config")
			}
		}
	}
	for f := range fields {
		if !documented[f] {
			problems = append(problems, f+" in Config but not documented")
		}
	}
	if problems == nil {
		return nil
	}
	sort.Strings(problems)
	return fmt.Errorf("kit: %s: parameters: %s", k.Name, strings.Join(problems, "; "))
}

// jsonFields collects the JSON paths of t's leaf fields: embedded structs
// are flattened, as encoding/json does, and nested struct fields (other
// than embedded ones) give "name.field".
func jsonFields(t reflect.Type, prefix string, out map[string]bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if f.Anonymous && name == "" && ft.Kind() == reflect.Struct {
			jsonFields(ft, prefix, out)
			continue
		}
		if name == "" {
			name = f.Name
		}
		if ft.Kind() == reflect.Struct && ft.PkgPath() != "time" {
			jsonFields(ft, prefix+name+".", out)
			continue
		}
		out[prefix+name] = true
	}
}

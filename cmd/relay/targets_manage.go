package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/bucketrelay/bucketrelay/relay"
	"github.com/bucketrelay/bucketrelay/rules"
)

// manageFlags are the flags of relay targets add, update and remove.
type manageFlags struct {
	kind      string
	params    paramList
	file      string
	fromStart bool
	force     bool
	export    string
}

// paramList collects repeated --param key=value flags.
type paramList []string

func (p *paramList) String() string     { return strings.Join(*p, " ") }
func (p *paramList) Set(v string) error { *p = append(*p, v); return nil }

func registerManageFlags(fs *flag.FlagSet) *manageFlags {
	m := &manageFlags{}
	fs.StringVar(&m.kind, "kind", "", "add, update: the target's kind (webhook, redis, …); the ARN's kind when not given")
	fs.Var(&m.params, "param", "add, update: a parameter of the target, key=value (repeat it; dotted keys nest: tls.caFile=…)")
	fs.StringVar(&m.file, "file", "", "add, update: the target's entry as JSON (the object under notify.KIND.ID, or {\"KIND\":{\"ID\":{…}}})")
	fs.BoolVar(&m.fromStart, "from-start", false, "add, rewind: start from the oldest event the log retains (routed by the target's bucket rules)")
	fs.BoolVar(&m.force, "force", false, "remove: export the target's pending events and release them")
	fs.StringVar(&m.export, "export", "", "remove --force: also write the exported events (JSON lines) to this local file")
	return m
}

// manage runs relay targets add|update|remove ARN.
func (c *targetsCommand) manage(ctx context.Context, cl *opClient, m *manageFlags, sub, arn string, asJSON bool) error {
	a, err := rules.ParseARN(arn)
	if err != nil {
		return usagef("%v", err)
	}
	switch sub {
	case "add", "update":
		if m.force || m.export != "" {
			return usagef("--force and --export are for remove")
		}
		if m.fromStart && sub == "update" {
			return usagef("--from-start is for add: an update keeps the target's cursor")
		}
		body, err := m.body(a)
		if err != nil {
			return err
		}
		method, path := http.MethodPost, "/v1/targets"
		if sub == "update" {
			method, path = http.MethodPut, "/v1/targets/"+url.PathEscape(arn)
		}
		b, err := cl.send(ctx, method, path, body)
		if err != nil {
			return err
		}
		if asJSON {
			c.out.Write(b)
			return nil
		}
		var res struct{ Target, Source string }
		json.Unmarshal(b, &res)
		if sub == "add" {
			from := "the events logged from now on"
			if m.fromStart {
				from = "every event the log holds, then the new ones"
			}
			fmt.Fprintf(c.out, "Added %s (kept in the relay's targets.json): it receives %s.\n", res.Target, from)
			fmt.Fprintf(c.out, "Route a bucket to it: relay events add BUCKET %s\n", res.Target)
		} else {
			fmt.Fprintf(c.out, "Updated %s (%s): delivery goes on from its cursor.\n", res.Target, sourceText(res.Source))
		}
		return nil
	case "remove":
		if m.kind != "" || len(m.params) > 0 || m.file != "" || m.fromStart {
			return usagef("--kind, --param, --file and --from-start are for add and update")
		}
		if m.export != "" && !m.force {
			return usagef("--export needs --force (it writes the events --force releases)")
		}
		path := "/v1/targets/" + url.PathEscape(arn)
		if m.force {
			path += "?force=true"
		}
		b, err := cl.send(ctx, http.MethodDelete, path, nil)
		if err != nil {
			return err
		}
		var res struct {
			Target, Export, ExportName string
			Released                   int
		}
		json.Unmarshal(b, &res)
		if m.export != "" && res.ExportName != "" {
			data, err := cl.send(ctx, http.MethodGet, "/v1/exports/"+url.PathEscape(res.ExportName), nil)
			if err != nil {
				return fmt.Errorf("the target was released and its events exported on the relay's host to %s, but downloading them failed: %w", res.Export, err)
			}
			if err := writeSynced(m.export, data); err != nil {
				return fmt.Errorf("the target was released and its events exported on the relay's host to %s, but writing %s failed: %w", res.Export, m.export, err)
			}
		}
		if asJSON {
			c.out.Write(b)
			return nil
		}
		switch {
		case res.Released == 0:
			fmt.Fprintf(c.out, "Removed %s: nothing was pending.\n", res.Target)
		case m.export != "":
			fmt.Fprintf(c.out, "Removed %s: %d pending events exported to %s (and on the relay's host to %s), then released.\n", res.Target, res.Released, m.export, res.Export)
		default:
			fmt.Fprintf(c.out, "Removed %s: %d pending events exported on the relay's host to %s, then released.\n", res.Target, res.Released, res.Export)
		}
		return nil
	}
	return usagef("unknown targets subcommand %q", sub)
}

func sourceText(s string) string {
	switch s {
	case relay.SourceOverride:
		return "kept in targets.json, overriding the configuration file's entry"
	case relay.SourceAPI:
		return "kept in targets.json"
	}
	return s
}

// body builds the add or update body: {"KIND":{"ID":{…}}}.
func (m *manageFlags) body(a rules.ARN) ([]byte, error) {
	if m.kind != "" && m.kind != a.Kind {
		return nil, usagef("--kind %s does not match the ARN's kind %s", m.kind, a.Kind)
	}
	var entry map[string]any
	switch {
	case m.file != "" && len(m.params) > 0:
		return nil, usagef("give --file or --param, not both")
	case m.file != "":
		data, err := os.ReadFile(m.file)
		if err != nil {
			return nil, usagef("--file: %v", err)
		}
		var doc map[string]json.RawMessage
		if err := json.Unmarshal(data, &doc); err != nil {
			return nil, usagef("--file %s: %v", m.file, err)
		}
		// {"KIND":{"ID":{…}}} is sent as it is; an entry is wrapped.
		if raw, ok := doc[a.Kind]; ok && len(doc) == 1 {
			var ids map[string]json.RawMessage
			if json.Unmarshal(raw, &ids) == nil && len(ids) == 1 {
				if _, ok := ids[a.ID]; !ok {
					return nil, usagef("--file %s describes another target than %s", m.file, a)
				}
				return withStart(data, m.fromStart)
			}
		}
		var e map[string]json.RawMessage
		json.Unmarshal(data, &e)
		body, _ := json.Marshal(map[string]map[string]map[string]json.RawMessage{a.Kind: {a.ID: e}})
		return withStart(body, m.fromStart)
	case len(m.params) == 0:
		return nil, usagef("describe the target with --param key=value (repeated) or --file FILE")
	}
	entry = map[string]any{}
	types := paramTypes(a.Kind)
	for _, p := range m.params {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, usagef("--param %q: want key=value", p)
		}
		val, err := paramValue(k, v, types[k])
		if err != nil {
			return nil, err
		}
		if err := setPath(entry, strings.Split(k, "."), val); err != nil {
			return nil, usagef("--param %s: %v", k, err)
		}
	}
	body, _ := json.Marshal(map[string]map[string]any{a.Kind: {a.ID: entry}})
	return withStart(body, m.fromStart)
}

func withStart(body []byte, fromStart bool) ([]byte, error) {
	if !fromStart {
		return body, nil
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, usagef("%v", err)
	}
	doc["startFrom"] = json.RawMessage(`"` + relay.StartFromOldest + `"`)
	return json.Marshal(doc)
}

// paramTypes maps the kind's parameter names to their documented types.
func paramTypes(kind string) map[string]string {
	out := map[string]string{}
	for _, k := range relay.Kinds() {
		if k.Name != kind {
			continue
		}
		for _, p := range k.Params {
			for _, n := range strings.Split(p.Name, ",") {
				out[n] = p.Type
			}
		}
	}
	return out
}

// paramValue converts a --param value to its JSON type: bool, int and
// []string (comma-separated) parameters are converted; others are strings.
func paramValue(key, v, typ string) (any, error) {
	switch typ {
	case "bool":
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, usagef("--param %s: %q is not true or false", key, v)
		}
		return b, nil
	case "int":
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, usagef("--param %s: %q is not an integer", key, v)
		}
		return n, nil
	case "[]string":
		if v == "" {
			return []string{}, nil
		}
		return strings.Split(v, ","), nil
	}
	return v, nil
}

func setPath(m map[string]any, path []string, v any) error {
	for _, p := range path[:len(path)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			if _, set := m[p]; set {
				return fmt.Errorf("%s is given both as a value and as an object", p)
			}
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[path[len(path)-1]] = v
	return nil
}

// writeSynced writes data to path and syncs it (and its directory).
func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Command gendocs writes the documentation generated from the adapters'
// kit.Kind descriptions: the targets table of README.md and the parameter
// tables of docs/targets/<kind>.md, each between BEGIN GENERATED and END
// GENERATED markers. Each parameter is described once, in the Params of
// adapters/<kind>/kind.go; edit it there and run
//
//	go run ./internal/gendocs
//
// from the module root. With -check it writes nothing and exits 1 when a
// file differs from what it would write (go test ./internal/gendocs does
// the same check).
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/relay"
)

func main() {
	check := flag.Bool("check", false, "report files that differ instead of writing them")
	root := flag.String("root", ".", "the module root")
	flag.Parse()
	files, err := generate(*root, relay.Kinds())
	if err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
	stale := 0
	for _, f := range files {
		if bytes.Equal(f.old, f.new) {
			continue
		}
		if *check {
			fmt.Fprintf(os.Stderr, "gendocs: %s is out of date: run go run ./internal/gendocs\n", f.path)
			stale++
			continue
		}
		if err := os.WriteFile(f.path, f.new, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "gendocs:", err)
			os.Exit(1)
		}
		fmt.Println("wrote", f.path)
	}
	if stale > 0 {
		os.Exit(1)
	}
}

// file is one generated file: its path, what it holds and what it should.
type file struct {
	path     string
	old, new []byte
}

// Markers around generated text. What follows BEGIN on its line is kept.
const (
	beginTable  = "<!-- BEGIN GENERATED targets table"
	endTable    = "<!-- END GENERATED targets table -->"
	beginParams = "<!-- BEGIN GENERATED parameters"
	endParams   = "<!-- END GENERATED parameters -->"
)

// generate returns README.md and every docs/targets page of kinds with
// their generated parts replaced.
func generate(root string, kinds []*kit.Kind) ([]file, error) {
	var out []file
	for _, k := range kinds {
		if err := k.CheckParams(); err != nil {
			return nil, err
		}
	}
	readme := filepath.Join(root, "README.md")
	f, err := replace(readme, beginTable, endTable, targetsTable(kinds))
	if err != nil {
		return nil, err
	}
	out = append(out, f)
	for _, k := range kinds {
		f, err := replace(filepath.Join(root, "docs", "targets", k.Name+".md"), beginParams, endParams, paramTables(k))
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// replace returns path with the text between the begin and end markers
// replaced by text.
func replace(path, begin, end, text string) (file, error) {
	old, err := os.ReadFile(path)
	if err != nil {
		return file{}, err
	}
	s := string(old)
	b := strings.Index(s, begin)
	if b < 0 {
		return file{}, fmt.Errorf("%s: no %q marker", path, begin)
	}
	nl := strings.IndexByte(s[b:], '\n')
	if nl < 0 {
		return file{}, fmt.Errorf("%s: nothing after the %q marker", path, begin)
	}
	b += nl + 1
	e := strings.Index(s[b:], end)
	if e < 0 {
		return file{}, errors.New(path + ": no end marker " + end)
	}
	return file{path: path, old: old, new: []byte(s[:b] + text + s[b+e:])}, nil
}

// targetsTable is README's table of kinds.
func targetsTable(kinds []*kit.Kind) string {
	var b strings.Builder
	b.WriteString("| Kind | ARN | Guide's parameters | Added | Delivery | Details |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	for _, k := range kinds {
		var guide, added []kit.Param
		for _, p := range k.Params {
			switch {
			case p.Name == "enable":
			case p.Guide:
				guide = append(guide, p)
			default:
				added = append(added, p)
			}
		}
		fmt.Fprintf(&b, "| `%s` | `arn:minio:sqs::1:%s` | %s | %s | %s | [%s](docs/targets/%s.md) |\n",
			k.Name, k.Name, nameList(guide), nameList(added), k.Delivery, k.Name, k.Name)
	}
	return b.String()
}

// nameList lists parameter names for the README: "`a`, `b`/`c`", nested
// ones grouped under their object: "`tls{enable, caFile}`".
func nameList(ps []kit.Param) string {
	var items []string
	group := map[string]int{} // object name → index in items
	var members [][]string
	for _, p := range ps {
		names := p.Names()
		obj, _, nested := strings.Cut(names[0], ".")
		brief := ""
		if p.Brief != "" {
			brief = " " + p.Brief
		}
		if !nested {
			items = append(items, "`"+strings.Join(names, "`/`")+"`"+brief)
			members = append(members, nil)
			continue
		}
		var short []string
		for _, n := range names {
			_, s, _ := strings.Cut(n, ".")
			short = append(short, s)
		}
		i, ok := group[obj]
		if !ok {
			i = len(items)
			group[obj] = i
			items = append(items, obj)
			members = append(members, nil)
		}
		members[i] = append(members[i], strings.Join(short, "/")+brief)
	}
	for i := range items {
		if members[i] != nil {
			items[i] = "`" + items[i] + "{" + strings.Join(members[i], ", ") + "}`"
		}
	}
	if len(items) == 0 {
		return "none"
	}
	return strings.Join(items, ", ")
}

// paramTables is the parameters part of a kind's page: the guide's
// parameters, then those the relay adds.
func paramTables(k *kit.Kind) string {
	var guide, added []kit.Param
	for _, p := range k.Params {
		if p.Guide {
			guide = append(guide, p)
		} else {
			added = append(added, p)
		}
	}
	var b strings.Builder
	b.WriteString("The guide's parameters keep their names and meaning:\n\n")
	table(&b, guide)
	if len(added) > 0 {
		b.WriteString("\nAdded by the relay:\n\n")
		table(&b, added)
	}
	return b.String()
}

func table(b *strings.Builder, ps []kit.Param) {
	b.WriteString("| Parameter | Type | Default | Description |\n")
	b.WriteString("|:---|:---|:---|:---|\n")
	for _, p := range ps {
		names := p.Names()
		for i := range names {
			names[i] = "`" + names[i] + "`"
		}
		fmt.Fprintf(b, "| %s | %s |%s| %s |\n", strings.Join(names, ", "), p.Type, cell(p.Default), p.Doc)
	}
}

// cell pads a table cell's text with spaces; an empty cell is one space.
func cell(s string) string {
	if s == "" {
		return " "
	}
	return " " + s + " "
}

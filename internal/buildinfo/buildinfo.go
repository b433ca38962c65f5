// Package buildinfo describes the running binary: its module version and
// the VCS revision it was built from, as recorded by the Go toolchain.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// String returns "NAME VERSION (revision REV[, modified], TIME, GOVERSION)"
// for the running binary. VERSION is the main module's version: a tag
// for `go install …@vX`, "(devel)" for a build in a work tree. Parts the
// toolchain did not record (no VCS in the build) are left out.
func String(name string) string {
	version, rev, at, modified := "unknown", "", "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		version = bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	out := fmt.Sprintf("%s %s (", name, version)
	if rev != "" {
		out += "revision " + rev
		if modified {
			out += ", modified"
		}
		if at != "" {
			out += ", " + at
		}
		out += ", "
	}
	return out + runtime.Version() + ")"
}

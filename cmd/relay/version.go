package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/bucketrelay/bucketrelay/internal/buildinfo"
)

// versionCommand prints the module version and VCS revision the binary
// was built from (also `relay --version`).
type versionCommand struct {
	out io.Writer
}

// Run prints the version.
func (c *versionCommand) Run(_ context.Context, args []string) error {
	if c.out == nil {
		c.out = os.Stdout
	}
	if len(args) > 0 {
		return usagef("version takes no arguments")
	}
	fmt.Fprintln(c.out, buildinfo.String("relay"))
	return nil
}

package harness

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Services runs scripts/services.sh verb name (verb: start, stop, …) from
// the module root found above the working directory.
func Services(verb, name string) error {
	dir, err := os.Getwd()
	if err != nil {
		return err
	}
	for {
		script := filepath.Join(dir, "scripts", "services.sh")
		if _, err := os.Stat(script); err == nil {
			cmd := exec.Command(script, verb, name)
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("services.sh %s %s: %v: %s", verb, name, err, out)
			}
			return nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return errors.New("scripts/services.sh not found above the working directory")
		}
		dir = parent
	}
}

// ModuleRoot is the directory of the relay's go.mod.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run the bench from inside the relay's module")
	}
	return filepath.Dir(mod), nil
}

// FreeLoopbackAddr returns a loopback host:port nobody listens on now.
func FreeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return "127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), nil
}

// Version returns the first line a command prints (its version), or
// "(version unknown)".
func Version(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil && len(out) == 0 {
		return "(version unknown)"
	}
	first, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(first)
}

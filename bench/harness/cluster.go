package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// NATSCluster is a three-node JetStream cluster run by scripts/cluster.sh
// (nats-server at the pinned version, sync_interval always) in a
// directory of its own, for the cluster scenario.
type NATSCluster struct {
	script string
	env    []string
	// URLs are the nodes' client URLs.
	URLs []string
}

// StartNATSCluster starts the cluster with its files in dir and client,
// route and monitoring ports from base, base+1000 and base+2000 (three
// each). Pick base below 32768, out of the kernel's ephemeral range, so
// that no client connection holds a port the cluster needs.
func StartNATSCluster(dir string, base int) (*NATSCluster, error) {
	root, err := ModuleRoot()
	if err != nil {
		return nil, err
	}
	c := &NATSCluster{
		script: filepath.Join(root, "scripts", "cluster.sh"),
		env: append(os.Environ(), "CLUSTER_DIR="+dir,
			fmt.Sprintf("CLUSTER_CLIENT_PORT=%d", base), fmt.Sprintf("CLUSTER_ROUTE_PORT=%d", base+1000),
			fmt.Sprintf("CLUSTER_HTTP_PORT=%d", base+2000)),
	}
	if _, err := c.run("start"); err != nil {
		c.Stop()
		return nil, err
	}
	urls, err := c.run("urls")
	if err != nil {
		c.Stop()
		return nil, err
	}
	c.URLs = strings.Split(urls, ",")
	return c, nil
}

func (c *NATSCluster) run(args ...string) (string, error) {
	cmd := exec.Command(c.script, args...)
	cmd.Env = c.env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("cluster.sh %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

// Stop stops every node.
func (c *NATSCluster) Stop() { _, _ = c.run("stop") }

// BuildRelay builds the relay binary into dir and returns its path.
func BuildRelay(dir string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "relay")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/relay")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the relay: %v: %s", err, out)
	}
	return bin, nil
}

package harness

import (
	"os"
	"runtime"
	"strings"
)

// Machine is what RESULTS.md records beside every run: rates differ about
// 2× between the CPUs the figures were taken on, so only ratios compare
// across machines.
type Machine struct {
	// CPU is the model name from /proc/cpuinfo ("" if unknown).
	CPU string `json:"cpu"`
	// CPUs is the number of logical CPUs the process may use.
	CPUs int `json:"cpus"`
	// Go is the Go version the bench was built with.
	Go string `json:"go"`
	// Kernel is the kernel release (/proc/sys/kernel/osrelease).
	Kernel string `json:"kernel,omitempty"`
	// GOOS and GOARCH are the platform the bench was built for.
	GOOS   string `json:"goos"`
	GOARCH string `json:"goarch"`
	// MemTotal is the first line of /proc/meminfo.
	MemTotal string `json:"meminfo,omitempty"`
}

// ReadMachine describes the machine the bench runs on.
func ReadMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				if _, v, ok := strings.Cut(l, ":"); ok {
					m.CPU = strings.TrimSpace(v)
				}
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		first, _, _ := strings.Cut(string(b), "\n")
		m.MemTotal = strings.Join(strings.Fields(first), " ")
	}
	return m
}

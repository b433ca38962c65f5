package human

import (
	"testing"
	"time"
)

func TestAge(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second: "0ms", 850 * time.Millisecond: "850ms", 42 * time.Second: "42s",
		192 * time.Second: "3m12s", 184 * time.Second: "3m04s", 5*time.Hour + 4*time.Minute: "5h04m", 50 * time.Hour: "2d02h",
	} {
		if got := Age(d); got != want {
			t.Errorf("Age(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0B", 512: "512B", 1024: "1.0KiB", 66560: "65KiB", 3355443: "3.2MiB", 5 << 40: "5.0TiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

package delivery

import "time"

// SetProbeEvery sets how often a failed probe is tried again, for tests,
// and returns a function restoring it.
func SetProbeEvery(d time.Duration) func() {
	old := probeEvery
	probeEvery = d
	return func() { probeEvery = old }
}

// SetCountPause makes the backlog counter call f before each record it
// takes, for tests, and returns a function restoring it.
func SetCountPause(f func()) func() {
	old := countPause
	countPause = f
	return func() { countPause = old }
}

//go:build race

package delivery_test

// raceEnabled is true when the race detector is on: tests that move much
// data scale down, since it makes them several times slower.
const raceEnabled = true

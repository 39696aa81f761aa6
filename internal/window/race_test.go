//go:build race

package window

// raceEnabled skips the memory measurements, which the race detector's
// shadow memory and slowness would make meaningless.
const raceEnabled = true

//go:build race

package worker

// raceEnabled: the race detector roughly doubles what a loaded record costs
// in RSS (shadow memory for every Go allocation of the validation index).
const raceEnabled = true

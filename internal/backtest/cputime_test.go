package backtest

import "syscall"

// processCPU returns the CPU time (user and system) the process has used,
// in seconds, or -1. The backtest benchmark reports it per replay: on a
// shared machine wall time also counts other processes, and the CPU a
// replay needs is what parallelism divides.
func processCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

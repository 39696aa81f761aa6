package window

import "syscall"

// threadCPU returns the CPU time of the calling thread in nanoseconds, or
// -1. Benchmarks lock their goroutine to a thread and report it beside
// wall time: on a shared machine, wall time also counts other processes.
func threadCPU() int64 {
	var ru syscall.Rusage
	const rusageThread = 1 // RUSAGE_THREAD
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return -1
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

package window

import (
	"syscall"
	"unsafe"
)

// threadCPU returns the CPU time of the calling thread in nanoseconds
// (CLOCK_THREAD_CPUTIME_ID), or -1. Benchmarks lock their goroutine to a
// thread and time Apply alone with it, while the generator runs between
// batches; on a shared machine wall time would also count other processes.
func threadCPU() int64 {
	const clockThreadCPUTime = 3
	var ts syscall.Timespec
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return -1
	}
	return ts.Nano()
}

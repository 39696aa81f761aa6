//go:build !linux

package window

func threadCPU() int64 { return -1 }

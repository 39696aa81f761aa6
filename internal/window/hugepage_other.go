//go:build !linux

package window

func adviseHuge[T any](s []T) {}

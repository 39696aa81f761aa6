package window

import (
	"syscall"
	"unsafe"
)

// adviseHuge asks Linux to back a large table with 2 MiB pages. The dedupe
// and attribution tables are read at random, one line per event: with
// 4 KiB pages nearly every read also misses the TLB and walks the page
// table, which costs as much as the read itself. Go allocates large
// objects from fresh, untouched memory, so advising right after make takes
// effect when the pages are first touched. Failure (THP disabled) is
// harmless.
func adviseHuge[T any](s []T) {
	var zero T
	n := uintptr(len(s)) * unsafe.Sizeof(zero)
	const huge = 2 << 20
	if n < 2*huge {
		return
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), n)
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	// Whole huge pages inside the slice only: advice applies to whole
	// pages, and the memory around belongs to other objects.
	lo := (start+huge-1)&^(huge-1) - start
	hi := (start+n)&^(huge-1) - start
	if hi <= lo {
		return
	}
	_ = syscall.Madvise(b[lo:hi], 14) // MADV_HUGEPAGE
}

package window

import (
	"math/rand/v2"
	"testing"
)

// TestKeyTable checks the key table against a map under random inserts and
// removals, with hashes crowded onto few home slots so that probe runs
// wrap around the end of the table and deletions shift entries back.
func TestKeyTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var tb keyTable
	var keys []keyState
	want := map[keyHash]int32{}
	for step := range 20000 {
		h := normHash(keyHash{uint64(rng.IntN(40)) | uint64(rng.IntN(3))<<60, uint64(rng.IntN(4))})
		ki, ok := want[h]
		if got := tb.find(h, keys); (got >= 0) != ok || (ok && got != ki) {
			t.Fatalf("step %d: find(%x) = %d, want %d (%v)", step, h, got, ki, ok)
		}
		p, at := tb.probe(h[0])
		if got := tb.confirm(h, p, at, keys); (got >= 0) != ok || (ok && got != ki) {
			t.Fatalf("step %d: probe and confirm(%x) = %d, want %d (%v)", step, h, got, ki, ok)
		}
		switch {
		case !ok && rng.IntN(3) > 0:
			ki = int32(len(keys))
			keys = append(keys, keyState{hash: h})
			tb.insert(h[0], ki)
			want[h] = ki
		case ok && rng.IntN(2) == 0:
			tb.remove(h[0], ki)
			delete(want, h)
		}
		if tb.len() != len(want) {
			t.Fatalf("step %d: len %d, want %d", step, tb.len(), len(want))
		}
	}
	for h, ki := range want {
		if got := tb.find(h, keys); got != ki {
			t.Fatalf("find(%x) = %d, want %d", h, got, ki)
		}
	}
}

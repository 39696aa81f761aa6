package loadgen

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// within checks a histogram answer against the exact one: never below it,
// and at most one bucket width (1/1024) above.
func within(t *testing.T, what string, got, exact time.Duration) {
	t.Helper()
	if got < exact || float64(got-exact) > float64(exact)/subCount {
		t.Errorf("%s = %v, want %v (+0.1%%)", what, got, exact)
	}
}

func TestQuantilesKnownData(t *testing.T) {
	var h Histogram
	// 1 ms .. 1000 ms, in shuffled order: the nearest-rank p-quantile is
	// p*1000 ms.
	for _, i := range rand.New(rand.NewPCG(1, 2)).Perm(1000) {
		h.Record(time.Duration(i+1) * time.Millisecond)
	}
	within(t, "p50", h.Quantile(0.50), 500*time.Millisecond)
	within(t, "p90", h.Quantile(0.90), 900*time.Millisecond)
	within(t, "p99", h.Quantile(0.99), 990*time.Millisecond)
	within(t, "p99.9", h.Quantile(0.999), 999*time.Millisecond)
	if h.Max() != time.Second || h.Quantile(1) != time.Second || h.Min() != time.Millisecond ||
		h.Mean() != 500500*time.Microsecond || h.Count() != 1000 {
		t.Errorf("max %v q1 %v min %v mean %v count %d", h.Max(), h.Quantile(1), h.Min(), h.Mean(), h.Count())
	}
}

func TestQuantilesSmallValuesExact(t *testing.T) {
	var h Histogram
	for v := range 2048 {
		h.Record(time.Duration(v))
	}
	// 2048 samples 0..2047: rank ceil(q*2048) is value rank-1.
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 1023}, {0.9, 1843}, {0.99, 2027}, {1, 2047}} {
		if got := h.Quantile(c.q); got != c.want {
			t.Errorf("Quantile(%v) = %d, want %d", c.q, got, c.want)
		}
	}
}

func TestQuantilesMatchSortedSlice(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var h Histogram
	var all []time.Duration
	for range 100000 {
		// Long-tailed, like answer latencies: mostly around 2 ms, some
		// seconds.
		d := time.Duration(rng.ExpFloat64() * 2e6)
		if rng.IntN(100) == 0 {
			d *= 500
		}
		h.Record(d)
		all = append(all, d)
	}
	slices.Sort(all)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := all[int(float64(len(all))*q+0.999999)-1]
		within(t, "quantile", h.Quantile(q), exact)
	}
	if h.Max() != all[len(all)-1] || h.Min() != all[0] {
		t.Errorf("max %v min %v, want %v %v", h.Max(), h.Min(), all[len(all)-1], all[0])
	}
}

func TestBucketBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 100000 {
		v := rng.Uint64() >> rng.IntN(64)
		i := bucketOf(v)
		hi := bucketHigh(i)
		if hi < v || (i > 0 && bucketHigh(i-1) >= v) {
			t.Fatalf("v %d in bucket %d with high %d, previous high %d", v, i, hi, bucketHigh(i-1))
		}
		if float64(hi-v) > float64(v)/subCount {
			t.Fatalf("v %d: bucket high %d more than 1/%d above", v, hi, subCount)
		}
	}
}

func TestMergeAndEmpty(t *testing.T) {
	var a, b, all, empty Histogram
	if empty.Quantile(0.99) != 0 || empty.Mean() != 0 || empty.Max() != 0 {
		t.Error("empty histogram not all zero")
	}
	for i := range 1000 {
		d := time.Duration(i*i) * time.Microsecond
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(&b)
	a.Merge(&empty)
	for _, q := range []float64{0.5, 0.9, 0.99, 1} {
		if a.Quantile(q) != all.Quantile(q) {
			t.Errorf("merged Quantile(%v) = %v, want %v", q, a.Quantile(q), all.Quantile(q))
		}
	}
	if a.Count() != all.Count() || a.Min() != all.Min() || a.Max() != all.Max() || a.Mean() != all.Mean() {
		t.Error("merged summary differs")
	}
}

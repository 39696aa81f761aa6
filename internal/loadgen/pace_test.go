package loadgen

import (
	"testing"
	"time"
)

func TestPace(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := newPace(t0, 1000, 100) // 1000 events/s in batches of 100
	if p.requestsPerSecond() != 10 || p.interval() != 100*time.Millisecond {
		t.Errorf("%v requests/s, interval %v; want 10, 100ms", p.requestsPerSecond(), p.interval())
	}
	for i, want := range map[int64]time.Duration{0: 0, 1: 100 * time.Millisecond, 5: 500 * time.Millisecond, 36000: time.Hour} {
		if got := p.at(i).Sub(t0); got != want {
			t.Errorf("at(%d) = +%v, want +%v", i, got, want)
		}
	}
	for d, want := range map[time.Duration]int64{
		0: 0, time.Nanosecond: 1, 100 * time.Millisecond: 1, 100*time.Millisecond + 1: 2,
		time.Second: 10, time.Second + 1: 11, 10 * time.Second: 100,
	} {
		if got := p.due(d); got != want {
			t.Errorf("due(%v) = %d, want %d", d, got, want)
		}
	}
}

func TestPaceNoDrift(t *testing.T) {
	t0 := time.Unix(0, 0)
	// 1/3 s is not a whole number of nanoseconds: adding the rounded
	// interval 3 million times would drift by a millisecond.
	p := newPace(t0, 3, 1)
	if got := p.at(3).Sub(t0); got != time.Second {
		t.Errorf("at(3) = +%v, want +1s", got)
	}
	if got := p.at(3_000_000).Sub(t0); got != 1_000_000*time.Second {
		t.Errorf("at(3e6) = +%v, want +1e6 s", got)
	}
	if got := p.due(time.Second); got != 3 {
		t.Errorf("due(1s) = %d, want 3", got)
	}
	// Fewer requests than one a second: rate below batch.
	slow := newPace(t0, 50, 100)
	if slow.interval() != 2*time.Second || slow.due(5*time.Second) != 3 {
		t.Errorf("rate 50 batch 100: interval %v, due(5s) %d; want 2s, 3", slow.interval(), slow.due(5*time.Second))
	}
}

func TestPoolSize(t *testing.T) {
	cfg := Config{Rate: 2000, Batch: 50, Duration: time.Second, PoolBytes: 1 << 20}
	if n := poolSize(cfg, 1000); n != 40 {
		t.Errorf("open loop that fits: %d bodies, want 40 (one per request)", n)
	}
	cfg.Duration = time.Hour
	if n := poolSize(cfg, 1000); n != 1048 {
		t.Errorf("open loop over budget: %d bodies, want 1048", n)
	}
	cfg.Rate = 0
	if n := poolSize(cfg, 1<<21); n != 1 {
		t.Errorf("body over budget: %d bodies, want 1", n)
	}
}

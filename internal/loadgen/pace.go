package loadgen

import (
	"math"
	"time"
)

// pace is the open-loop schedule: request i is due at start + i*batch/rate
// seconds, whatever happened to the requests before it. Each due time is
// computed from i rather than by adding intervals, so that rounding does not
// accumulate into drift over a long run.
type pace struct {
	start      time.Time
	perRequest float64 // nanoseconds between two due times
}

// newPace returns the schedule for rate status events per second (> 0) in
// batches of batch.
func newPace(start time.Time, rate float64, batch int) pace {
	return pace{start: start, perRequest: float64(batch) / rate * float64(time.Second)}
}

// requestsPerSecond is the request rate the schedule asks for.
func (p pace) requestsPerSecond() float64 { return float64(time.Second) / p.perRequest }

// interval is the time between two due times.
func (p pace) interval() time.Duration { return time.Duration(math.Round(p.perRequest)) }

// at returns the due time of request i (from 0).
func (p pace) at(i int64) time.Time {
	return p.start.Add(time.Duration(math.Round(float64(i) * p.perRequest)))
}

// due returns how many requests are due in [start, start+d).
func (p pace) due(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	end := p.start.Add(d)
	// The division gives the answer up to floating-point error; the loops
	// make it agree exactly with at.
	n := int64(math.Ceil(float64(d) / p.perRequest))
	for n > 0 && !p.at(n-1).Before(end) {
		n--
	}
	for p.at(n).Before(end) {
		n++
	}
	return n
}

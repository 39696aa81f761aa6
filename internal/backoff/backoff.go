// Package backoff is the wait between retries of something that failed
// (a receiver, an insert, a log write): doubling from Min up to Max, and a
// sleep that ends early when its context does.
package backoff

import (
	"context"
	"time"
)

// Backoff is the wait between attempts: Min, then doubling up to Max.
type Backoff struct {
	Min, Max time.Duration
}

// Next returns the wait after prev (0: none yet).
func (b Backoff) Next(prev time.Duration) time.Duration {
	switch {
	case prev <= 0:
		return b.Min
	case prev*2 > b.Max:
		return b.Max
	}
	return prev * 2
}

// Sleep waits d, or until ctx ends, and then returns ctx's error.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

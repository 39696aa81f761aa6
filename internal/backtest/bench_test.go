package backtest

import (
	"context"
	"sync"
	"testing"
	"time"
)

// benchHistory is three hours of traffic over 1,000 numbers of 4 WABAs
// and 40 templates, 200 messages a second (about 5.4 million status
// events), built once per test binary.
var benchHistory = sync.OnceValues(func() (*Memory, genOptions) {
	o := genOptions{Seed: 1, Start: time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC), Duration: 3 * time.Hour,
		Rate: 200, Numbers: 1000, WABAs: 4, Templates: 40, Users: 200000}
	return NewMemory(generate(o)), o
})

// BenchmarkBacktest replays the generated history through the shipped
// rule pack with the evaluator's default windows, as `evaluator backtest`
// does:
//
//	go test -run XXX -bench Backtest -benchtime 3s -count 5 ./internal/backtest/
func BenchmarkBacktest(b *testing.B) {
	src, o := benchHistory()
	set := loadRules(b, "../../rules")
	ctx := context.Background()
	var events, evals, runs int64
	var fired, warnings int
	cpu := processCPU()
	for b.Loop() {
		runs++
		rep, err := Run(ctx, src, set, Options{From: o.Start, To: o.Start.Add(o.Duration)})
		if err != nil {
			b.Fatal(err)
		}
		events += rep.Events
		evals += rep.Evaluations
		fired = rep.Totals.Firing
		warnings = len(rep.Warnings)
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	// The CPU time of a replay, all goroutines (and the garbage
	// collector) together: what the cores share.
	b.ReportMetric((processCPU()-cpu)/float64(runs), "cpu-s/op")
	b.ReportMetric(float64(evals)/b.Elapsed().Seconds(), "evals/s")
	b.ReportMetric(float64(fired), "fired")
	// A bound of the window store reached (Report.Warnings): the report
	// could then differ between runs.
	b.ReportMetric(float64(warnings), "warnings")
	b.ReportMetric(float64(events)/float64(runs), "events/op")
}

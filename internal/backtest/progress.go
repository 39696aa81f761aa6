package backtest

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// The replay offers the bar an update after each batch; the bar redraws
// at most every redrawEvery.
const (
	redrawEvery = 200 * time.Millisecond
	barWidth    = 24
)

// progress draws one line, redrawn with \r, and a final line with the
// totals. A nil progress (no writer) does nothing.
type progress struct {
	w        io.Writer
	now      func() time.Time
	from, to int64
	start    time.Time
	lastDraw time.Time
	width    int // of the last line drawn, to blank what a shorter one leaves
	drawn    bool
}

func newProgress(w io.Writer, clock func() time.Time, from, to time.Time) *progress {
	if w == nil {
		return nil
	}
	if clock == nil {
		clock = time.Now
	}
	return &progress{w: w, now: clock, from: from.UnixNano(), to: to.UnixNano(), start: clock()}
}

// update redraws the line when the last redraw is old enough; last is the
// event time reached.
func (p *progress) update(events, last int64) {
	if p == nil {
		return
	}
	now := p.now()
	if p.drawn && now.Sub(p.lastDraw) < redrawEvery {
		return
	}
	p.lastDraw, p.drawn = now, true
	frac := 0.0
	if p.to > p.from {
		frac = min(1, max(0, float64(last-p.from)/float64(p.to-p.from)))
	}
	elapsed := now.Sub(p.start)
	rate := 0.0
	if elapsed > 0 {
		rate = float64(events) / elapsed.Seconds()
	}
	eta := "--"
	if frac > 0 && elapsed > 0 {
		eta = (time.Duration(float64(elapsed) * (1 - frac) / frac)).Round(time.Second).String()
	}
	filled := int(frac * barWidth)
	line := fmt.Sprintf("[%s%s] %5.1f%%  %s events  %s events/s  ETA %s",
		strings.Repeat("=", filled), strings.Repeat(" ", barWidth-filled), 100*frac, count(events), count(int64(rate)), eta)
	p.draw(line)
}

func (p *progress) draw(line string) {
	pad := ""
	if n := p.width - len(line); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	p.width = len(line)
	fmt.Fprintf(p.w, "\r%s%s", line, pad)
}

// done prints the totals line and ends the bar.
func (p *progress) done(r *Report) {
	if p == nil {
		return
	}
	elapsed := p.now().Sub(p.start)
	rate := 0.0
	if elapsed > 0 {
		rate = float64(r.Events) / elapsed.Seconds()
	}
	line := fmt.Sprintf("replayed %s events (%s .. %s) in %s, %s events/s: %d rounds, %d fired, %d resolved",
		count(r.Events), fmtTime(r.From), fmtTime(r.To), elapsed.Round(time.Millisecond), count(int64(rate)),
		r.Rounds, r.Totals.Firing, r.Totals.Resolved)
	p.draw(line)
	fmt.Fprintln(p.w)
}

// stop ends a bar that was drawn, without totals (the run failed).
func (p *progress) stop() {
	if p != nil && p.drawn {
		fmt.Fprintln(p.w)
	}
}

// count prints n with thousands separators.
func count(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

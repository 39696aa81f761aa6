package backtest

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"vigia/internal/alert"
)

// DiffKind says how an alert occurrence differs between two backtests.
type DiffKind string

// The kinds of difference, B compared with A.
const (
	OnlyInA             DiffKind = "only_in_a"            // fired in A; B never fired while it did
	OnlyInB             DiffKind = "only_in_b"            // fired in B; A never fired while it did
	FiredEarlier        DiffKind = "fired_earlier"        // both fired; B first (a negative FiredDelta)
	FiredLater          DiffKind = "fired_later"          // both fired; B later
	ResolvedDifferently DiffKind = "resolved_differently" // fired together, resolved at another time (or only one resolved)
)

// DiffReport compares two backtests of the same history: typically the
// rules in force (A) against a change to them (B).
type DiffReport struct {
	A       DiffSide    `json:"a"`
	B       DiffSide    `json:"b"`
	Summary DiffSummary `json:"summary"`
	// Entries are the occurrences that differ, ordered by the first
	// firing time, alertname and key.
	Entries []DiffEntry `json:"entries"`
	// Warning is set when the two reports did not replay the same range.
	Warning string `json:"warning,omitempty"`
}

// DiffSide summarizes one of the two backtests.
type DiffSide struct {
	RuleFiles []string  `json:"rule_files"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	Events    int64     `json:"events"`
	Totals    Totals    `json:"totals"`
}

// DiffSummary counts the entries by kind; Same counts the occurrences
// that fired and resolved at the same times in both.
type DiffSummary struct {
	OnlyInA             int `json:"only_in_a"`
	OnlyInB             int `json:"only_in_b"`
	FiredEarlier        int `json:"fired_earlier"`
	FiredLater          int `json:"fired_later"`
	ResolvedDifferently int `json:"resolved_differently"`
	Same                int `json:"same"`
}

// DiffEntry is one occurrence that differs. A and B are the occurrence as
// each backtest saw it (nil on the side where it did not fire); the deltas
// are B minus A, set when both sides have the time.
type DiffEntry struct {
	Kind          DiffKind          `json:"kind"`
	Alertname     string            `json:"alertname"`
	Group         string            `json:"group"`
	Fingerprint   string            `json:"fingerprint"`
	Key           map[string]string `json:"key"`
	Labels        map[string]string `json:"labels"`
	A             *Episode          `json:"a,omitempty"`
	B             *Episode          `json:"b,omitempty"`
	FiredDelta    *Delta            `json:"fired_delta,omitempty"`
	ResolvedDelta *Delta            `json:"resolved_delta,omitempty"`
}

// Episode is one occurrence of an alert in one backtest: from its firing
// record to its resolved record (ResolvedAt nil: still firing at To).
type Episode struct {
	Occurrence string            `json:"occurrence"`
	ActiveAt   time.Time         `json:"active_at"`
	FiredAt    time.Time         `json:"fired_at"`
	ResolvedAt *time.Time        `json:"resolved_at,omitempty"`
	Evidence   map[string]any    `json:"evidence,omitempty"` // at firing
	Actions    []alert.Action    `json:"actions,omitempty"`
	Key        map[string]string `json:"-"`
	labels     map[string]string
	fp         string
	group      string
	name       string
}

// Delta is a signed duration, B minus A; it prints and marshals as +1m30s
// or -10s.
type Delta time.Duration

func (d Delta) String() string {
	if d >= 0 {
		return "+" + time.Duration(d).String()
	}
	return time.Duration(d).String()
}

// MarshalText implements encoding.TextMarshaler.
func (d Delta) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Delta) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(strings.TrimPrefix(string(b), "+"))
	*d = Delta(v)
	return err
}

// Diff compares two backtests by alert identity (the fingerprint of
// alertname and labels) and occurrence: for each alert, the firing
// episodes of A and B are paired in time order when they overlap; an
// episode that overlaps none of the other side is only in its side.
func Diff(a, b *Report) *DiffReport {
	d := &DiffReport{A: side(a), B: side(b), Entries: []DiffEntry{}}
	if !a.From.Equal(b.From) || !a.To.Equal(b.To) {
		d.Warning = fmt.Sprintf("the backtests replayed different ranges: A %s .. %s, B %s .. %s",
			fmtTime(a.From), fmtTime(a.To), fmtTime(b.From), fmtTime(b.To))
	}
	ea, eb := episodes(a), episodes(b)
	fps := slices.Sorted(maps.Keys(ea))
	for fp := range eb {
		if _, ok := ea[fp]; !ok {
			fps = append(fps, fp)
		}
	}
	for _, fp := range fps {
		as, bs := ea[fp], eb[fp]
		i, j := 0, 0
		for i < len(as) || j < len(bs) {
			switch {
			case j == len(bs) || i < len(as) && endOf(as[i]) <= bs[j].FiredAt.UnixNano():
				d.add(OnlyInA, as[i], nil)
				i++
			case i == len(as) || endOf(bs[j]) <= as[i].FiredAt.UnixNano():
				d.add(OnlyInB, nil, bs[j])
				j++
			default: // they overlap
				d.pair(as[i], bs[j])
				i++
				j++
			}
		}
	}
	slices.SortFunc(d.Entries, func(x, y DiffEntry) int {
		return cmp.Or(firstFired(x).Compare(firstFired(y)), cmp.Compare(x.Alertname, y.Alertname),
			cmp.Compare(labelText(x.Key), labelText(y.Key)), cmp.Compare(kindRank(x.Kind), kindRank(y.Kind)),
			cmp.Compare(x.Fingerprint, y.Fingerprint))
	})
	return d
}

func side(r *Report) DiffSide {
	return DiffSide{RuleFiles: r.RuleFiles, From: r.From, To: r.To, Events: r.Events, Totals: r.Totals}
}

// episodes gathers a report's firing episodes by fingerprint, in firing
// order.
func episodes(r *Report) map[string][]*Episode {
	byOcc := map[string]*Episode{}
	out := map[string][]*Episode{}
	for _, c := range r.Changes {
		switch c.State {
		case alert.StateFiring:
			fired := c.EvalTime
			if c.FiredAt != nil {
				fired = *c.FiredAt
			}
			e := &Episode{Occurrence: c.Occurrence, ActiveAt: c.ActiveAt, FiredAt: fired, Evidence: c.Evidence,
				Actions: c.Actions, Key: c.Key, labels: c.Labels, fp: c.Fingerprint, group: c.Group, name: c.Alertname}
			byOcc[c.Occurrence] = e
			out[c.Fingerprint] = append(out[c.Fingerprint], e)
		case alert.StateResolved:
			if e := byOcc[c.Occurrence]; e != nil {
				t := c.EvalTime
				if c.ResolvedAt != nil {
					t = *c.ResolvedAt
				}
				e.ResolvedAt = &t
			}
		}
	}
	for _, es := range out {
		slices.SortStableFunc(es, func(x, y *Episode) int { return x.FiredAt.Compare(y.FiredAt) })
	}
	return out
}

// endOf is when an episode stopped firing; one still firing never did.
func endOf(e *Episode) int64 {
	if e.ResolvedAt == nil {
		return 1<<63 - 1
	}
	return e.ResolvedAt.UnixNano()
}

func (d *DiffReport) add(k DiffKind, a, b *Episode) {
	e := a
	if e == nil {
		e = b
	}
	entry := DiffEntry{Kind: k, Alertname: e.name, Group: e.group, Fingerprint: e.fp,
		Key: e.Key, Labels: e.labels, A: a, B: b}
	if a != nil && b != nil {
		fd := Delta(b.FiredAt.Sub(a.FiredAt))
		entry.FiredDelta = &fd
		if a.ResolvedAt != nil && b.ResolvedAt != nil {
			rd := Delta(b.ResolvedAt.Sub(*a.ResolvedAt))
			entry.ResolvedDelta = &rd
		}
	}
	switch k {
	case OnlyInA:
		d.Summary.OnlyInA++
	case OnlyInB:
		d.Summary.OnlyInB++
	case FiredEarlier:
		d.Summary.FiredEarlier++
	case FiredLater:
		d.Summary.FiredLater++
	case ResolvedDifferently:
		d.Summary.ResolvedDifferently++
	}
	d.Entries = append(d.Entries, entry)
}

// pair classifies two overlapping episodes of one alert.
func (d *DiffReport) pair(a, b *Episode) {
	switch c := b.FiredAt.Compare(a.FiredAt); {
	case c < 0:
		d.add(FiredEarlier, a, b)
	case c > 0:
		d.add(FiredLater, a, b)
	case endOf(a) != endOf(b):
		d.add(ResolvedDifferently, a, b)
	default:
		d.Summary.Same++
	}
}

func firstFired(e DiffEntry) time.Time {
	switch {
	case e.A == nil:
		return e.B.FiredAt
	case e.B == nil || e.A.FiredAt.Before(e.B.FiredAt):
		return e.A.FiredAt
	}
	return e.B.FiredAt
}

// WriteText writes the diff as a summary and a table of the occurrences
// that differ.
func (d *DiffReport) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	fmt.Fprintf(ew, "Backtest diff %s .. %s\n", fmtTime(d.A.From), fmtTime(d.A.To))
	if d.Warning != "" {
		fmt.Fprintf(ew, "warning: %s\n", d.Warning)
	}
	for _, s := range []struct {
		name string
		side DiffSide
	}{{"A", d.A}, {"B", d.B}} {
		fmt.Fprintf(ew, "%s: %s: %d events, %d fired, %d resolved, %d firing at the end\n", s.name,
			strings.Join(s.side.RuleFiles, ", "), s.side.Events, s.side.Totals.Firing, s.side.Totals.Resolved, s.side.Totals.FiringAtEnd)
	}
	s := d.Summary
	fmt.Fprintf(ew, "only in A %d, only in B %d, fired earlier in B %d, fired later in B %d, resolved at another time %d, same %d\n\n",
		s.OnlyInA, s.OnlyInB, s.FiredEarlier, s.FiredLater, s.ResolvedDifferently, s.Same)
	if len(d.Entries) == 0 {
		fmt.Fprintln(ew, "No difference.")
		return ew.err
	}
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DIFFERENCE\tALERT\tKEY\tA FIRED\tB FIRED\tΔ FIRED\tA RESOLVED\tB RESOLVED\tΔ RESOLVED")
	for _, e := range d.Entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", kindText(e.Kind), e.Alertname, orDash(labelText(e.Key)),
			firedText(e.A), firedText(e.B), deltaText(e.FiredDelta), resolvedText(e.A), resolvedText(e.B), deltaText(e.ResolvedDelta))
	}
	tw.Flush()
	return ew.err
}

// kindRank orders entries that tie on time, alert and key: A's side first.
func kindRank(k DiffKind) int {
	switch k {
	case OnlyInA:
		return 0
	case OnlyInB:
		return 2
	}
	return 1
}

func kindText(k DiffKind) string {
	switch k {
	case OnlyInA:
		return "only in A"
	case OnlyInB:
		return "only in B"
	case FiredEarlier:
		return "earlier in B"
	case FiredLater:
		return "later in B"
	case ResolvedDifferently:
		return "resolved apart"
	}
	return string(k)
}

func firedText(e *Episode) string {
	if e == nil {
		return "-"
	}
	return fmtTime(e.FiredAt)
}

func resolvedText(e *Episode) string {
	switch {
	case e == nil:
		return "-"
	case e.ResolvedAt == nil:
		return "still firing"
	}
	return fmtTime(*e.ResolvedAt)
}

func deltaText(d *Delta) string {
	if d == nil {
		return "-"
	}
	return d.String()
}

package window

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"vigia/internal/event"
	"vigia/internal/quality"
)

// ref is a brute-force model of the store: it keeps every counted event
// per key and recomputes Values from them, with none of the store's
// encodings, hashes or queues. The property test feeds both the same
// stream and compares every answer.
type ref struct {
	o      Options
	specs  []Spec
	wm     map[int]int64
	dd     map[string]int64
	ddCut  int64
	attr   map[string]refAttr
	atCut  int64
	spaces []map[string]*refKey
	seq    int
}

type refAttr struct {
	t int64
	a event.Attribution
}

type refKey struct {
	labels    map[string]string
	evs       []refEv
	newest    int64
	hasNewest bool
	last      int64
	states    []refState
}

type refState struct {
	t   int64
	seq int
	f   int
	v   string
}

type refEv struct {
	idx         int64
	e           *event.Event
	readNoDeliv bool
	failNoSent  bool
	lat         bool
	latNs       int64
}

func newRef(o Options, specs []Spec) *ref {
	r := &ref{o: o, specs: specs, wm: map[int]int64{}, dd: map[string]int64{}, attr: map[string]refAttr{},
		ddCut: noCutoff, atCut: noCutoff}
	for range specs {
		r.spaces = append(r.spaces, map[string]*refKey{})
	}
	return r
}

var refStatuses = []string{"sent", "delivered", "read", "failed", "accepted", "deferred"}

func refStates(e *event.Event) [][2]string {
	var out [][2]string
	add := func(f, v string) {
		if v != "" {
			out = append(out, [2]string{f, v})
		}
	}
	switch e.Kind {
	case event.KindPhoneQuality:
		if e.Quality != nil {
			add("quality", e.Quality.Event)
			add("tier", e.Quality.CurrentLimit)
		}
	case event.KindTemplateStatus:
		if e.Template != nil {
			add("tstatus", e.Template.Event)
		}
	case event.KindTemplateQuality:
		if e.Template != nil {
			add("tquality", e.Template.NewQuality)
		}
	case event.KindAccountUpdate:
		if e.Account != nil {
			add("account", e.Account.Event)
			add("ban", e.Account.BanState)
		}
	case event.KindCapability:
		if e.Capability != nil {
			add("tier", e.Capability.MessagingLimit)
		}
	}
	return out
}

var refFields = []string{"quality", "tier", "tstatus", "tquality", "account", "ban"}

func (r *ref) apply(p int, e *event.Event) Outcome {
	t := e.EventTime.UnixNano()
	if r.o.MaxFutureSkew > 0 && !e.ReceiveTime.IsZero() && t > e.ReceiveTime.UnixNano()+int64(r.o.MaxFutureSkew) {
		return Future
	}
	if w, ok := r.wm[p]; ok && t < w-int64(r.o.AllowedLateness) {
		return Late
	}
	if w, ok := r.wm[p]; !ok || t > w {
		r.wm[p] = t
	}
	optout := e.OptOut != nil && !e.OptOut.Resumed
	counts := false
	switch e.Kind {
	case event.KindStatus:
		counts = slices.Contains(refStatuses, e.Status)
		if !counts {
			return Ignored
		}
	case event.KindInbound:
		counts = true
	case event.KindUserPreference:
		counts = optout
	}
	states := refStates(e)
	if !counts && len(states) == 0 {
		return Ignored
	}
	ev := refEv{e: e}
	valid := func(k string) (int64, bool) {
		v, ok := r.dd[k]
		return v, ok && v >= r.ddCut
	}
	if e.Kind == event.KindStatus && e.MessageID != "" {
		k := "S|" + e.MessageID + "|" + e.Status
		if _, ok := valid(k); ok {
			return Duplicate
		}
		switch e.Status {
		case "delivered":
			if st, ok := valid("S|" + e.MessageID + "|sent"); ok {
				ev.lat, ev.latNs = true, t-st
			}
		case "read":
			_, ok := valid("S|" + e.MessageID + "|delivered")
			ev.readNoDeliv = !ok
		case "failed":
			_, ok := valid("S|" + e.MessageID + "|sent")
			ev.failNoSent = !ok
		}
		r.dd[k] = t
	} else if e.ID != "" {
		k := "E|" + e.ID
		if _, ok := valid(k); ok {
			return Duplicate
		}
		r.dd[k] = t
	}

	attr := e.Attribution
	if e.Recipient != nil && e.Recipient.Pseudonym != "" {
		pk := e.PhoneNumberID + "\x00" + e.Recipient.Pseudonym
		old, ok := r.attr[pk]
		ok = ok && old.t >= r.atCut
		if e.Kind == event.KindStatus && (e.Status == "sent" || e.Status == "accepted") && attr != nil {
			if !ok || t >= old.t {
				r.attr[pk] = refAttr{t: t, a: *attr}
			}
		} else if attr == nil && (e.Kind == event.KindInbound || optout) && ok {
			a := old.a
			attr = &a
		}
	}
	dims := map[quality.Dim]string{
		quality.DimWABA:        e.WABAID,
		quality.DimPhoneNumber: e.PhoneNumberID,
		quality.DimChannel:     string(e.Channel),
	}
	if attr != nil {
		dims[quality.DimTemplate] = attr.Template
		dims[quality.DimUseCase] = attr.UseCase
		dims[quality.DimCampaign] = attr.Campaign
	}
	if dims[quality.DimTemplate] == "" && e.Template != nil &&
		(e.Kind == event.KindTemplateStatus || e.Kind == event.KindTemplateQuality) {
		dims[quality.DimTemplate] = e.Template.Name
	}
	if e.Recipient != nil {
		dims[quality.DimCountry] = e.Recipient.CountryCode
	}

	best := NoKey
	for si, sp := range r.specs {
		var parts []string
		for _, d := range sp.By {
			v := dims[d]
			if v == "" {
				parts = nil
				break
			}
			if len(sp.By) > 1 { // a single value is its own id
				v = strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), "|", `\|`)
			}
			parts = append(parts, v)
		}
		if parts == nil {
			continue
		}
		id := strings.Join(parts, "|")
		k := r.spaces[si][id]
		if k == nil {
			if r.o.MaxKeys > 0 && len(r.spaces[si]) >= r.o.MaxKeys {
				best = min(best, Refused)
				continue
			}
			k = &refKey{last: noTime, labels: map[string]string{}}
			for _, d := range sp.By {
				k.labels[string(d)] = dims[d]
			}
			r.spaces[si][id] = k
		}
		k.last = max(k.last, t)
		for _, st := range states {
			r.seq++
			f := slices.Index(refFields, st[0])
			if cur, ok := k.stateAt(f, t); ok && cur == st[1] {
				continue
			}
			k.states = append(k.states, refState{t: t, seq: r.seq, f: f, v: st[1]})
		}
		if !counts {
			best = min(best, Applied)
			continue
		}
		res := int64(sp.Resolution)
		n := bucketsFor(sp)
		idx := floorDiv(t, res)
		if k.hasNewest && idx <= k.newest-n {
			best = min(best, Stale)
			continue
		}
		if !k.hasNewest || idx > k.newest {
			k.newest, k.hasNewest = idx, true
		}
		e2 := ev
		e2.idx = idx
		k.evs = append(k.evs, e2)
		best = min(best, Applied)
	}
	return best
}

// stateAt is the value of field f at time t: the entry with the greatest
// (time, sequence) at or before t.
func (k *refKey) stateAt(f int, t int64) (string, bool) {
	var best *refState
	for i := range k.states {
		s := &k.states[i]
		if s.f != f || s.t > t {
			continue
		}
		if best == nil || s.t > best.t || (s.t == best.t && s.seq > best.seq) {
			best = s
		}
	}
	if best == nil {
		return "", false
	}
	return best.v, true
}

func (r *ref) expire(now time.Time) {
	n := now.UnixNano()
	if r.o.DedupeHorizon > 0 {
		r.ddCut = max(r.ddCut, n-int64(r.o.DedupeHorizon))
	}
	if r.o.AttributionTTL > 0 {
		r.atCut = max(r.atCut, n-int64(r.o.AttributionTTL))
	}
	for si, sp := range r.specs {
		for id, k := range r.spaces[si] {
			if r.o.IdleTTL > 0 && k.last < n-int64(r.o.IdleTTL) {
				delete(r.spaces[si], id)
				continue
			}
			// Forget state changes before now-span except the latest
			// one of each field.
			cut := n - int64(sp.Span)
			var keep []refState
			for _, s := range k.states {
				if s.t >= cut {
					keep = append(keep, s)
					continue
				}
				latest := true
				for _, o := range k.states {
					if o.f == s.f && o.t < cut && (o.t > s.t || (o.t == s.t && o.seq > s.seq)) {
						latest = false
					}
				}
				if latest {
					keep = append(keep, s)
				}
			}
			k.states = keep
		}
	}
}

func refClass(e *event.Event) string {
	if e.Error == nil {
		return "other"
	}
	for _, c := range event.ErrorClasses() {
		if c == e.Error.Class {
			return c
		}
	}
	return "other"
}

// refQuantile is the histogram quantile written out directly: cumulative
// counts, then linear interpolation inside the bin that crosses q·total.
func refQuantile(samples []int64, q float64) float64 {
	bounds := []float64{1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600}
	counts := make([]float64, len(bounds)+1)
	for _, s := range samples {
		i := len(bounds)
		for j, b := range bounds {
			if float64(s) <= b*1e9 {
				i = j
				break
			}
		}
		counts[i]++
	}
	rank := q * float64(len(samples))
	cum := 0.0
	for i, c := range counts {
		if c > 0 && cum+c >= rank {
			lo := 0.0
			if i > 0 {
				lo = bounds[i-1]
			}
			if i == len(bounds) {
				return lo
			}
			return lo + (bounds[i]-lo)*(rank-cum)/c
		}
		cum += c
	}
	return 3600
}

func refRate(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return min(1, float64(a)/float64(b))
}

func (r *ref) values(si int, id string, from, to time.Time) (quality.Values, bool) {
	k := r.spaces[si][id]
	if k == nil {
		return quality.Values{}, false
	}
	sp := r.specs[si]
	res := int64(sp.Resolution)
	var v quality.Values
	f, t := from.UnixNano(), to.UnixNano()
	var lat []int64
	for _, ev := range k.evs {
		if f >= t || ev.idx < floorDiv(f, res) || ev.idx > floorDiv(t-1, res) || ev.idx <= k.newest-bucketsFor(sp) {
			continue
		}
		e := ev.e
		switch e.Kind {
		case event.KindStatus:
			switch e.Status {
			case "sent":
				v.Sent++
				v.Attempts++
			case "delivered":
				v.Delivered++
				v.Reached++
			case "read":
				v.Read++
				if ev.readNoDeliv {
					v.Reached++
				}
			case "failed":
				v.Failed++
				if ev.failNoSent {
					v.Attempts++
				}
				if v.FailuresByClass == nil {
					v.FailuresByClass = map[string]int64{}
				}
				v.FailuresByClass[refClass(e)]++
				if e.Error != nil && e.Error.Code != 0 {
					if v.FailuresByCode == nil {
						v.FailuresByCode = map[int64]int64{}
					}
					v.FailuresByCode[int64(e.Error.Code)]++
				}
			case "accepted":
				v.Accepted++
			case "deferred":
				v.Deferred++
			}
		case event.KindInbound:
			v.Inbound++
		}
		if e.OptOut != nil && !e.OptOut.Resumed {
			v.OptOuts++
		}
		if ev.lat {
			lat = append(lat, ev.latNs)
		}
	}
	v.DeliveryRate = refRate(v.Reached, v.Attempts)
	v.ReadRate = refRate(v.Read, v.Reached)
	v.FailureRate = refRate(v.Failed, v.Attempts)
	v.OptOutRate = refRate(v.OptOuts, v.Reached)
	if len(lat) > 0 {
		v.LatencySamples = int64(len(lat))
		v.LatencyP50 = refQuantile(lat, 0.5)
		v.LatencyP90 = refQuantile(lat, 0.9)
	}
	for f, dst := range []*string{&v.QualityEvent, &v.MessagingTier, &v.TemplateStatus, &v.TemplateQuality, &v.AccountEvent, &v.AccountBanState} {
		*dst, _ = k.stateAt(f, t)
	}
	return v, true
}

// gen makes random but plausible streams: messages with their statuses,
// replies, opt-outs and management events, out of order within (and
// sometimes beyond) the allowed lateness, with duplicates, over a few
// partitions whose clocks drift apart.
type gen struct {
	rng     *rand.Rand
	clock   time.Time
	lag     []time.Duration
	late    time.Duration
	msgs    []genMsg
	emitted []genEv
	nextID  int
	// wrongClocks emits events an hour ahead of their receive time; only
	// when MaxFutureSkew refuses them, since otherwise they move a
	// watermark an hour ahead and the rest of the stream is late.
	wrongClocks bool
}

type genMsg struct {
	id      string
	waba    string
	phone   string
	user    string
	country string
	channel event.Channel
	attr    *event.Attribution
	t       time.Time
}

type genEv struct {
	p int
	e *event.Event
}

func (g *gen) pick(xs ...string) string { return xs[g.rng.IntN(len(xs))] }

func (g *gen) base(kind event.Kind, waba, phone string, at time.Time) *event.Event {
	g.nextID++
	return &event.Event{ID: fmt.Sprintf("ev%d", g.nextID), Kind: kind, Channel: event.ChannelWhatsApp,
		EventTime: at, ReceiveTime: at.Add(time.Duration(g.rng.IntN(5)) * time.Second), WABAID: waba, PhoneNumberID: phone}
}

func (g *gen) attr() *event.Attribution {
	if g.rng.IntN(4) == 0 {
		return nil
	}
	return &event.Attribution{Template: g.pick("t1", "t2", "t|3", ""), UseCase: g.pick("u1", "u2"), Campaign: g.pick("c1", "", `c\2`)}
}

// next returns a batch of events for the current moment and advances the
// clock.
func (g *gen) next() []genEv {
	r := g.rng
	g.clock = g.clock.Add(time.Duration(r.IntN(3000)) * time.Millisecond)
	if r.IntN(50) == 0 {
		g.lag[r.IntN(len(g.lag))] = time.Duration(r.IntN(200)) * time.Second
	}
	var out []genEv
	partOf := func(waba string) int {
		if r.IntN(10) == 0 {
			return r.IntN(len(g.lag))
		}
		return int(waba[len(waba)-1]-'0') % len(g.lag)
	}
	// An event time: the partition's clock, minus a jitter that is
	// usually within the allowed lateness and sometimes beyond it.
	at := func(p int) time.Time {
		j := time.Duration(r.Int64N(int64(g.late) + 1))
		if r.IntN(20) == 0 {
			j = g.late + time.Duration(r.IntN(30))*time.Second
		}
		return g.clock.Add(-g.lag[p] - j)
	}
	switch x := r.IntN(100); {
	case x < 35: // a new message and its first status
		waba := g.pick("w1", "w2", "w3")
		m := genMsg{id: fmt.Sprintf("wamid.%d", len(g.msgs)), waba: waba, phone: waba + g.pick("-p1", "-p2"),
			user: g.pick("u1", "u2", "u3", "u4", "u5", "u6"), country: g.pick("55", "1", ""),
			channel: event.Channel(g.pick("whatsapp", "whatsapp", "sms", "email")), attr: g.attr()}
		p := partOf(waba)
		m.t = at(p)
		g.msgs = append(g.msgs, m)
		out = append(out, g.status(&m, p, g.pick("sent", "sent", "accepted", "delivered", "failed"), m.t))
	case x < 75: // a later status of an earlier message
		if len(g.msgs) == 0 {
			return nil
		}
		m := &g.msgs[len(g.msgs)-1-r.IntN(min(len(g.msgs), 30))]
		p := partOf(m.waba)
		t := m.t.Add(time.Duration(r.IntN(120_000)) * time.Millisecond)
		if r.IntN(4) == 0 || t.After(g.clock.Add(-g.lag[p])) {
			t = at(p)
		}
		out = append(out, g.status(m, p, g.pick("sent", "delivered", "delivered", "read", "read", "failed", "deferred", "played"), t))
	case x < 85: // a duplicate of anything emitted
		if len(g.emitted) == 0 {
			return nil
		}
		d := g.emitted[len(g.emitted)-1-r.IntN(min(len(g.emitted), 200))]
		cp := *d.e
		p := d.p
		if r.IntN(3) == 0 {
			p = r.IntN(len(g.lag))
		}
		out = append(out, genEv{p, &cp})
	case x < 93: // a reply or an opt-out
		waba := g.pick("w1", "w2", "w3")
		p := partOf(waba)
		var e *event.Event
		switch r.IntN(3) {
		case 0:
			e = g.base(event.KindInbound, waba, waba+g.pick("-p1", "-p2"), at(p))
			if r.IntN(2) == 0 {
				e.OptOut = &event.OptOut{Source: "keyword"}
			}
		case 1:
			e = g.base(event.KindUserPreference, waba, waba+g.pick("-p1", "-p2"), at(p))
			e.OptOut = &event.OptOut{Source: "user_preferences", Resumed: r.IntN(4) == 0}
		case 2:
			e = g.base(event.KindStatus, waba, waba+g.pick("-p1", "-p2"), at(p))
			e.MessageID, e.Status = fmt.Sprintf("wamid.x%d", g.nextID), "failed"
			e.Error = &event.Error{Code: 131050, Class: event.ClassOptedOut}
			e.OptOut = &event.OptOut{Source: "error_131050"}
			if r.IntN(2) == 0 {
				e.Attribution = g.attr()
			}
		}
		e.Recipient = &event.Recipient{Pseudonym: g.pick("u1", "u2", "u3", "u4", "u5", "u6"), CountryCode: g.pick("55", "1")}
		out = append(out, genEv{p, e})
	default: // management events and noise
		waba := g.pick("w1", "w2", "w3")
		p := partOf(waba)
		var e *event.Event
		switch r.IntN(7) {
		case 0:
			e = g.base(event.KindPhoneQuality, waba, g.pick(waba+"-p1", ""), at(p))
			e.Quality = &event.Quality{Event: g.pick("FLAGGED", "UNFLAGGED", "DOWNGRADE", ""), CurrentLimit: g.pick("TIER_1K", "TIER_10K", "")}
		case 1:
			e = g.base(event.KindTemplateStatus, waba, "", at(p))
			e.Template = &event.Template{Name: g.pick("t1", "t2"), Event: g.pick("APPROVED", "PAUSED", "DISABLED")}
			if r.IntN(2) == 0 {
				e.Attribution = &event.Attribution{Template: e.Template.Name}
			}
		case 2:
			e = g.base(event.KindTemplateQuality, waba, "", at(p))
			e.Template = &event.Template{Name: g.pick("t1", "t|3"), NewQuality: g.pick("GREEN", "YELLOW", "RED")}
		case 3:
			e = g.base(event.KindAccountUpdate, waba, "", at(p))
			e.Account = &event.Account{Event: g.pick("ACCOUNT_VIOLATION", "DISABLED_UPDATE"), BanState: g.pick("", "SCHEDULE_FOR_DISABLE", "REINSTATE")}
		case 4:
			e = g.base(event.KindCapability, waba, "", at(p))
			e.Capability = &event.Capability{MessagingLimit: g.pick("TIER_2K", "TIER_10K")}
		case 5:
			e = g.base(event.KindAccountAlert, waba, waba+"-p1", at(p))
		case 6:
			e = g.base(event.KindUnknown, waba, "", at(p))
		}
		out = append(out, genEv{p, e})
	}
	g.emitted = append(g.emitted, out...)
	return out
}

func (g *gen) status(m *genMsg, p int, st string, t time.Time) genEv {
	e := g.base(event.KindStatus, m.waba, m.phone, t)
	e.ID = "s|" + m.id + "|" + st
	e.Channel = m.channel
	e.MessageID, e.Status = m.id, st
	e.Recipient = &event.Recipient{Pseudonym: m.user, CountryCode: m.country}
	e.Attribution = m.attr
	if st == "failed" {
		switch g.rng.IntN(4) {
		case 0:
			e.Error = &event.Error{Code: 131026, Class: event.ClassUndeliverable}
		case 1:
			e.Error = &event.Error{Code: 130429, Class: event.ClassThrottle}
		case 2:
			e.Error = &event.Error{Code: 0, Class: event.ClassSpam}
		}
	}
	if g.wrongClocks && g.rng.IntN(50) == 0 {
		e.EventTime = e.EventTime.Add(time.Hour) // a wrong clock, refused by MaxFutureSkew
	}
	return genEv{p, e}
}

// refCase draws the options and keyspaces of one reference iteration,
// and a generator for its events.
func refCase(rng *rand.Rand) (Options, []Spec, *gen) {
	o := Options{
		AllowedLateness: time.Duration(rng.IntN(40)) * time.Second,
		DedupeHorizon:   time.Duration(60+rng.IntN(300)) * time.Second,
		IdleTTL:         time.Duration(60+rng.IntN(300)) * time.Second,
		AttributionTTL:  time.Duration(30+rng.IntN(600)) * time.Second,
		MaxFutureSkew:   time.Duration(rng.IntN(2)) * time.Minute,
	}
	if rng.IntN(4) == 0 {
		o.MaxKeys = 2 + rng.IntN(5)
	}
	res := []time.Duration{7 * time.Second, 10 * time.Second, 15 * time.Second, time.Minute}
	specs := []Spec{
		{By: []quality.Dim{quality.DimPhoneNumber}},
		{By: []quality.Dim{quality.DimTemplate}},
		{By: []quality.Dim{quality.DimWABA, quality.DimTemplate}},
		{By: []quality.Dim{quality.DimUseCase}},
		{By: []quality.Dim{quality.DimCountry, quality.DimChannel}},
		{By: []quality.Dim{quality.DimWABA}},
		{By: []quality.Dim{quality.DimTemplate, quality.DimCampaign, quality.DimUseCase}},
	}
	for i := range specs {
		specs[i].Resolution = res[rng.IntN(len(res))]
		specs[i].Span = specs[i].Resolution * time.Duration(1+rng.IntN(12))
	}
	g := &gen{rng: rng, clock: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC), lag: make([]time.Duration, 3), late: o.AllowedLateness,
		wrongClocks: o.MaxFutureSkew > 0}
	return o, specs, g
}

func TestAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	iterations := 200
	if testing.Short() {
		iterations = 30
	}
	for it := range iterations {
		o, specs, g := refCase(rng)
		st, rf := New(o, specs), newRef(o, specs)
		for step := range 600 {
			for _, ge := range g.next() {
				got, want := st.Apply(ge.p, ge.e), rf.apply(ge.p, ge.e)
				if got != want {
					t.Fatalf("iteration %d step %d: Apply(%d, %+v) = %v, reference %v", it, step, ge.p, *ge.e, got, want)
				}
			}
			if rng.IntN(25) == 0 {
				// The engine's clock: the slowest partition's watermark,
				// sometimes a bit behind or ahead.
				now := g.clock.Add(-time.Duration(rng.IntN(120)) * time.Second)
				st.Expire(now)
				rf.expire(now)
			}
			if rng.IntN(20) == 0 {
				compare(t, fmt.Sprintf("iteration %d step %d", it, step), st, rf, g.clock, rng)
			}
		}
		compare(t, fmt.Sprintf("iteration %d end", it), st, rf, g.clock, rng)
		for p := range 3 {
			w := st.Watermark(p)
			if rw, ok := rf.wm[p]; ok != !w.IsZero() || (ok && w.UnixNano() != rw) {
				t.Fatalf("iteration %d: watermark %d = %v, reference %v", it, p, w, rw)
			}
		}
		checkStats(t, st)
	}
}

// TestDecideApplyAgainstReference splits the keyspaces between two stores
// that count what a third, keyspace-less store decided (Decide,
// ApplyDecision), as a backtest's parts do: the outcomes (the best of the
// two) and every key's Values are the reference's, as with Apply.
func TestDecideApplyAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	iterations := 60
	if testing.Short() {
		iterations = 10
	}
	for it := range iterations {
		o, specs, g := refCase(rng)
		cut := 1 + rng.IntN(len(specs)-1)
		decider := New(o, nil)
		// One store shares the decider's hashes, the other hashes its own.
		sts := []*Store{NewSharing(decider, o, specs[:cut]), New(o, specs[cut:])}
		refs := []*ref{newRef(o, specs[:cut]), newRef(o, specs[cut:])}
		all := newRef(o, specs)
		var evs []event.Event
		var ds []Decision
		for step := range 600 {
			// The events of a step, decided in runs of one partition by
			// DecideBatch (every other step: the events of four steps,
			// ordered by partition, as the reference sees them too) or
			// one by one by Decide.
			ges := g.next()
			if step%2 == 0 {
				for range 3 {
					ges = append(ges, g.next()...)
				}
				slices.SortStableFunc(ges, func(a, b genEv) int { return a.p - b.p })
			}
			evs, ds = evs[:0], ds[:0]
			for lo := 0; lo < len(ges); {
				hi := lo + 1
				for hi < len(ges) && ges[hi].p == ges[lo].p {
					hi++
				}
				n := len(evs)
				for _, ge := range ges[lo:hi] {
					evs = append(evs, *ge.e)
					ds = append(ds, Decision{})
				}
				if step%2 == 0 {
					decider.DecideBatch(ges[lo].p, evs[n:], ds[n:])
				} else {
					for i := n; i < len(evs); i++ {
						decider.Decide(ges[lo].p, &evs[i], &ds[i])
					}
				}
				lo = hi
			}
			for i, ge := range ges {
				d := &ds[i]
				got := min(sts[0].ApplyDecision(d), sts[1].ApplyDecision(d))
				want := all.apply(ge.p, ge.e)
				refs[0].apply(ge.p, ge.e)
				refs[1].apply(ge.p, ge.e)
				if got != want {
					t.Fatalf("iteration %d step %d: Decide/ApplyDecision(%d, %+v) = %v (decided %v), reference %v", it, step, ge.p, *ge.e, got, d.Outcome(), want)
				}
				if d.Outcome() != Applied && d.Outcome() != want {
					t.Fatalf("iteration %d step %d: decided %v, reference %v", it, step, d.Outcome(), want)
				}
			}
			if rng.IntN(25) == 0 {
				now := g.clock.Add(-time.Duration(rng.IntN(120)) * time.Second)
				decider.Expire(now)
				all.expire(now)
				for i := range sts {
					sts[i].Expire(now)
					refs[i].expire(now)
				}
			}
			if rng.IntN(20) == 0 {
				for i := range sts {
					compare(t, fmt.Sprintf("iteration %d step %d store %d", it, step, i), sts[i], refs[i], g.clock, rng)
				}
			}
		}
		for i := range sts {
			compare(t, fmt.Sprintf("iteration %d end store %d", it, i), sts[i], refs[i], g.clock, rng)
			checkStats(t, sts[i])
		}
	}
}

// compare checks the key sets and Values of random periods of every key.
func compare(t *testing.T, where string, st *Store, rf *ref, clock time.Time, rng *rand.Rand) {
	t.Helper()
	for si := range rf.specs {
		var want []string
		for id := range rf.spaces[si] {
			want = append(want, id)
		}
		got := st.KeyIDs(si, nil)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("%s: spec %d keys %q, reference %q", where, si, got, want)
		}
		keys := st.Keys(si)
		if len(keys) != len(want) {
			t.Fatalf("%s: spec %d: Keys has %d keys, KeyIDs %d", where, si, len(keys), len(want))
		}
		for _, k := range keys {
			if !maps.Equal(k.Labels, rf.spaces[si][k.ID].labels) {
				t.Fatalf("%s: spec %d key %q: labels %v, reference %v", where, si, k.ID, k.Labels, rf.spaces[si][k.ID].labels)
			}
		}
		for _, id := range want {
			for range 3 {
				from := clock.Add(-time.Duration(rng.IntN(400_000)) * time.Millisecond)
				to := from.Add(time.Duration(rng.IntN(200_000)-10_000) * time.Millisecond)
				gv, _ := st.Values(si, id, from, to)
				wv, _ := rf.values(si, id, from, to)
				if !reflect.DeepEqual(gv, wv) {
					t.Fatalf("%s: spec %d key %q [%v, %v):\n got  %+v\n want %+v", where, si, id, from, to, gv, wv)
				}
			}
		}
		if _, ok := st.Values(si, "no such key", clock, clock); ok {
			t.Fatalf("%s: unknown key found", where)
		}
	}
}

// checkStats checks the store's internal invariants.
func checkStats(t *testing.T, st *Store) {
	t.Helper()
	for si, ks := range st.spaces {
		live := 0
		for i := range ks.keys {
			k := &ks.keys[i]
			if k.id == "" {
				continue
			}
			live++
			if ks.m.find(k.hash, ks.keys) != int32(i) {
				t.Fatalf("spec %d: key %q not indexed", si, k.id)
			}
			prev := int64(noBucket)
			for off := 0; off < len(k.cold); {
				idx, _, next := recordAt(k.cold, off, k.newest)
				if idx <= prev || idx >= k.hotFloor || idx > k.newest {
					t.Fatalf("spec %d key %q: record %d out of order (prev %d, floor %d, newest %d)", si, k.id, idx, prev, k.hotFloor, k.newest)
				}
				prev, off = idx, next
			}
			for sl, p := range k.hot {
				if p == 0 {
					continue
				}
				if b := ks.pool.at(p).idx; b < k.hotFloor || b >= k.hotFloor+ks.hotN || ks.slot(b) != sl {
					t.Fatalf("spec %d key %q: hot bucket %d misplaced (floor %d)", si, k.id, b, k.hotFloor)
				}
			}
		}
		if live != ks.m.len() {
			t.Fatalf("spec %d: %d live keys, %d in map", si, live, ks.m.len())
		}
	}
}

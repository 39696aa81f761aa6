package route

import (
	"errors"
	"hash/fnv"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Table is an immutable routing view of a file and a state, built after
// every applied command: picks read it without locks.
type Table struct {
	Seq      int64
	file     *File
	state    *State // a private copy; never changed
	useCases map[string]*tableUseCase
}

type tableUseCase struct {
	uc       *UseCase
	rotation []string // number ids in rotation, in strategy order (weighted: expanded by weight)
	reserves []string
	next     atomic.Uint64
}

// NewTable builds the view of f and s; s is copied.
func NewTable(f *File, s *State) *Table {
	t := &Table{Seq: s.Seq, file: f, state: s.Clone(), useCases: map[string]*tableUseCase{}}
	for i := range f.UseCases {
		uc := &f.UseCases[i]
		tu := &tableUseCase{uc: uc}
		var weights []int
		var ids []string
		for _, n := range uc.Numbers {
			if n.Role == RoleReserve {
				tu.reserves = append(tu.reserves, n.ID)
				continue
			}
			ids = append(ids, n.ID)
			weights = append(weights, n.Weight)
		}
		if uc.Strategy == StrategyWeighted {
			tu.rotation = smoothWeighted(ids, weights)
		} else {
			tu.rotation = ids
		}
		t.useCases[uc.Name] = tu
	}
	return t
}

// File returns the routes file of the table.
func (t *Table) File() *File { return t.file }

// State returns the table's state. Callers must not change it.
func (t *Table) State() *State { return t.state }

// smoothWeighted spreads ids by weight the way nginx's smooth weighted
// round robin does (a, a, b with weights 2, 1 becomes a, b, a), so that a
// heavy number does not get its whole share in one burst.
func smoothWeighted(ids []string, weights []int) []string {
	total := 0
	for _, w := range weights {
		total += w
	}
	cur := make([]int, len(ids))
	out := make([]string, 0, total)
	for range total {
		best := 0
		for i := range ids {
			cur[i] += weights[i]
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		out = append(out, ids[best])
	}
	return out
}

// Answer is what a pick returns: the channel to send on and, for
// WhatsApp, the number.
type Answer struct {
	UseCase       string     `json:"use_case"`
	Channel       string     `json:"channel"` // whatsapp, sms, email, push; none while the use case is paused
	PhoneNumberID string     `json:"phone_number_id,omitempty"`
	WABA          string     `json:"waba,omitempty"`
	Reason        string     `json:"reason,omitempty"` // why not the usual route
	Until         *time.Time `json:"until,omitempty"`  // of a pause
	Budget        *Budget    `json:"budget,omitempty"`
	Ramp          *Ramp      `json:"ramp,omitempty"`
	Seq           int64      `json:"seq"` // route state version the answer is based on
}

// Budget is the budget state of the picked number.
type Budget struct {
	Rate        float64 `json:"rate"`                  // messages per second allowed now (cap, ramp and replicas applied)
	DailyLimit  int     `json:"daily_limit,omitempty"` // unique recipients per 24 h allowed now; 0: unlimited
	DailyUsed   int     `json:"daily_used,omitempty"`
	RateCapped  bool    `json:"rate_capped,omitempty"` // a throttle is in force
	Replicas    int     `json:"replicas"`              // budgets are split over this many control processes
	NumberLimit float64 `json:"number_rate"`           // the number's configured rate
}

// Ramp is where a ramping number is in its schedule.
type Ramp struct {
	Step       int        `json:"step"`
	Fraction   float64    `json:"fraction"`
	Started    time.Time  `json:"started"`
	NextStepAt *time.Time `json:"next_step_at,omitempty"`
}

// Errors of Pick.
var (
	ErrNoUseCase = errors.New("no such use case")
	ErrNoRoute   = errors.New("no number has budget and the use case has no other channel")
)

// Picker answers picks over the current table, keeping per-number rate
// budgets (token buckets) and daily unique-recipient budgets per number
// and portfolio. Budgets live in the process: with several control
// processes behind a load balancer each gets 1/Replicas of every budget.
type Picker struct {
	table    atomic.Pointer[Table]
	replicas int

	mu         sync.Mutex
	buckets    map[string]*bucket
	recipients map[string]*recipients // "number:<id>" and "portfolio:<id>"
}

// NewPicker returns a picker over t; replicas (>= 1) splits the budgets.
func NewPicker(t *Table, replicas int) *Picker {
	if replicas < 1 {
		replicas = 1
	}
	p := &Picker{replicas: replicas, buckets: map[string]*bucket{}, recipients: map[string]*recipients{}}
	p.table.Store(t)
	return p
}

// SetTable swaps in a new table; budgets carry over.
func (p *Picker) SetTable(t *Table) { p.table.Store(t) }

// Table returns the current table.
func (p *Picker) Table() *Table { return p.table.Load() }

// Pick chooses the route of the next message of useCase at now.
// recipient, if not empty, is an opaque id of the recipient (the sender's
// own pseudonym; it is hashed and kept in memory only) for the daily
// unique-recipient budgets.
func (p *Picker) Pick(useCase, recipient string, now time.Time) (Answer, error) {
	t := p.table.Load()
	tu := t.useCases[useCase]
	if tu == nil {
		return Answer{}, ErrNoUseCase
	}
	ans := Answer{UseCase: useCase, Seq: t.Seq}
	u := t.state.EffectiveUseCase(useCase, now)
	if u.Paused {
		ans.Channel, ans.Reason, ans.Until = "none", "use case paused: "+u.Reason, u.PausedUntil
		return ans, nil
	}
	if u.Channel != "" && u.Channel != ChannelWhatsApp {
		ans.Channel, ans.Reason = u.Channel, "channel fallback: "+u.Reason
		return ans, nil
	}
	var rid uint64
	if recipient != "" {
		h := fnv.New64a()
		h.Write([]byte(recipient))
		rid = h.Sum64()
	}

	try := func(id, reason string) bool {
		ns := t.state.EffectiveNumber(id, now)
		if ns.State != StateActive {
			return false
		}
		n, _ := t.file.Number(id)
		b, ok := p.take(t, n, ns, rid, now)
		if !ok {
			return false
		}
		ans.Channel, ans.PhoneNumberID, ans.WABA, ans.Reason, ans.Budget = ChannelWhatsApp, id, n.WABA, reason, b
		if ns.RampStart != nil && !t.file.RampDone(*ns.RampStart, now) {
			fr, step, next := t.file.RampFraction(*ns.RampStart, now)
			ans.Ramp = &Ramp{Step: step, Fraction: fr, Started: *ns.RampStart}
			if !next.IsZero() {
				ans.Ramp.NextStepAt = &next
			}
		}
		return true
	}
	if u.Preferred != "" && try(u.Preferred, "switched: "+u.Reason) {
		return ans, nil
	}
	if n := len(tu.rotation); n > 0 {
		start := 0
		if tu.uc.Strategy != StrategyOrdered {
			start = int(tu.next.Add(1) % uint64(n))
		}
		// A weighted rotation repeats ids; try each once. Pools are a
		// handful of numbers: a slice on the stack beats a map.
		var triedBuf [8]string
		tried := triedBuf[:0]
		for i := range n {
			id := tu.rotation[(start+i)%n]
			if id == u.Preferred || slices.Contains(tried, id) {
				continue
			}
			tried = append(tried, id)
			if try(id, "") {
				// Move the rotation past the slots walked over, so that a
				// number out of rotation spreads its share over the others
				// instead of handing all of it to the one after it (test
				// fix: round robin over 3 with one paused gave 1/3 and 2/3).
				if i > 0 && tu.uc.Strategy != StrategyOrdered {
					tu.next.Add(uint64(i))
				}
				return ans, nil
			}
		}
	}
	for _, id := range tu.reserves {
		if id != u.Preferred && try(id, "reserve: no number in rotation is active with budget") {
			return ans, nil
		}
	}
	if len(tu.uc.Channels) > 1 {
		ans.Channel, ans.Reason = tu.uc.Channels[1], "no whatsapp number is active with budget"
		return ans, nil
	}
	return Answer{}, ErrNoRoute
}

// take spends one message of n's budgets if there is one.
func (p *Picker) take(t *Table, n *Number, ns NumberState, rid uint64, now time.Time) (*Budget, bool) {
	fraction := 1.0
	if ns.RampStart != nil {
		fraction, _, _ = t.file.RampFraction(*ns.RampStart, now)
	}
	rate := float64(n.Rate)
	capped := false
	if ns.RateCap > 0 && ns.RateCap < rate {
		rate, capped = ns.RateCap, true
	}
	rate = rate * fraction / float64(p.replicas)
	daily := t.file.DailyLimit(n)
	portfolioDaily := daily
	if daily > 0 {
		daily = max(1, int(float64(daily)*fraction)/p.replicas)
		portfolioDaily = max(1, portfolioDaily/p.replicas)
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.buckets[n.ID]
	if b == nil {
		b = &bucket{tokens: rate, last: now}
		p.buckets[n.ID] = b
	}
	if !b.allow(rate, now) {
		return nil, false
	}
	used := 0
	if rid != 0 && daily > 0 {
		nr := p.recipientsOf("number:" + n.ID)
		pr := p.recipientsOf("portfolio:" + n.Portfolio)
		newToNumber := !nr.seen(rid, now)
		newToPortfolio := !pr.seen(rid, now)
		if newToNumber && nr.count(now) >= daily || newToPortfolio && pr.count(now) >= portfolioDaily {
			b.tokens++ // not sent: give the token back
			return nil, false
		}
		nr.add(rid, now)
		pr.add(rid, now)
		used = nr.count(now)
	}
	return &Budget{Rate: rate, DailyLimit: daily, DailyUsed: used, RateCapped: capped, Replicas: p.replicas, NumberLimit: float64(n.Rate)}, true
}

func (p *Picker) recipientsOf(key string) *recipients {
	r := p.recipients[key]
	if r == nil {
		r = &recipients{last: map[uint64]int64{}}
		p.recipients[key] = r
	}
	return r
}

// bucket is a token bucket holding up to one second of rate.
type bucket struct {
	tokens float64
	last   time.Time
}

func (b *bucket) allow(rate float64, now time.Time) bool {
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(max(rate, 1), b.tokens+el*rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// recipients counts the distinct recipients of the last 24 hours, by the
// hour each was last sent to.
type recipients struct {
	last    map[uint64]int64 // recipient -> hour last sent to
	perHour [24]int
	hour    int64 // the latest hour the counts are up to
	total   int
}

func (r *recipients) advance(now time.Time) {
	h := now.Unix() / 3600
	if h <= r.hour {
		return
	}
	if h-r.hour >= 24 {
		clear(r.last)
		r.perHour, r.total = [24]int{}, 0
	} else {
		for x := r.hour + 1; x <= h; x++ {
			r.total -= r.perHour[x%24]
			r.perHour[x%24] = 0
		}
		for id, at := range r.last {
			if at <= h-24 {
				delete(r.last, id)
			}
		}
	}
	r.hour = h
}

func (r *recipients) seen(id uint64, now time.Time) bool {
	r.advance(now)
	_, ok := r.last[id]
	return ok
}

func (r *recipients) count(now time.Time) int {
	r.advance(now)
	return r.total
}

func (r *recipients) add(id uint64, now time.Time) {
	r.advance(now)
	h := now.Unix() / 3600
	if at, ok := r.last[id]; ok {
		r.perHour[at%24]--
		r.total--
	}
	r.last[id] = h
	r.perHour[h%24]++
	r.total++
}

// UseCaseNames returns the use cases of the table, in file order.
func (t *Table) UseCaseNames() []string {
	out := make([]string, 0, len(t.file.UseCases))
	for _, uc := range t.file.UseCases {
		out = append(out, uc.Name)
	}
	return out
}

// View is a use case as the API shows it: file and state together.
type View struct {
	Name      string       `json:"name"`
	Strategy  string       `json:"strategy"`
	Channels  []string     `json:"channels"`
	Channel   string       `json:"channel"`
	Preferred string       `json:"preferred,omitempty"`
	Paused    bool         `json:"paused"`
	Until     *time.Time   `json:"paused_until,omitempty"`
	Lock      *Lock        `json:"lock,omitempty"`
	Reason    string       `json:"reason,omitempty"`
	Since     *time.Time   `json:"since,omitempty"`
	Numbers   []NumberView `json:"numbers"`
	Seq       int64        `json:"seq"`
}

// NumberView is a number of a use case as the API shows it.
type NumberView struct {
	ID         string `json:"id"`
	WABA       string `json:"waba,omitempty"`
	Portfolio  string `json:"portfolio,omitempty"`
	Role       string `json:"role"`
	Weight     int    `json:"weight"`
	Rate       Rate   `json:"rate"`
	DailyLimit int    `json:"daily_limit,omitempty"`
	NumberState
	Ramp *Ramp `json:"ramp,omitempty"`
}

// View returns the view of one use case at now.
func (t *Table) View(name string, now time.Time) (View, bool) {
	uc, ok := t.file.UseCase(name)
	if !ok {
		return View{}, false
	}
	u := t.state.EffectiveUseCase(name, now)
	v := View{Name: name, Strategy: uc.Strategy, Channels: slices.Clone(uc.Channels), Channel: u.Channel,
		Preferred: u.Preferred, Paused: u.Paused, Until: u.PausedUntil, Lock: u.Lock, Reason: u.Reason, Seq: t.Seq}
	if v.Channel == "" {
		v.Channel = ChannelWhatsApp
	}
	if !u.Since.IsZero() {
		since := u.Since
		v.Since = &since
	}
	for _, n := range uc.Numbers {
		ns := t.state.EffectiveNumber(n.ID, now)
		nv := NumberView{ID: n.ID, WABA: n.WABA, Portfolio: n.Portfolio, Role: n.Role, Weight: n.Weight, Rate: n.Rate,
			DailyLimit: t.file.DailyLimit(&n), NumberState: ns}
		if ns.RampStart != nil && !t.file.RampDone(*ns.RampStart, now) {
			fr, step, next := t.file.RampFraction(*ns.RampStart, now)
			nv.Ramp = &Ramp{Step: step, Fraction: fr, Started: *ns.RampStart}
			if !next.IsZero() {
				nv.Ramp.NextStepAt = &next
			}
		}
		v.Numbers = append(v.Numbers, nv)
	}
	return v, true
}

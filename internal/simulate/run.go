package simulate

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"vigia/internal/alert"
	"vigia/internal/route"
)

// Options are what `vigia simulate` takes besides the scenario. Empty
// fields keep the scenario's values.
type Options struct {
	Ingest, Control, Evaluator      string // base URLs
	AppSecret, PickToken, ReadToken string
	Speed                           float64

	Progress     io.Writer    // a line per notable moment; nil: quiet
	HTTPClient   *http.Client // nil: a client with a 10 s timeout
	Tick         time.Duration
	PollInterval time.Duration // of the evaluator's alerts API
	Now          func() time.Time
}

// resolved is Options merged with the scenario and the environment.
type resolved struct {
	ingest, control, evaluator   string
	secret, pickToken, readToken string
	speed                        float64
	tick, poll                   time.Duration
	now                          func() time.Time
	client                       *http.Client
	progress                     io.Writer
}

func resolve(sc *Scenario, o Options) (resolved, error) {
	t := sc.Target
	pick := func(flag, file, env string) string {
		if flag != "" {
			return flag
		}
		if file != "" {
			return file
		}
		if env != "" {
			return os.Getenv(env)
		}
		return ""
	}
	r := resolved{
		ingest: strings.TrimRight(pick(o.Ingest, t.Ingest, ""), "/"), control: strings.TrimRight(pick(o.Control, t.Control, ""), "/"),
		evaluator: strings.TrimRight(pick(o.Evaluator, t.Evaluator, ""), "/"),
		secret:    pick(o.AppSecret, t.AppSecret, t.AppSecretEnv), pickToken: pick(o.PickToken, t.PickToken, t.PickTokenEnv),
		readToken: pick(o.ReadToken, t.ReadToken, t.ReadTokenEnv),
		speed:     sc.Speed, tick: o.Tick, poll: o.PollInterval, now: o.Now, client: o.HTTPClient, progress: o.Progress,
	}
	if o.Speed > 0 {
		r.speed = o.Speed
	}
	if r.tick <= 0 {
		r.tick = 100 * time.Millisecond
	}
	if r.poll <= 0 {
		r.poll = 500 * time.Millisecond
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.client == nil {
		r.client = &http.Client{Timeout: 10 * time.Second}
	}
	if r.progress == nil {
		r.progress = io.Discard
	}
	var errs []error
	for _, u := range []struct{ name, v string }{{"ingest", r.ingest}, {"control", r.control}} {
		if u.v == "" {
			errs = append(errs, fmt.Errorf("target.%s: required (scenario or -%s)", u.name, u.name))
		}
	}
	for _, u := range []struct{ name, v string }{{"ingest", r.ingest}, {"control", r.control}, {"evaluator", r.evaluator}} {
		if u.v == "" {
			continue
		}
		if pu, err := url.Parse(u.v); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			errs = append(errs, fmt.Errorf("target.%s: not an http(s) URL: %q", u.name, u.v))
		}
	}
	if r.secret == "" {
		errs = append(errs, errors.New("target.app_secret: required to sign webhooks (scenario, app_secret_env or -app-secret)"))
	}
	if r.pickToken == "" {
		errs = append(errs, errors.New("target.pick_token: required to ask control where to send (scenario, pick_token_env or -pick-token)"))
	}
	return r, errors.Join(errs...)
}

// Run plays the scenario against a running Vigia and returns the report.
// It stops early, with what it saw so far, when ctx ends.
func Run(ctx context.Context, sc *Scenario, o Options) (*Report, error) {
	opts, err := resolve(sc, o)
	if err != nil {
		return nil, err
	}
	r := newRunner(sc, opts)
	if err := r.preflight(ctx); err != nil {
		return nil, err
	}
	return r.run(ctx)
}

type runner struct {
	sc    *Scenario
	o     resolved
	rng   *rand.Rand
	runID uint64
	seq   uint64
	t0    time.Time
	pool  []string // recipients

	queue   pending
	acc     map[string]float64 // use case → fractional messages owed
	tplNext map[string]int
	mgmt    []mgmtEvent
	numbers map[string]numberInfo // every number seen, declared or picked

	sends []send
	stats Stats

	mu     sync.Mutex
	alerts map[string]seenAlert // occurrence → first firing record seen
	logMu  sync.Mutex
}

type numberInfo struct {
	waba string
	num  Number
}

// send is one message the simulated sender sent, where pick said.
type send struct {
	wall     time.Time
	useCase  string
	channel  string
	number   string
	waba     string
	template string
}

type seenAlert struct {
	name        string
	fingerprint string
	labels      map[string]string
	firedAt     time.Time
}

// item is a webhook update due at a scenario time.
type item struct {
	due    time.Duration
	waba   string
	number Number
	status *wsStatus
	msg    *inbound
}

type pending []item

func (p pending) Len() int           { return len(p) }
func (p pending) Less(i, j int) bool { return p[i].due < p[j].due }
func (p pending) Swap(i, j int)      { p[i], p[j] = p[j], p[i] }
func (p *pending) Push(x any)        { *p = append(*p, x.(item)) }
func (p *pending) Pop() any {
	old := *p
	it := old[len(old)-1]
	*p = old[:len(old)-1]
	return it
}

// mgmtEvent is a management webhook (template status, quality) due at a
// scenario time.
type mgmtEvent struct {
	due  time.Duration
	what string
	body func(at time.Time) ([]byte, error)
	sent bool
}

var ddds = []string{"11", "12", "13", "19", "21", "27", "31", "41", "47", "48", "51", "61", "62", "71", "81", "85", "91", "92"}

func newRunner(sc *Scenario, o resolved) *runner {
	rng := rand.New(rand.NewPCG(sc.Seed, sc.Seed^0x9e3779b97f4a7c15))
	r := &runner{sc: sc, o: o, rng: rng, runID: rng.Uint64(), acc: map[string]float64{}, tplNext: map[string]int{},
		numbers: map[string]numberInfo{}, alerts: map[string]seenAlert{}}
	r.pool = make([]string, sc.Traffic.Recipients)
	for i := range r.pool {
		r.pool[i] = fmt.Sprintf("55%s9%08d", ddds[rng.IntN(len(ddds))], rng.IntN(1e8))
	}
	for _, w := range sc.WABAs {
		for _, n := range w.Numbers {
			r.numbers[n.ID] = numberInfo{waba: w.ID, num: n}
		}
	}
	for i := range sc.Incidents {
		in := &sc.Incidents[i]
		switch in.Type {
		case TemplatePaused:
			t := sc.template(in.Template)
			for _, w := range r.templateWABAs() {
				r.mgmt = append(r.mgmt, mgmtEvent{due: in.Start(), what: "template " + t.Name + " PAUSED",
					body: func(at time.Time) ([]byte, error) { return templateStatusBody(w, t, "PAUSED", at) }})
				if in.For > 0 && in.End(sc.Duration.D()) < sc.Duration.D() {
					r.mgmt = append(r.mgmt, mgmtEvent{due: in.End(sc.Duration.D()), what: "template " + t.Name + " REINSTATED",
						body: func(at time.Time) ([]byte, error) { return templateStatusBody(w, t, "REINSTATED", at) }})
				}
			}
		case QualityDowngrade:
			waba, n, _ := sc.wabaOf(in.Number)
			limit := in.Limit
			r.mgmt = append(r.mgmt, mgmtEvent{due: in.Start(), what: "number " + n.ID + " quality DOWNGRADE",
				body: func(at time.Time) ([]byte, error) { return qualityBody(waba, n, "DOWNGRADE", limit, "TIER_10K", at) }})
			if in.For > 0 && in.End(sc.Duration.D()) < sc.Duration.D() {
				r.mgmt = append(r.mgmt, mgmtEvent{due: in.End(sc.Duration.D()), what: "number " + n.ID + " quality UPGRADE",
					body: func(at time.Time) ([]byte, error) { return qualityBody(waba, n, "UPGRADE", "TIER_10K", limit, at) }})
			}
		}
	}
	slices.SortStableFunc(r.mgmt, func(a, b mgmtEvent) int { return int(a.due - b.due) })
	return r
}

// templateWABAs are the WABAs a template lives in: templates belong to a
// WABA; the scenario's templates are in every WABA it declares.
func (r *runner) templateWABAs() []string {
	out := make([]string, len(r.sc.WABAs))
	for i, w := range r.sc.WABAs {
		out[i] = w.ID
	}
	return out
}

func (r *runner) logf(format string, args ...any) {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	fmt.Fprintf(r.o.progress, "%7.1fs  %s\n", r.o.now().Sub(r.t0).Seconds(), fmt.Sprintf(format, args...))
}

// preflight checks that Vigia answers and that every use case of the
// scenario can be picked with the token, so that a typo fails at once
// with a clear message rather than as a report full of errors.
func (r *runner) preflight(ctx context.Context) error {
	var errs []error
	for _, base := range []string{r.o.ingest, r.o.control, r.o.evaluator} {
		if base == "" {
			continue
		}
		if err := r.waitReady(ctx, base, 30*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for _, uc := range r.sc.UseCases {
		if _, err := r.pick(ctx, uc.Name, r.pool[0]); err != nil && !errors.Is(err, errNoRoute) {
			errs = append(errs, fmt.Errorf("use case %s: %w", uc.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (r *runner) waitReady(ctx context.Context, base string, within time.Duration) error {
	deadline := time.Now().Add(within)
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/-/ready", nil)
		resp, err := r.o.client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s not ready within %s: %s", base, within, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var errNoRoute = errors.New("no route (503)")

// pick asks control where the next message of useCase goes.
func (r *runner) pick(ctx context.Context, useCase, recipient string) (route.Answer, error) {
	var ans route.Answer
	body, _ := json.Marshal(map[string]string{"recipient": recipient})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.o.control+"/api/v1/routes/"+url.PathEscape(useCase)+"/pick", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+r.o.pickToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.o.client.Do(req)
	if err != nil {
		return ans, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusServiceUnavailable:
		return ans, errNoRoute
	case resp.StatusCode != http.StatusOK:
		return ans, fmt.Errorf("pick: %s: %s", resp.Status, strings.TrimSpace(string(data)))
	}
	if err := json.Unmarshal(data, &ans); err != nil {
		return ans, fmt.Errorf("pick: %w", err)
	}
	return ans, nil
}

func (r *runner) simNow() time.Duration {
	return time.Duration(float64(r.o.now().Sub(r.t0)) * r.o.speed)
}

// wallAt is the wall time of a scenario offset.
func (r *runner) wallAt(d time.Duration) time.Time {
	return r.t0.Add(time.Duration(float64(d) / r.o.speed))
}

func (r *runner) run(ctx context.Context) (*Report, error) {
	total := r.sc.Duration.D()
	r.t0 = r.o.now()
	r.logf("scenario %q: %s of scenario time at speed %g (about %s of wall time)", r.sc.Name, total, r.o.speed,
		time.Duration(float64(total)/r.o.speed).Round(time.Second))
	pctx, stopPoll := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if r.o.evaluator != "" {
		wg.Add(1)
		go func() { defer wg.Done(); r.pollAlerts(pctx) }()
	}
	started := map[int]bool{}
	last := time.Duration(0)
	tick := time.NewTicker(r.o.tick)
	defer tick.Stop()
	for ctx.Err() == nil {
		now := r.simNow()
		if now > total {
			now = total
		}
		for i := range r.sc.Incidents {
			in := &r.sc.Incidents[i]
			if !started[i] && now >= in.Start() {
				started[i] = true
				r.logf("incident %q (%s) starts", in.Name, in.Type)
			}
		}
		r.postManagement(ctx, now)
		r.generate(ctx, last, now)
		r.flush(ctx, now)
		last = now
		if now >= total {
			break
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	r.logf("scenario over: %d messages sent, %d webhooks posted", r.stats.Messages, r.stats.Webhooks)
	// One last look at the alerts, then the audit log.
	stopPoll()
	wg.Wait()
	fctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if r.o.evaluator != "" {
		if err := r.pollOnce(fctx); err != nil {
			r.stats.Problems = append(r.stats.Problems, "alerts API: "+err.Error())
		}
	}
	var audit []route.Entry
	if r.o.readToken != "" {
		var err error
		if audit, err = r.fetchAudit(fctx); err != nil {
			r.stats.Problems = append(r.stats.Problems, "audit log: "+err.Error())
		}
	}
	return r.report(audit), ctx.Err()
}

// rateAt is a use case's rate at scenario time t, with the peaks of the
// throughput incidents that name it.
func (r *runner) rateAt(uc UseCase, t time.Duration) float64 {
	rate := float64(uc.Rate)
	for i := range r.sc.Incidents {
		in := &r.sc.Incidents[i]
		if in.Type == ThroughputErrors && in.UseCase == uc.Name && t >= in.Start() && t < in.End(r.sc.Duration.D()) {
			rate *= in.Factor
		}
	}
	return rate
}

// generate sends the messages due between scenario times from and to.
func (r *runner) generate(ctx context.Context, from, to time.Duration) {
	if to <= from {
		return
	}
	dt := (to - from).Seconds()
	for _, uc := range r.sc.UseCases {
		r.acc[uc.Name] += r.rateAt(uc, from) * dt
		n := int(r.acc[uc.Name])
		r.acc[uc.Name] -= float64(n)
		// Spread the messages over the interval: a tick that came late
		// (a slow machine) must not move them past an incident's end.
		for i := range n {
			if ctx.Err() != nil {
				return
			}
			r.sendOne(ctx, uc, from+(to-from)*time.Duration(i+1)/time.Duration(n))
		}
	}
}

func (r *runner) sendOne(ctx context.Context, uc UseCase, now time.Duration) {
	tpl := uc.Templates[r.tplNext[uc.Name]%len(uc.Templates)]
	r.tplNext[uc.Name]++
	recipient := r.pool[r.rng.IntN(len(r.pool))]
	// The message counts from when it asked: a pick answered during a
	// switch is on the route of that moment.
	asked := r.o.now()
	ans, err := r.pick(ctx, uc.Name, recipient)
	switch {
	case errors.Is(err, errNoRoute):
		r.stats.Unroutable++
		return
	case err != nil:
		if ctx.Err() == nil {
			r.stats.PickErrors++
			if r.stats.PickErrors == 1 || r.stats.PickErrors%100 == 0 {
				r.logf("pick %s failed (%d so far): %v", uc.Name, r.stats.PickErrors, err)
			}
		}
		return
	}
	s := send{wall: asked, useCase: uc.Name, channel: ans.Channel, number: ans.PhoneNumberID, waba: ans.WABA, template: tpl}
	r.sends = append(r.sends, s)
	r.stats.Messages++
	if ans.Channel != "whatsapp" {
		return // SMS, e-mail, push, or none (paused): no Meta webhook
	}
	info, ok := r.numbers[ans.PhoneNumberID]
	if !ok {
		// A number of the routes file the scenario did not declare: it
		// still gets traffic, under a made-up display number.
		d := digits(ans.PhoneNumberID)
		if len(d) > 7 {
			d = d[len(d)-7:]
		}
		info = numberInfo{waba: ans.WABA, num: Number{ID: ans.PhoneNumberID, Display: "+1 555 " + d}}
		r.numbers[ans.PhoneNumberID] = info
		r.logf("pick answered number %s, not declared in the scenario", ans.PhoneNumberID)
	}
	r.play(info, uc, r.sc.template(tpl), recipient, now)
}

// play schedules what Meta sends about one message sent at scenario time
// now: its statuses, and the user's reply or opt-out.
func (r *runner) play(info numberInfo, uc UseCase, tpl Template, recipient string, now time.Duration) {
	tr := r.sc.Traffic
	r.seq++
	id := wamid(recipient, r.runID, r.seq)
	base := wsStatus{ID: id, RecipientID: recipient, RecipientType: "individual",
		BizOpaqueCallbackData: callbackData(tpl.Name, uc.Name, uc.Campaign)}
	at := func(d time.Duration, st wsStatus) {
		heap.Push(&r.queue, item{due: now + d, waba: info.waba, number: info.num, status: &st})
	}
	sentAfter := tr.SentAfter.D()
	billed := func(st string) wsStatus {
		s := base
		s.Status = st
		s.Pricing = &pricing{Billable: true, PricingModel: "PMP", Type: "regular", Category: tpl.Category}
		if st == "sent" && r.rng.IntN(3) == 0 {
			c := &conversation{ID: fmt.Sprintf("%016x%016x", r.rng.Uint64(), r.rng.Uint64())}
			c.Origin.Type = tpl.Category
			s.Conversation = c
		}
		return s
	}
	failed := func(code int) wsStatus {
		s := base
		s.Status = "failed"
		s.Errors = []apiError{apiErr(code)}
		return s
	}

	in, hit := r.incidentFor(info, tpl.Name, now)
	optOut := *tr.OptOut
	if hit {
		switch in.Type {
		case DeliveryCollapse:
			// Accepted, then never delivered.
			at(sentAfter, billed("sent"))
			at(r.delay(*tr.DeliveredAfter), failed(in.Code))
			return
		case OptOutSpike:
			// Some of the template's users have already blocked
			// marketing; most of the rest who get it now answer STOP.
			if r.rng.Float64() < 0.2 {
				at(sentAfter, failed(in.Code))
				return
			}
			optOut = *in.Fraction
		default:
			at(sentAfter, failed(in.Code))
			return
		}
	} else if r.rng.Float64() < *tr.Failed {
		at(sentAfter, failed([]int{131026, 131049, 131047}[r.rng.IntN(3)]))
		return
	}
	at(sentAfter, billed("sent"))
	if r.rng.Float64() >= *tr.Delivered {
		return // stays sent: the phone is off
	}
	delivered := sentAfter + r.delay(*tr.DeliveredAfter)
	at(delivered, billed("delivered"))
	if r.rng.Float64() < *tr.Read {
		at(delivered+r.delay(*tr.ReadAfter), billed("read"))
	}
	switch p := r.rng.Float64(); {
	case p < optOut:
		body := []string{"STOP", "PARAR", "SAIR", "parar por favor"}[r.rng.IntN(4)]
		r.inbound(info, recipient, id, body, delivered+r.delay(*tr.ReplyAfter))
		r.stats.OptOuts++
	case p < optOut+*tr.Reply:
		body := []string{"Obrigado!", "Quando chega meu pedido?", "ok", "Pode me ligar?"}[r.rng.IntN(4)]
		r.inbound(info, recipient, id, body, delivered+r.delay(*tr.ReplyAfter))
		r.stats.Replies++
	}
}

func (r *runner) inbound(info numberInfo, from, replyTo, body string, due time.Duration) {
	r.seq++
	m := inbound{From: from, ID: wamid(from, r.runID^0xffff, r.seq), Type: "text", Text: &textBody{Body: body},
		Context: &msgContext{From: digits(info.num.Display), ID: replyTo}}
	heap.Push(&r.queue, item{due: due, waba: info.waba, number: info.num, msg: &m})
}

func (r *runner) delay(s Span) time.Duration {
	if s.Max <= s.Min {
		return s.Min
	}
	return s.Min + time.Duration(r.rng.Int64N(int64(s.Max-s.Min)))
}

// incidentFor returns the incident that hits a message sent now on the
// number with the template, if one does (drawn by its fraction).
func (r *runner) incidentFor(info numberInfo, template string, now time.Duration) (*Incident, bool) {
	total := r.sc.Duration.D()
	for i := range r.sc.Incidents {
		in := &r.sc.Incidents[i]
		if now < in.Start() || now >= in.End(total) {
			continue
		}
		var applies bool
		switch in.Type {
		case NumberSpamLimited, NumberBlocked, DeliveryCollapse, ThroughputErrors:
			applies = info.num.ID == in.Number
		case TemplatePaused:
			applies = template == in.Template
		case OptOutSpike:
			applies = template == in.Template
			if applies {
				return in, true // the fraction is the share answering STOP
			}
		case PlatformOutage:
			applies = in.WABA == "" || in.WABA == info.waba
		}
		if applies && r.rng.Float64() < *in.Fraction {
			return in, true
		}
	}
	return nil, false
}

// flush posts every update due by scenario time now, one webhook per
// number, as Meta batches them.
func (r *runner) flush(ctx context.Context, now time.Duration) {
	batches := map[string]*batch{}
	var order []string
	for r.queue.Len() > 0 && r.queue[0].due <= now {
		it := heap.Pop(&r.queue).(item)
		b := batches[it.number.ID]
		if b == nil {
			b = &batch{waba: it.waba, number: it.number}
			batches[it.number.ID] = b
			order = append(order, it.number.ID)
		}
		stamp := unix(r.o.now())
		if it.status != nil {
			st := *it.status
			st.Timestamp = stamp
			b.statuses = append(b.statuses, st)
		} else {
			m := *it.msg
			m.Timestamp = stamp
			b.messages = append(b.messages, m)
			c := contact{WAID: m.From}
			c.Profile.Name = "Cliente " + m.From[len(m.From)-4:]
			b.contacts = append(b.contacts, c)
		}
	}
	for _, k := range order {
		b := batches[k]
		// Meta sends up to 1000 updates per request.
		for len(b.statuses) > 0 || len(b.messages) > 0 {
			part := &batch{waba: b.waba, number: b.number}
			n := min(len(b.statuses), 1000)
			part.statuses, b.statuses = b.statuses[:n], b.statuses[n:]
			if n < 1000 {
				part.messages, part.contacts = b.messages, b.contacts
				b.messages, b.contacts = nil, nil
			}
			body, err := part.body()
			if err != nil {
				r.stats.Problems = append(r.stats.Problems, "encode webhook: "+err.Error())
				continue
			}
			r.post(ctx, body, len(part.statuses)+len(part.messages))
		}
	}
}

// postManagement posts the management webhooks (template status, number
// quality) due by scenario time now.
func (r *runner) postManagement(ctx context.Context, now time.Duration) {
	for i := range r.mgmt {
		m := &r.mgmt[i]
		if m.sent || m.due > now {
			continue
		}
		m.sent = true
		body, err := m.body(r.o.now())
		if err != nil {
			r.stats.Problems = append(r.stats.Problems, "encode webhook: "+err.Error())
			continue
		}
		r.logf("webhook: %s", m.what)
		r.post(ctx, body, 1)
	}
}

func (r *runner) post(ctx context.Context, body []byte, updates int) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.o.ingest+"/webhooks/whatsapp", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", Sign(body, r.o.secret))
	resp, err := r.o.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			r.stats.IngestErrors++
			r.logf("post webhook: %v", err)
		}
		return
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		r.stats.IngestErrors++
		if r.stats.IngestErrors == 1 || r.stats.IngestErrors%100 == 0 {
			r.logf("ingest answered %s (%d refusals so far): %s", resp.Status, r.stats.IngestErrors, strings.TrimSpace(string(data)))
		}
		return
	}
	r.stats.Webhooks++
	r.stats.Updates += updates
}

// pollAlerts reads the evaluator's alerts API until ctx ends, keeping the
// first firing record of every alert occurrence.
func (r *runner) pollAlerts(ctx context.Context) {
	t := time.NewTicker(r.o.poll)
	defer t.Stop()
	for {
		_ = r.pollOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *runner) pollOnce(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.o.evaluator+"/api/v1/alerts", nil)
	resp, err := r.o.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /api/v1/alerts: %s", resp.Status)
	}
	var out struct {
		Alerts []alert.Alert `json:"alerts"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&out); err != nil {
		return fmt.Errorf("GET /api/v1/alerts: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range out.Alerts {
		if a.State != alert.StateFiring || a.FiredAt == nil {
			continue
		}
		occ := a.Occurrence()
		if _, ok := r.alerts[occ]; ok {
			continue
		}
		r.alerts[occ] = seenAlert{name: a.Name, fingerprint: a.Fingerprint, labels: a.Labels, firedAt: *a.FiredAt}
		if !r.t0.IsZero() {
			r.logf("alert %s firing %s", a.Name, describeLabels(a.Labels))
		}
	}
	return nil
}

func describeLabels(l map[string]string) string {
	var parts []string
	for _, k := range []string{"phone_number", "template", "waba", "use_case", "campaign", "channel"} {
		if v, ok := l[k]; ok {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, " ")
}

// fetchAudit reads control's audit log, newest first.
func (r *runner) fetchAudit(ctx context.Context) ([]route.Entry, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.o.control+"/api/v1/audit?limit=10000", nil)
	req.Header.Set("Authorization", "Bearer "+r.o.readToken)
	resp, err := r.o.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("GET /api/v1/audit: %s: %s", resp.Status, strings.TrimSpace(string(data)))
	}
	var out struct {
		Entries []route.Entry `json:"entries"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&out); err != nil {
		return nil, fmt.Errorf("GET /api/v1/audit: %w", err)
	}
	return out.Entries, nil
}

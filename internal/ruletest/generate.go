package ruletest

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"vigia/internal/event"
)

// message is a generated outbound message, remembered so that later
// delivered, read and opt-out lines can refer to it.
type message struct {
	id, user string
	sentAt   time.Time
	base     event.Event
}

// generator turns input lines into events, keeping per route (WABA, number,
// channel) the messages still waiting for a delivered or read status and
// the users most recently sent to.
type generator struct {
	start     time.Time
	seq       int
	sent      map[string][]*message // waiting for delivered
	delivered map[string][]*message // waiting for read
	recent    map[string][]*message // newest last
	out       []event.Event
}

// Generate expands input lines (see the package doc) into events ordered by
// event time.
func Generate(start time.Time, lines []string) ([]event.Event, error) {
	g := &generator{start: start, sent: map[string][]*message{}, delivered: map[string][]*message{}, recent: map[string][]*message{}}
	type step struct {
		at   time.Time
		line int
		what string
	}
	var steps []step
	for i, line := range lines {
		spec, what, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("input %q: want `<time>: <what>`", line)
		}
		times, err := g.times(strings.TrimSpace(spec))
		if err != nil {
			return nil, fmt.Errorf("input %q: %v", line, err)
		}
		for _, t := range times {
			steps = append(steps, step{t, i, strings.TrimSpace(what)})
		}
	}
	// Expand in time order (line order within one time) so that a delivered
	// line finds the messages sent before it, whatever the line order.
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].at.Before(steps[j].at) })
	for _, s := range steps {
		if err := g.expand(s.at, s.what); err != nil {
			return nil, fmt.Errorf("input %q: %v", lines[s.line], err)
		}
	}
	return g.out, nil
}

// times parses "30m" or "0m-75m every 10s" (to exclusive).
func (g *generator) times(spec string) ([]time.Time, error) {
	rng, every, isRange := strings.Cut(spec, " every ")
	if !isRange {
		d, err := time.ParseDuration(spec)
		if err != nil {
			return nil, fmt.Errorf("bad time %q", spec)
		}
		return []time.Time{g.start.Add(d)}, nil
	}
	fromS, toS, ok := strings.Cut(rng, "-")
	from, err1 := time.ParseDuration(strings.TrimSpace(fromS))
	to, err2 := time.ParseDuration(strings.TrimSpace(toS))
	step, err3 := time.ParseDuration(strings.TrimSpace(every))
	if !ok || err1 != nil || err2 != nil || err3 != nil || step <= 0 || to <= from {
		return nil, fmt.Errorf("bad range %q: want `<from>-<to> every <step>`", spec)
	}
	var out []time.Time
	for d := from; d < to; d += step {
		out = append(out, g.start.Add(d))
	}
	return out, nil
}

func (g *generator) expand(at time.Time, what string) error {
	fields := strings.Fields(what)
	n := 1
	if len(fields) > 0 {
		if v, err := strconv.Atoi(fields[0]); err == nil {
			n, fields = v, fields[1:]
		}
	}
	if len(fields) == 0 {
		return fmt.Errorf("no kind")
	}
	kind, rest := fields[0], fields[1:]
	var arg string
	if len(rest) > 0 && !strings.Contains(rest[0], "=") {
		arg, rest = rest[0], rest[1:]
	}
	kv := map[string]string{}
	for _, f := range rest {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return fmt.Errorf("%q is not key=value", f)
		}
		switch k {
		case "waba", "phone_number", "template", "use_case", "campaign", "channel", "country", "code", "tier", "ban_state":
		default:
			return fmt.Errorf("unknown key %q", k)
		}
		kv[k] = v
	}
	base := event.Event{SchemaVersion: event.SchemaVersion, Channel: event.ChannelWhatsApp, Source: "ruletest",
		EventTime: at, ReceiveTime: at, WABAID: kv["waba"], PhoneNumberID: kv["phone_number"]}
	if c := kv["channel"]; c != "" {
		base.Channel = event.Channel(c)
	}
	if kv["template"] != "" || kv["use_case"] != "" || kv["campaign"] != "" {
		base.Attribution = &event.Attribution{Template: kv["template"], UseCase: kv["use_case"], Campaign: kv["campaign"]}
	}
	route := base.WABAID + "|" + base.PhoneNumberID + "|" + string(base.Channel)
	country := kv["country"]
	if country == "" {
		country = "55"
	}
	for i := 0; i < n; i++ {
		switch kind {
		case "sent":
			m := g.newMessage(base, at, country)
			g.sent[route] = append(g.sent[route], m)
			g.recent[route] = append(g.recent[route], m)
			if len(g.recent[route]) > 10000 {
				g.recent[route] = g.recent[route][1:]
			}
			g.status(m, at, event.StatusSent, nil)
		case "delivered":
			m := pop(g.sent, route)
			if m == nil {
				m = g.newMessage(base, at, country)
			}
			g.delivered[route] = append(g.delivered[route], m)
			g.status(m, at, event.StatusDelivered, nil)
		case "read":
			m := pop(g.delivered, route)
			if m == nil {
				m = g.newMessage(base, at, country)
			}
			g.status(m, at, event.StatusRead, nil)
		case "failed":
			code := 131026
			if c := kv["code"]; c != "" {
				v, err := strconv.Atoi(c)
				if err != nil {
					return fmt.Errorf("code %q is not a number", c)
				}
				code = v
			}
			m := g.newMessage(base, at, country)
			e := &event.Error{Code: code, Class: event.ErrorClass(code)}
			g.status(m, at, event.StatusFailed, e)
		case "optout", "inbound":
			m := g.recentUser(route, i)
			ev := base
			ev.Kind = event.KindInbound
			ev.Attribution = nil // opt-outs are attributed from what the user last received
			g.seq++
			ev.MessageID = fmt.Sprintf("in%d", g.seq)
			ev.ID = event.NewID("ruletest", kind, ev.MessageID)
			ev.Inbound = &event.Inbound{MessageType: "text"}
			user := fmt.Sprintf("user%d", g.seq)
			if m != nil {
				user = m.user
			}
			ev.Recipient = &event.Recipient{Pseudonym: user, CountryCode: country, IDKind: "phone"}
			if kind == "optout" {
				ev.OptOut = &event.OptOut{Source: "keyword"}
			}
			g.out = append(g.out, ev)
		case "template_status", "template_quality", "phone_quality", "account_update":
			if arg == "" {
				return fmt.Errorf("%s needs its event, like `%s PAUSED`", kind, kind)
			}
			ev := base
			g.seq++
			ev.ID = event.NewID("ruletest", kind, strconv.Itoa(g.seq))
			switch kind {
			case "template_status":
				ev.Kind = event.KindTemplateStatus
				ev.Template = &event.Template{Name: kv["template"], Event: arg}
			case "template_quality":
				ev.Kind = event.KindTemplateQuality
				ev.Template = &event.Template{Name: kv["template"], NewQuality: arg}
			case "phone_quality":
				ev.Kind = event.KindPhoneQuality
				ev.Quality = &event.Quality{Event: arg, CurrentLimit: kv["tier"]}
			case "account_update":
				ev.Kind = event.KindAccountUpdate
				ev.Account = &event.Account{Event: arg, BanState: kv["ban_state"]}
			}
			g.out = append(g.out, ev)
		default:
			return fmt.Errorf("unknown kind %q (sent, delivered, read, failed, optout, inbound, template_status, template_quality, phone_quality, account_update)", kind)
		}
	}
	return nil
}

func (g *generator) newMessage(base event.Event, at time.Time, country string) *message {
	g.seq++
	m := &message{id: fmt.Sprintf("m%d", g.seq), user: fmt.Sprintf("user%d", g.seq), sentAt: at, base: base}
	m.base.Recipient = &event.Recipient{Pseudonym: m.user, CountryCode: country, IDKind: "phone", Type: "individual"}
	return m
}

func (g *generator) status(m *message, at time.Time, status string, e *event.Error) {
	ev := m.base
	ev.Kind = event.KindStatus
	ev.EventTime, ev.ReceiveTime = at, at
	ev.MessageID = m.id
	ev.Status = status
	ev.ID = event.NewID("ruletest", "status", m.id, status)
	ev.Error = e
	if e != nil && e.Code == 131050 {
		ev.OptOut = &event.OptOut{Source: "error_131050"}
	}
	g.out = append(g.out, ev)
}

// recentUser returns the i-th most recent distinct message recipient of a
// route, or nil.
func (g *generator) recentUser(route string, i int) *message {
	r := g.recent[route]
	if i >= len(r) {
		return nil
	}
	return r[len(r)-1-i]
}

func pop(q map[string][]*message, route string) *message {
	l := q[route]
	if len(l) == 0 {
		return nil
	}
	m := l[0]
	q[route] = l[1:]
	return m
}

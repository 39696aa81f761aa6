package simulate

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"vigia/internal/action"
	"vigia/internal/route"
)

// Report is what a run of a scenario found. Its JSON form is what
// `vigia simulate -json` writes; docs/simulator.md describes every field.
type Report struct {
	Scenario         string           `json:"scenario"`
	File             string           `json:"file"`
	Speed            float64          `json:"speed"`
	Started          time.Time        `json:"started"`
	Ended            time.Time        `json:"ended"`
	ScenarioDuration string           `json:"scenario_duration"`
	Stats            Stats            `json:"stats"`
	Routes           []RouteCount     `json:"routes"`
	Incidents        []IncidentReport `json:"incidents"`
	// Passed is false when an incident's expectation was not met.
	Passed bool `json:"passed"`
}

// Stats counts what the simulator did.
type Stats struct {
	Messages     int      `json:"messages"`      // messages sent (picks answered)
	Webhooks     int      `json:"webhooks"`      // webhooks ingest accepted (200)
	Updates      int      `json:"updates"`       // statuses and inbound messages in them
	Replies      int      `json:"replies"`       // inbound replies played
	OptOuts      int      `json:"opt_outs"`      // inbound STOP texts played
	Unroutable   int      `json:"unroutable"`    // picks answered 503: no route
	PickErrors   int      `json:"pick_errors"`   // picks that failed otherwise
	IngestErrors int      `json:"ingest_errors"` // webhooks ingest refused or that failed
	Problems     []string `json:"problems,omitempty"`
}

// RouteCount is how many messages of a use case went where.
type RouteCount struct {
	UseCase  string `json:"use_case"`
	Channel  string `json:"channel"`
	Number   string `json:"phone_number_id,omitempty"`
	Messages int    `json:"messages"`
}

// IncidentReport is Vigia's response to one incident. Times are wall
// clock; *_seconds are wall-clock seconds after the incident started.
type IncidentReport struct {
	Name     string    `json:"name"`
	Type     string    `json:"type"`
	Key      string    `json:"key"` // what the incident hits: phone_number=..., template=..., waba=...
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Detected *Moment   `json:"detected,omitempty"` // first alert firing on the key
	Switched *Moment   `json:"switched,omitempty"` // first route change for it
	// Messages the simulator sent on the bad route (the number, the
	// WABA's numbers, the template) during the incident, before and
	// after the detection.
	BadRouteBeforeDetection int      `json:"bad_route_before_detection"`
	BadRouteAfterDetection  int      `json:"bad_route_after_detection"`
	BadRouteAfterSwitch     int      `json:"bad_route_after_switch"`
	Checks                  []Check  `json:"checks,omitempty"`
	Notes                   []string `json:"notes,omitempty"`
}

// Moment is a detection or a switch.
type Moment struct {
	At              time.Time `json:"at"`
	AfterSeconds    float64   `json:"after_seconds"`    // wall clock, after the incident started
	ScenarioSeconds float64   `json:"scenario_seconds"` // the same in scenario time (times speed)
	Alert           string    `json:"alert,omitempty"`
	Fingerprint     string    `json:"fingerprint,omitempty"`
	Action          string    `json:"action,omitempty"`
	UseCase         string    `json:"use_case,omitempty"`
	Target          string    `json:"target,omitempty"`
	Actor           string    `json:"actor,omitempty"`
	Reason          string    `json:"reason,omitempty"`
}

// Check is one expectation of the scenario and whether it was met.
type Check struct {
	What   string `json:"what"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// switchActions are the audit actions that count as moving traffic, by
// incident type; throttles count for the incidents a throttle answers.
var (
	moveActions     = []string{"failover", route.OpSwitch, route.OpFallback, "fallback_channel", route.OpPause, route.OpMark, "degrade"}
	throttleActions = append(slices.Clone(moveActions), route.OpThrottle)
)

func (r *runner) report(audit []route.Entry) *Report {
	rep := &Report{Scenario: r.sc.Name, File: r.sc.Path, Speed: r.o.speed, Started: r.t0, Ended: r.o.now(),
		ScenarioDuration: r.sc.Duration.D().String(), Stats: r.stats, Passed: true}
	counts := map[RouteCount]int{}
	for _, s := range r.sends {
		counts[RouteCount{UseCase: s.useCase, Channel: s.channel, Number: s.number}]++
	}
	for k, n := range counts {
		k.Messages = n
		rep.Routes = append(rep.Routes, k)
	}
	slices.SortFunc(rep.Routes, func(a, b RouteCount) int {
		return strings.Compare(a.UseCase+"\x00"+a.Channel+"\x00"+a.Number, b.UseCase+"\x00"+b.Channel+"\x00"+b.Number)
	})
	r.mu.Lock()
	alerts := make([]seenAlert, 0, len(r.alerts))
	for _, a := range r.alerts {
		alerts = append(alerts, a)
	}
	r.mu.Unlock()
	slices.SortFunc(alerts, func(a, b seenAlert) int { return a.firedAt.Compare(b.firedAt) })
	// Oldest first, as things happened.
	audit = slices.Clone(audit)
	slices.SortStableFunc(audit, func(a, b route.Entry) int { return a.Time.Compare(b.Time) })

	for i := range r.sc.Incidents {
		ir := r.incidentReport(&r.sc.Incidents[i], alerts, audit)
		for _, c := range ir.Checks {
			if !c.OK {
				rep.Passed = false
			}
		}
		rep.Incidents = append(rep.Incidents, ir)
	}
	return rep
}

// scope is what an incident hits.
type scope struct {
	key      string
	labels   map[string][]string // alert label → values that name the incident's key
	numbers  map[string]bool     // bad numbers (WhatsApp)
	template string
}

func (r *runner) scopeOf(in *Incident) scope {
	sc := scope{labels: map[string][]string{}, numbers: map[string]bool{}}
	switch in.Type {
	case TemplatePaused, OptOutSpike:
		sc.key, sc.template = "template="+in.Template, in.Template
		sc.labels["template"] = []string{in.Template}
	case PlatformOutage:
		sc.key = "all numbers"
		if in.WABA != "" {
			sc.key = "waba=" + in.WABA
		}
		for _, w := range r.sc.WABAs {
			if in.WABA != "" && w.ID != in.WABA {
				continue
			}
			sc.labels["waba"] = append(sc.labels["waba"], w.ID)
			for _, n := range w.Numbers {
				sc.numbers[n.ID] = true
				sc.labels["phone_number"] = append(sc.labels["phone_number"], n.ID)
			}
		}
		// Numbers pick answered that the scenario did not declare fail too.
		for id, info := range r.numbers {
			if in.WABA == "" || info.waba == in.WABA {
				if !sc.numbers[id] {
					sc.numbers[id] = true
					sc.labels["phone_number"] = append(sc.labels["phone_number"], id)
				}
			}
		}
	default:
		sc.key = "phone_number=" + in.Number
		sc.numbers[in.Number] = true
		sc.labels["phone_number"] = []string{in.Number}
	}
	return sc
}

func (s scope) matches(labels map[string]string) bool {
	for k, vs := range s.labels {
		if v, ok := labels[k]; ok && slices.Contains(vs, v) {
			return true
		}
	}
	return false
}

func (s scope) badSend(x send) bool {
	if x.channel != "whatsapp" {
		return false
	}
	if s.template != "" {
		return x.template == s.template
	}
	return s.numbers[x.number]
}

func (r *runner) incidentReport(in *Incident, alerts []seenAlert, audit []route.Entry) IncidentReport {
	total := r.sc.Duration.D()
	start, end := r.wallAt(in.Start()), r.wallAt(in.End(total))
	sc := r.scopeOf(in)
	ir := IncidentReport{Name: in.Name, Type: in.Type, Key: sc.key, Start: start, End: end}
	moment := func(at time.Time) Moment {
		after := at.Sub(start).Seconds()
		return Moment{At: at, AfterSeconds: round(after), ScenarioSeconds: round(after * r.o.speed)}
	}

	// Detection: the first alert on the key that fired once the incident
	// had started.
	fps := map[string]bool{}
	for _, a := range alerts {
		if a.firedAt.Before(start) || !sc.matches(a.labels) {
			continue
		}
		fps[a.fingerprint] = true
		if in.Expect.Alert != "" && a.name != in.Expect.Alert {
			continue
		}
		if ir.Detected == nil {
			m := moment(a.firedAt)
			m.Alert, m.Fingerprint = a.name, a.fingerprint
			ir.Detected = &m
		}
	}

	// Switch: the first applied change, after the start, made by one of
	// those alerts or by an operator on the bad numbers or their use cases.
	actions := moveActions
	switch in.Type {
	case QualityDowngrade, ThroughputErrors:
		actions = throttleActions
	}
	useCases := map[string]bool{}
	for _, s := range r.sends {
		if sc.badSend(s) {
			useCases[s.useCase] = true
		}
	}
	isSwitch := func(e route.Entry) bool {
		if in.Expect.Action != "" {
			return e.Action == in.Expect.Action
		}
		if sc.template != "" {
			return strings.HasPrefix(e.Action, "advise_") || slices.Contains(actions, e.Action)
		}
		return slices.Contains(actions, e.Action)
	}
	for _, e := range audit {
		// What automation refused for the incident's alerts is what a
		// drill most needs to see.
		if e.Outcome == route.OutcomeRefused && fps[e.AlertFingerprint] && !e.Time.Before(start) {
			ir.Notes = append(ir.Notes, fmt.Sprintf("%s %s refused at +%.1fs: %s", e.Action, e.Target,
				round(e.Time.Sub(start).Seconds()), e.Detail))
		}
	}
	for _, e := range audit {
		if e.Outcome != route.OutcomeApplied || e.DryRun || e.Time.Before(start) || !isSwitch(e) {
			continue
		}
		ours := fps[e.AlertFingerprint]
		if e.ActorKind == action.ActorOperator {
			ours = sc.numbers[e.Target] || useCases[e.UseCase] || (sc.template != "" && strings.Contains(e.Target, sc.template))
		}
		if !ours {
			continue
		}
		m := moment(e.Time)
		m.Action, m.UseCase, m.Target, m.Actor, m.Reason = e.Action, e.UseCase, e.Target, e.Actor, e.Reason
		ir.Switched = &m
		break
	}

	for _, s := range r.sends {
		if s.wall.Before(start) || s.wall.After(end) || !sc.badSend(s) {
			continue
		}
		if ir.Detected == nil || s.wall.Before(ir.Detected.At) {
			ir.BadRouteBeforeDetection++
		} else {
			ir.BadRouteAfterDetection++
		}
		if ir.Switched != nil && !s.wall.Before(ir.Switched.At) {
			ir.BadRouteAfterSwitch++
		}
	}

	if r.o.evaluator == "" {
		ir.Notes = append(ir.Notes, "no evaluator URL: detection not measured")
	}
	if r.o.readToken == "" {
		ir.Notes = append(ir.Notes, "no read token: route switch not measured")
	}
	ex := in.Expect
	if ex.DetectWithin > 0 {
		limit := ex.DetectWithin.D()
		c := Check{What: fmt.Sprintf("detected within %s", limit)}
		if ir.Detected != nil {
			c.OK = ir.Detected.At.Sub(start) <= limit
			c.Detail = fmt.Sprintf("%s after %.1fs", ir.Detected.Alert, ir.Detected.AfterSeconds)
		} else {
			c.Detail = "not detected"
		}
		ir.Checks = append(ir.Checks, c)
	}
	if ex.SwitchWithin > 0 {
		limit := ex.SwitchWithin.D()
		c := Check{What: fmt.Sprintf("switched within %s", limit)}
		if ir.Switched != nil {
			c.OK = ir.Switched.At.Sub(start) <= limit
			c.Detail = fmt.Sprintf("%s after %.1fs", ir.Switched.Action, ir.Switched.AfterSeconds)
		} else {
			c.Detail = "no route change"
		}
		ir.Checks = append(ir.Checks, c)
	}
	if ex.NoSwitch {
		c := Check{What: "no traffic moved", OK: ir.Switched == nil || strings.HasPrefix(ir.Switched.Action, "advise_")}
		if !c.OK {
			c.Detail = fmt.Sprintf("%s on %s", ir.Switched.Action, ir.Switched.Target)
		}
		ir.Checks = append(ir.Checks, c)
	}
	if ex.Alert != "" && ir.Detected == nil {
		var other []string
		for _, a := range alerts {
			if fps[a.fingerprint] && !slices.Contains(other, a.name) {
				other = append(other, a.name)
			}
		}
		if len(other) > 0 {
			ir.Notes = append(ir.Notes, "fired on the key instead: "+strings.Join(other, ", "))
		}
	}
	return ir
}

func round(v float64) float64 { return float64(int64(v*10+0.5*sign(v))) / 10 }

func sign(v float64) float64 {
	if v < 0 {
		return -1
	}
	return 1
}

// WriteText prints the report as tables.
func (rep *Report) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "\nScenario %s (%s), speed %g: %d messages, %d webhooks (%d updates), %d replies, %d opt-outs\n",
		rep.Scenario, rep.ScenarioDuration, rep.Speed, rep.Stats.Messages, rep.Stats.Webhooks, rep.Stats.Updates,
		rep.Stats.Replies, rep.Stats.OptOuts)
	if s := rep.Stats; s.Unroutable+s.PickErrors+s.IngestErrors > 0 {
		fmt.Fprintf(w, "  unroutable (503) %d, pick errors %d, ingest refusals %d\n", s.Unroutable, s.PickErrors, s.IngestErrors)
	}
	for _, p := range rep.Stats.Problems {
		fmt.Fprintf(w, "  problem: %s\n", p)
	}

	fmt.Fprintln(w, "\nWhere the messages went:")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  USE CASE\tCHANNEL\tNUMBER\tMESSAGES")
	for _, rc := range rep.Routes {
		num := rc.Number
		if num == "" {
			num = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\n", rc.UseCase, rc.Channel, num, rc.Messages)
	}
	tw.Flush()

	fmt.Fprintln(w, "\nIncidents (seconds of wall time after the incident started):")
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  INCIDENT\tTYPE\tKEY\tDETECTED\tALERT\tSWITCHED\tACTION\tBAD-ROUTE SENDS AFTER DETECTION")
	for _, ir := range rep.Incidents {
		det, alertName, sw, act := "-", "-", "-", "-"
		if ir.Detected != nil {
			det, alertName = fmt.Sprintf("+%.1fs", ir.Detected.AfterSeconds), ir.Detected.Alert
		}
		if ir.Switched != nil {
			sw, act = fmt.Sprintf("+%.1fs", ir.Switched.AfterSeconds), ir.Switched.Action
			if ir.Switched.Target != "" && ir.Switched.Target != ir.Switched.UseCase {
				act += " " + ir.Switched.Target
			} else if ir.Switched.UseCase != "" {
				act += " " + ir.Switched.UseCase
			}
		}
		after := "-"
		if ir.Detected != nil {
			after = fmt.Sprint(ir.BadRouteAfterDetection)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ir.Name, ir.Type, ir.Key, det, alertName, sw, act, after)
	}
	tw.Flush()
	for _, ir := range rep.Incidents {
		for _, c := range ir.Checks {
			mark := "ok  "
			if !c.OK {
				mark = "FAIL"
			}
			fmt.Fprintf(w, "  %s %s: %s", mark, ir.Name, c.What)
			if c.Detail != "" {
				fmt.Fprintf(w, " (%s)", c.Detail)
			}
			fmt.Fprintln(w)
		}
		for _, n := range ir.Notes {
			fmt.Fprintf(w, "  note %s: %s\n", ir.Name, n)
		}
	}
	if rep.Passed {
		fmt.Fprintln(w, "\nEvery expectation met.")
	} else {
		fmt.Fprintln(w, "\nSome expectations were NOT met.")
	}
	return nil
}

// WriteJSON writes the report as indented JSON.
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

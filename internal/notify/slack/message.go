package slack

import (
	"cmp"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"vigia/internal/alert"
	"vigia/internal/quality"
)

// Slack's limits (Block Kit reference), in characters.
const (
	maxHeader      = 150
	maxSectionText = 3000
	maxFieldText   = 2000
	maxFields      = 10
	maxContextText = 3000
	maxContextEls  = 10
	maxBlocks      = 50
	maxText        = 3000 // the top-level text may be 40000; a fallback that long helps nobody
)

// keyLabels are the labels shown as fields, in this order: severity, then
// the dimensions people look up (quality.Dims), the ones rule keys are
// made of.
var keyLabels = func() []string {
	ls := []string{"severity"}
	for _, d := range quality.Dims {
		ls = append(ls, string(d))
	}
	return ls
}()

// message is an alert rendered for Slack.
type message struct {
	blocks   []slack.Block
	fallback string // plain text: notifications and clients without blocks
	reply    string // mrkdwn thread reply of a resolve
}

func (n *Notifier) render(a *alert.Alert) message {
	name := a.Labels[alert.LabelAlertName]
	if name == "" {
		name = a.Name
	}
	resolved := a.State == alert.StateResolved
	title := "🔥 FIRING: " + name
	if resolved {
		title = "✅ RESOLVED: " + name
	}

	var blocks []slack.Block
	blocks = append(blocks, slack.NewHeaderBlock(plain(cut(title, maxHeader))))

	summary, desc := a.Annotations["summary"], a.Annotations["description"]
	if s := strings.TrimSpace(join("\n", esc(summary), esc(desc))); s != "" {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(cutMrkdwn(s, maxSectionText)), nil, nil))
	}

	var fields []*slack.TextBlockObject
	for _, k := range keyLabels {
		if v, ok := a.Labels[k]; ok && v != "" && len(fields) < maxFields {
			fields = append(fields, mrkdwn(cutMrkdwn("*"+k+"*\n"+esc(v), maxFieldText)))
		}
	}
	if len(fields) > 0 {
		blocks = append(blocks, slack.NewSectionBlock(nil, fields, nil))
	}

	valuesTitle := "*Values*"
	if resolved {
		valuesTitle = "*Values at resolve*"
	}
	vs := valueLines(a.Values, a.Baseline)
	if len(vs) == 0 {
		vs = []string{"_no data in the window_"}
	}
	blocks = append(blocks, slack.NewSectionBlock(mrkdwn(cutMrkdwn(valuesTitle+"\n"+bullets(vs), maxSectionText)), nil, nil))

	if len(a.Actions) > 0 {
		var as []string
		for _, act := range a.Actions {
			as = append(as, esc(actionString(act)))
		}
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(cutMrkdwn("*Actions*\n"+bullets(as), maxSectionText)), nil, nil))
	}

	var ctx []slack.MixedElement
	addCtx := func(s string) {
		if s != "" {
			ctx = append(ctx, mrkdwn(cutMrkdwn(s, maxContextText)))
		}
	}
	if u := n.runbook(a, name); u != "" {
		addCtx(link(u, "Runbook"))
	}
	if n.o.AlertURL != nil {
		if u := n.o.AlertURL(a); u != "" {
			addCtx(link(u, "Alert"))
		}
	}
	addCtx(times(a))
	addCtx(join(" · ", labelled("Rule", a.Rule), labelled("group", a.Group)))
	addCtx(labelled("Fingerprint", a.Fingerprint))
	blocks = append(blocks, slack.NewContextBlock("", ctx[:min(len(ctx), maxContextEls)]...))

	m := message{blocks: blocks[:min(len(blocks), maxBlocks)]}
	m.fallback = cut(join(" — ", title, summary), maxText)
	if resolved {
		m.reply = cutMrkdwn(fmt.Sprintf("✅ Resolved at %s after %s firing.\n%s\n%s",
			stamp(resolvedAt(a)), duration(resolvedAt(a).Sub(firedAt(a))), valuesTitle, bullets(vs)), maxText)
	}
	return m
}

// runbook returns the alert's runbook link: its runbook_url annotation,
// else the base URL + "/" + alertname, else "".
func (n *Notifier) runbook(a *alert.Alert, name string) string {
	if u := a.Annotations["runbook_url"]; u != "" {
		return u
	}
	if n.o.RunbookBaseURL == "" || name == "" {
		return ""
	}
	return n.o.RunbookBaseURL + "/" + url.PathEscape(name)
}

// times says when the occurrence started, fired and resolved, in UTC:
// the channel's readers are in several time zones, and UTC is what the
// logs and the alerts API show.
func times(a *alert.Alert) string {
	parts := []string{"Active since " + stamp(a.ActiveAt)}
	if a.FiredAt != nil {
		parts = append(parts, "fired "+stamp(*a.FiredAt))
	}
	if a.State == alert.StateResolved {
		at := resolvedAt(a)
		parts = append(parts, fmt.Sprintf("resolved %s after %s", stamp(at), duration(at.Sub(firedAt(a)))))
	}
	return strings.Join(parts, " · ")
}

func firedAt(a *alert.Alert) time.Time {
	if a.FiredAt != nil {
		return *a.FiredAt
	}
	return a.ActiveAt
}

func resolvedAt(a *alert.Alert) time.Time {
	if a.ResolvedAt != nil {
		return *a.ResolvedAt
	}
	return a.EvalTime
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// duration prints d to the second, hours and minutes first: "1h05m",
// "4m30s", "12s".
func duration(d time.Duration) string {
	d = max(d, 0).Round(time.Second)
	h, m, s := int64(d/time.Hour), int64(d%time.Hour/time.Minute), int64(d%time.Minute/time.Second)
	switch {
	case h > 0:
		return fmt.Sprintf("%dh%02dm", h, m)
	case m > 0:
		return fmt.Sprintf("%dm%02ds", m, s)
	}
	return fmt.Sprintf("%ds", s)
}

func actionString(act alert.Action) string {
	parts := []string{act.Type}
	for _, k := range slices.Sorted(maps.Keys(act.Params)) {
		parts = append(parts, k+"="+act.Params[k])
	}
	return strings.Join(parts, " ")
}

// valueLines lists the metrics that say why the alert fired (or cleared),
// each next to its baseline when the alert has one, escaped for mrkdwn.
// A metric zero in both is left out: a template alert has no numbers
// count, a volume alert no latency.
func valueLines(v quality.Values, base *quality.Values) []string {
	hasBase := base != nil
	var b quality.Values
	if hasBase {
		b = *base
	}
	var out []string
	num := func(name string, cur, was float64, f func(float64) string) {
		if cur == 0 && was == 0 {
			return
		}
		l := name + " " + f(cur)
		if hasBase {
			l += " (baseline " + f(was) + ")"
		}
		out = append(out, l)
	}
	num("attempts", float64(v.Attempts), float64(b.Attempts), count)
	num("delivery_rate", v.DeliveryRate, b.DeliveryRate, pct)
	num("read_rate", v.ReadRate, b.ReadRate, pct)
	num("failure_rate", v.FailureRate, b.FailureRate, pct)
	num("opt_outs", float64(v.OptOuts), float64(b.OptOuts), count)
	num("opt_out_rate", v.OptOutRate, b.OptOutRate, pct)
	num("latency_p90", v.LatencyP90, b.LatencyP90, seconds)
	if v.NumbersActive != 0 || v.NumbersDegraded != 0 || b.NumbersActive != 0 || b.NumbersDegraded != 0 {
		l := fmt.Sprintf("numbers_degraded %d/%d active", v.NumbersDegraded, v.NumbersActive)
		if hasBase {
			l += fmt.Sprintf(" (baseline %d/%d)", b.NumbersDegraded, b.NumbersActive)
		}
		out = append(out, l)
	}
	for _, c := range topCodes(v.FailuresByCode, 3) {
		l := fmt.Sprintf("failures %d: %d", c, v.FailuresByCode[c])
		if hasBase {
			l += fmt.Sprintf(" (baseline %d)", b.FailuresByCode[c])
		}
		out = append(out, l)
	}
	str := func(name, cur, was string) {
		if cur == "" && was == "" {
			return
		}
		l := name + " " + cmp.Or(esc(cur), "–")
		if hasBase && was != cur {
			l += " (baseline " + cmp.Or(esc(was), "–") + ")"
		}
		out = append(out, l)
	}
	str("quality_event", v.QualityEvent, b.QualityEvent)
	str("messaging_tier", v.MessagingTier, b.MessagingTier)
	str("template_status", v.TemplateStatus, b.TemplateStatus)
	str("template_quality", v.TemplateQuality, b.TemplateQuality)
	str("account_event", v.AccountEvent, b.AccountEvent)
	str("account_ban_state", v.AccountBanState, b.AccountBanState)
	return out
}

// topCodes returns the n error codes with the most failures, most first
// (ties by code, so that the message does not change between renders).
func topCodes(m map[int64]int64, n int) []int64 {
	codes := slices.Collect(maps.Keys(m))
	slices.SortFunc(codes, func(x, y int64) int {
		return cmp.Or(cmp.Compare(m[y], m[x]), cmp.Compare(x, y))
	})
	return codes[:min(n, len(codes))]
}

func count(f float64) string { return strconv.FormatInt(int64(f), 10) }

// pct prints a rate as a percentage, with more decimals for small rates
// (opt-out rates live below 1 %).
func pct(f float64) string {
	p := f * 100
	switch {
	case p == 0:
		return "0 %"
	case p < 0.1:
		return fmt.Sprintf("%.3f %%", p)
	case p < 1:
		return fmt.Sprintf("%.2f %%", p)
	}
	return fmt.Sprintf("%.1f %%", p)
}

func seconds(f float64) string {
	d := time.Duration(f * float64(time.Second))
	if d < time.Minute {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func bullets(lines []string) string {
	return "• " + strings.Join(lines, "\n• ")
}

// labelled returns "Name `value`", "" when value is empty.
func labelled(name, value string) string {
	if value == "" {
		return ""
	}
	return name + " `" + esc(strings.ReplaceAll(value, "`", "'")) + "`"
}

// join joins the non-empty parts.
func join(sep string, parts ...string) string {
	return strings.Join(slices.DeleteFunc(parts, func(s string) bool { return s == "" }), sep)
}

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, true, false)
}

func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
}

// esc escapes the three characters mrkdwn gives a meaning to (links,
// mentions, entities), so that a label value cannot inject a mention.
var esc = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace

// link returns a mrkdwn link; characters that would end the link early
// are percent-encoded.
func link(u, text string) string {
	u = strings.NewReplacer("|", "%7C", ">", "%3E", "<", "%3C", " ", "%20").Replace(u)
	return "<" + u + "|" + text + ">"
}

// cut shortens s to at most max characters, ending in "…" when cut.
func cut(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)[:max-1]
	return string(r) + "…"
}

// cutMrkdwn is cut for mrkdwn: it does not leave half an entity (&amp;)
// or half a link (<url|text>) behind.
func cutMrkdwn(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	t := string([]rune(s)[:max-1])
	if i := strings.LastIndexByte(t, '<'); i > strings.LastIndexByte(t, '>') {
		t = t[:i]
	}
	if i := strings.LastIndexByte(t, '&'); i > strings.LastIndexByte(t, ';') {
		t = t[:i]
	}
	return t + "…"
}

// Package alertmanager sends Vigia's alerts to a Prometheus Alertmanager
// through its API v2 (POST /api/v2/alerts), so that teams who already
// route, group, silence and inhibit alerts there get Vigia's alerts the
// same way as their other alerts.
//
// # What is sent
//
// A [Notifier] posts every firing and resolved record of a batch in one
// request; pending and inactive records are Vigia's own business and are
// skipped. Each record becomes one Alertmanager alert:
//
//   - labels: the alert's labels (alertname, the rule's key dimensions such
//     as phone_number, template or waba, the rule's labels such as
//     severity), plus alertgroup, the rule's group, under vmalert's name
//     for it so that routes written for vmalert work unchanged;
//   - annotations: the alert's annotations, plus values and baseline (the
//     non-zero main metrics of the evaluation, "delivery_rate=0.62
//     attempts=1200 ...") and rule (file:line), so that a person reading
//     the notification sees why it fired and where the rule is. A rule's
//     own annotation of the same name wins;
//   - startsAt: ActiveAt, the first evaluation where the condition held;
//   - endsAt: for a firing alert, the sending time plus 4 × the resend
//     interval; for a resolved one, ResolvedAt, or the sending time if
//     that is earlier (resolve times are event time);
//   - generatorURL: Options.GeneratorURL, when it gives a valid URI.
//
// # Why endsAt is 4 × the resend interval
//
// Alertmanager resolves an alert by itself once its endsAt has passed.
// The service re-sends every firing alert each resend interval (the
// Resend notifications), and each post pushes endsAt further out. If Vigia
// dies or loses its way to Alertmanager, the re-sends stop and the alerts
// resolve by themselves after at most four intervals instead of firing
// forever; while Vigia runs, a firing alert resolves by mistake only if no
// re-send gets through for four intervals. Prometheus uses the same factor.
//
// Re-sending the same alert is harmless: Alertmanager identifies an alert
// by its label set, merges repeated posts into one alert and notifies its
// receivers according to its own group and repeat intervals, not on every
// post. For the same reason this notifier keeps no state: a post that is
// retried after a timeout whose request did in fact arrive is a duplicate
// that Alertmanager absorbs.
//
// # Failures
//
// A 400 means Alertmanager refused an alert (no labels, an invalid label
// or annotation name, endsAt before startsAt): it will refuse it again, so
// Notify returns retry=false and the reason client_error. Alertmanager
// stores the valid alerts of a batch even when it refuses others, so a 400
// on a batch does not mean that nothing arrived. Alertmanager 0.25 wants
// label and annotation names that match [a-zA-Z_][a-zA-Z0-9_]*, and drops
// a label whose value is empty, as Prometheus does. It answers an invalid
// generatorURL with 422, which is why Postable leaves such a URL out
// rather than lose the alert. 429 and 5xx answers and transport failures
// (refused connection, timeout) are worth retrying.
//
// # What Alertmanager does with the alerts
//
// Alertmanager keeps alerts in memory only: after a restart it knows a
// firing alert again at the next re-send, and its notification log, kept
// on disk, stops it from notifying that alert a second time (unless it
// stopped while that notification was in flight). It stores but
// does not notify a resolved alert that it never notified as firing (one
// that fired and resolved while it was down). A resolve reaches the
// receivers at the route's next group_interval tick, not at once.
package alertmanager

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-openapi/runtime"
	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"
	amclient "github.com/prometheus/alertmanager/api/v2/client"
	amalert "github.com/prometheus/alertmanager/api/v2/client/alert"
	"github.com/prometheus/alertmanager/api/v2/models"

	"vigia/internal/alert"
	"vigia/internal/notify"
	"vigia/internal/quality"
)

// The labels and annotations this notifier adds to an alert's own.
const (
	LabelAlertGroup    = "alertgroup" // the rule's group; vmalert's label name
	AnnotationValues   = "values"     // the evaluation's main metrics
	AnnotationBaseline = "baseline"   // the baseline's main metrics
	AnnotationRule     = "rule"       // file:line of the rule
)

const (
	// DefaultClientTimeout bounds a post when Options.HTTPClient is nil.
	DefaultClientTimeout = 10 * time.Second

	// endsAtFactor × ResendInterval is how long a firing alert lives in
	// Alertmanager without a re-send (see the package doc).
	endsAtFactor = 4
)

// Options configure a [Notifier].
type Options struct {
	// Name is the receiver's name (alertmanager-0), for error messages.
	Name string
	// URL is the base URL of one Alertmanager, http://127.0.0.1:9093,
	// possibly with a path prefix (http://host/am) and user:password for
	// basic authentication.
	URL string
	// ResendInterval is how often the service re-sends firing alerts. The
	// endsAt of a firing alert is the sending time plus 4 × this.
	ResendInterval time.Duration
	// GeneratorURL returns where a person can see the alert (a dashboard,
	// the control API); may be nil. A result that is not a valid URI is
	// left out rather than have Alertmanager refuse the alert.
	GeneratorURL func(a *alert.Alert) string
	// HTTPClient is the client to post with; nil means one with a 10 s
	// timeout.
	HTTPClient *http.Client
	// Now is the sending time, used only for endsAt (firing alerts, and
	// resolved ones stamped in the future); nil means time.Now.
	Now func() time.Time
}

// Notifier posts alerts to one Alertmanager. It is safe for concurrent use.
type Notifier struct {
	name   string
	url    string // for messages, without user info
	resend time.Duration
	genURL func(*alert.Alert) string
	now    func() time.Time
	api    *amclient.AlertmanagerAPI
}

// New returns a Notifier for the Alertmanager at o.URL.
func New(o Options) (*Notifier, error) {
	u, err := parseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("alertmanager %s: url: %w", o.Name, err)
	}
	if o.ResendInterval <= 0 {
		return nil, fmt.Errorf("alertmanager %s: resend interval must be positive, got %v", o.Name, o.ResendInterval)
	}
	n := &Notifier{
		name:   o.Name,
		resend: o.ResendInterval,
		genURL: o.GeneratorURL,
		now:    o.Now,
	}
	if n.now == nil {
		n.now = time.Now
	}

	// Our own copy of the client, so that wrapping its transport does not
	// change the caller's.
	hc := &http.Client{Timeout: DefaultClientTimeout}
	if o.HTTPClient != nil {
		c := *o.HTTPClient
		hc = &c
	}
	next := hc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	hc.Transport = statusRecorder{next: next}

	rt := httptransport.NewWithClient(u.Host, path.Join("/", u.Path, amclient.DefaultBasePath), []string{u.Scheme}, hc)
	// The runtime turns on request dumps to stdout when DEBUG or
	// SWAGGER_DEBUG is set in the environment: not for a service.
	rt.Debug = false
	if u.User != nil {
		pw, _ := u.User.Password()
		rt.DefaultAuthentication = httptransport.BasicAuth(u.User.Username(), pw)
	}
	n.api = amclient.New(rt, strfmt.Default)

	u.User = nil
	n.url = u.String()
	return n, nil
}

// parseURL parses and checks the URL option. Its errors show the URL
// without its password, since they end up in logs.
func parseURL(s string) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("missing (the base URL of an Alertmanager, http://host:9093)")
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL
		}
		return nil, fmt.Errorf("not a valid URL: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%q: scheme must be http or https", u.Redacted())
	case u.Host == "":
		return nil, fmt.Errorf("%q: missing host", u.Redacted())
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("%q: must not have a query or fragment", u.Redacted())
	}
	return u, nil
}

// Notify posts the firing and resolved alerts of ns in one request. It
// returns whether a failure is worth retrying; failures are *notify.Error.
func (n *Notifier) Notify(ctx context.Context, ns ...*notify.Notification) (retry bool, err error) {
	alerts := make(models.PostableAlerts, 0, len(ns))
	for _, nt := range ns {
		if nt == nil || nt.Alert == nil {
			continue
		}
		switch nt.Alert.State {
		case alert.StateFiring, alert.StateResolved:
			alerts = append(alerts, n.Postable(nt.Alert))
		}
	}
	if len(alerts) == 0 {
		return false, nil
	}

	var ex exchange
	params := amalert.NewPostAlertsParamsWithContext(context.WithValue(ctx, exchangeKey{}, &ex)).WithAlerts(alerts)
	_, err = n.api.Alert.PostAlerts(params)
	if err == nil {
		return false, nil
	}
	return n.classify(ctx, err, &ex, len(alerts))
}

// classify turns an error of the generated client into a *notify.Error
// and whether to retry.
func (n *Notifier) classify(ctx context.Context, err error, ex *exchange, count int) (bool, error) {
	wrapped := fmt.Errorf("alertmanager %s: post %d alerts to %s: %w", n.name, count, n.url, err)
	var (
		bad    *amalert.PostAlertsBadRequest
		ise    *amalert.PostAlertsInternalServerError
		apiErr *runtime.APIError
		urlErr *url.Error
		code   int
	)
	switch {
	case errors.As(err, &bad):
		code = http.StatusBadRequest
	case errors.As(err, &ise):
		code = http.StatusInternalServerError
	case errors.As(err, &apiErr):
		code = apiErr.Code
	case ex.code != 0:
		// Alertmanager (or a proxy in front of it) answered, but the client
		// could not read the answer: a 400 or 500 whose body is not the
		// JSON string the API defines, or a content type it does not know.
		code = ex.code
	case errors.As(err, &urlErr) || ctx.Err() != nil:
		return true, notify.TransportError(wrapped)
	default:
		// The request could not be built: sending it again will not help.
		return false, &notify.Error{Reason: notify.ReasonOther, Err: wrapped}
	}
	if code >= 200 && code < 300 {
		return false, nil // accepted; only the answer's form was odd
	}
	return notify.StatusError(code, parseRetryAfter(ex.retryAfter, time.Now()), wrapped)
}

// exchange records the HTTP status of the last answer of a request, which
// the generated client does not always keep (unexpected bodies, and the
// Retry-After header of a 429).
type exchange struct {
	code       int
	retryAfter string
}

type exchangeKey struct{}

// statusRecorder fills in the request's exchange, when it has one.
type statusRecorder struct{ next http.RoundTripper }

func (s statusRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := s.next.RoundTrip(r)
	if ex, ok := r.Context().Value(exchangeKey{}).(*exchange); ok && res != nil {
		ex.code = res.StatusCode
		ex.retryAfter = res.Header.Get("Retry-After")
	}
	return res, err
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date; 0
// when absent or unreadable.
func parseRetryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(h)); err == nil {
		return time.Duration(max(s, 0)) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// Postable converts one alert record into the alert Alertmanager's API
// takes (see the package doc for the mapping).
func (n *Notifier) Postable(a *alert.Alert) *models.PostableAlert {
	labels := make(models.LabelSet, len(a.Labels)+2)
	maps.Copy(labels, a.Labels)
	if _, ok := labels[alert.LabelAlertName]; !ok && a.Name != "" {
		labels[alert.LabelAlertName] = a.Name
	}
	if a.Group != "" {
		labels[LabelAlertGroup] = a.Group
	}

	annotations := make(models.LabelSet, len(a.Annotations)+3)
	maps.Copy(annotations, a.Annotations)
	addIfMissing := func(name, value string) {
		if _, ok := annotations[name]; !ok && value != "" {
			annotations[name] = value
		}
	}
	addIfMissing(AnnotationValues, FormatValues(&a.Values))
	if a.Baseline != nil {
		addIfMissing(AnnotationBaseline, FormatValues(a.Baseline))
	}
	addIfMissing(AnnotationRule, a.Rule)

	startsAt := a.ActiveAt
	var endsAt time.Time
	switch {
	case a.State == alert.StateResolved && a.ResolvedAt != nil:
		endsAt = *a.ResolvedAt
	case a.State == alert.StateResolved:
		endsAt = a.EvalTime
	default:
		endsAt = n.now().Add(endsAtFactor * n.resend)
	}
	// Resolve times are event time: one ahead of this machine's clock
	// would keep the alert firing in Alertmanager until then.
	if a.State == alert.StateResolved {
		endsAt = minTime(endsAt, n.now())
	}
	// Alertmanager refuses an alert that ends before it starts; a
	// resolved record always ends at or after its start, but a clock that
	// is behind the evaluation (event) time could make a firing one do so.
	if endsAt.Before(startsAt) {
		endsAt = startsAt
	}

	p := &models.PostableAlert{
		Alert:       models.Alert{Labels: labels},
		Annotations: annotations,
		StartsAt:    strfmt.DateTime(startsAt),
		EndsAt:      strfmt.DateTime(endsAt),
	}
	if n.genURL != nil {
		if s := n.genURL(a); s != "" && validURI(s) {
			p.GeneratorURL = strfmt.URI(s)
		}
	}
	return p
}

// validURI reports whether s passes the uri format check of Alertmanager's
// API (which answers 422 otherwise) and is absolute, so that a person can
// follow it.
func validURI(s string) bool {
	if !strfmt.Default.Validates("uri", s) {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && u.IsAbs()
}

// metric is one of the main metrics shown in the values and baseline
// annotations, in the order shown.
type metric struct {
	name string
	num  func(v *quality.Values) float64
	str  func(v *quality.Values) string
}

func count(f func(v *quality.Values) int64) func(v *quality.Values) float64 {
	return func(v *quality.Values) float64 { return float64(f(v)) }
}

var metrics = []metric{
	{name: "delivery_rate", num: func(v *quality.Values) float64 { return v.DeliveryRate }},
	{name: "read_rate", num: func(v *quality.Values) float64 { return v.ReadRate }},
	{name: "failure_rate", num: func(v *quality.Values) float64 { return v.FailureRate }},
	{name: "opt_out_rate", num: func(v *quality.Values) float64 { return v.OptOutRate }},
	{name: "attempts", num: count(func(v *quality.Values) int64 { return v.Attempts })},
	{name: "reached", num: count(func(v *quality.Values) int64 { return v.Reached })},
	{name: "sent", num: count(func(v *quality.Values) int64 { return v.Sent })},
	{name: "delivered", num: count(func(v *quality.Values) int64 { return v.Delivered })},
	{name: "read", num: count(func(v *quality.Values) int64 { return v.Read })},
	{name: "failed", num: count(func(v *quality.Values) int64 { return v.Failed })},
	{name: "accepted", num: count(func(v *quality.Values) int64 { return v.Accepted })},
	{name: "deferred", num: count(func(v *quality.Values) int64 { return v.Deferred })},
	{name: "opt_outs", num: count(func(v *quality.Values) int64 { return v.OptOuts })},
	{name: "inbound", num: count(func(v *quality.Values) int64 { return v.Inbound })},
	{name: "failures_by_code", str: topFailureCodes},
	{name: "latency_p50", num: func(v *quality.Values) float64 { return v.LatencyP50 }},
	{name: "latency_p90", num: func(v *quality.Values) float64 { return v.LatencyP90 }},
	{name: "numbers_active", num: count(func(v *quality.Values) int64 { return v.NumbersActive })},
	{name: "numbers_degraded", num: count(func(v *quality.Values) int64 { return v.NumbersDegraded })},
	{name: "quality_event", str: func(v *quality.Values) string { return v.QualityEvent }},
	{name: "messaging_tier", str: func(v *quality.Values) string { return v.MessagingTier }},
	{name: "template_status", str: func(v *quality.Values) string { return v.TemplateStatus }},
	{name: "template_quality", str: func(v *quality.Values) string { return v.TemplateQuality }},
	{name: "account_event", str: func(v *quality.Values) string { return v.AccountEvent }},
	{name: "account_ban_state", str: func(v *quality.Values) string { return v.AccountBanState }},
}

// FormatValues writes the non-zero main metrics of v on one line,
// "delivery_rate=0.62 attempts=1200 failures_by_code=131049:300,131026:12":
// rates and latencies with 4 significant digits, the 3 most frequent
// failure codes. "" when every metric is zero.
func FormatValues(v *quality.Values) string {
	var b strings.Builder
	for _, m := range metrics {
		var s string
		if m.num != nil {
			if x := m.num(v); x != 0 {
				s = formatFloat(x)
			}
		} else {
			s = m.str(v)
		}
		if s == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(m.name)
		b.WriteByte('=')
		b.WriteString(s)
	}
	return b.String()
}

// formatFloat keeps numbers short: counts as integers, other values with
// 4 significant digits and never in exponent form above 1000.
func formatFloat(x float64) string {
	switch {
	case x == math.Trunc(x) && math.Abs(x) < 1e15:
		return strconv.FormatInt(int64(x), 10)
	case math.Abs(x) >= 1000:
		return strconv.FormatFloat(x, 'f', 0, 64)
	}
	return strconv.FormatFloat(x, 'g', 4, 64)
}

// topFailureCodes lists the 3 most frequent failure codes, code:count.
func topFailureCodes(v *quality.Values) string {
	if len(v.FailuresByCode) == 0 {
		return ""
	}
	codes := slices.Collect(maps.Keys(v.FailuresByCode))
	slices.SortFunc(codes, func(a, b int64) int {
		return cmp.Or(cmp.Compare(v.FailuresByCode[b], v.FailuresByCode[a]), cmp.Compare(a, b))
	})
	var parts []string
	for _, c := range codes[:min(3, len(codes))] {
		if n := v.FailuresByCode[c]; n > 0 {
			parts = append(parts, strconv.FormatInt(c, 10)+":"+strconv.FormatInt(n, 10))
		}
	}
	return strings.Join(parts, ",")
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

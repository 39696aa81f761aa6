// Package slack is the Slack receiver: it posts firing and resolved alerts
// to Slack channels, as Block Kit messages people can act on without
// opening another tool (what fired, on which number or template, the
// values next to their baseline, the actions taken, the runbook).
//
// # Modes
//
// With a bot token (xoxb-..., scope chat:write, the bot invited to the
// channels) the receiver uses the Web API: chat.postMessage when an alert
// fires, and on resolve chat.update of that same message, so that a
// channel never shows an incident as still burning once it is over, plus a
// short reply in the message's thread. The reply is not decoration: Slack
// notifies nobody of an edit, so without it the people following the
// incident would not learn that it ended. The firing message is found
// through the notification log (Notification.Prev: its Receipt, which a
// resolve keeps pointing at the same message). When it is not known (the
// receiver was down for the whole occurrence, the firing notification was
// dropped, the message was deleted or its channel archived) the resolve is
// posted as a new message instead. Routes pick the channel from the alert's labels; the
// first route whose labels all match wins, else the default channel.
//
// With an incoming-webhook URL instead of a token, the receiver can only
// post: a webhook has no ts to answer with and no way to edit, so a resolve
// is a second message, and the channel is the one the webhook was created
// for (routes do not apply). Use a bot token for anything but a trial.
//
// Pending and inactive records are not posted (people act on firing
// alerts), nor are resends (Alertmanager needs them; a Slack channel does
// not want the same alert again).
//
// # Failures
//
// Notify returns a *notify.Error saying why, and whether a retry may help:
//
//   - HTTP 429: rate_limited, retried after Slack's Retry-After.
//     chat.postMessage allows about one message per second per channel
//     (bursts are tolerated), an incoming webhook one per second.
//   - other non-200 answers: notify.StatusError (5xx retried, 4xx not);
//     this is all a webhook failure says, since slack-go does not read the
//     webhook's error body (invalid_payload, channel_not_found, no_service).
//   - ok:false: api_error, final (channel_not_found, not_in_channel,
//     invalid_auth, invalid_blocks...: a person has to fix the setup),
//     except Slack's transient codes (internal_error, fatal_error,
//     service_unavailable, request_timeout; ratelimited is rate_limited),
//     which are retried.
//   - no answer: notify.TransportError (timeout or unreachable), retried.
//
// A retried resolve updates the message again (an update is idempotent)
// and posts the thread reply again if it had been posted: delivery is at
// least once, like the rest of the pipeline. slack-go's own retries are
// off; the pipeline's Retry stage owns backoff.
//
// # Message size
//
// Slack refuses a whole message (invalid_blocks) for one text over its
// limit: header 150 characters, section text 3000, 10 fields of 2000, 10
// context elements, 50 blocks. Alerts carry annotations people wrote and
// labels from events, so every text is cut to its limit (with "…") rather
// than risk losing the alert.
package slack

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"vigia/internal/alert"
	"vigia/internal/notify"
)

// Route sends alerts whose labels all equal Match to Channel.
type Route struct {
	Match   map[string]string
	Channel string
}

// Options configure a Notifier. Exactly one of Token and WebhookURL is set.
type Options struct {
	Name           string // receiver name, for errors; "slack" when empty
	Token          string // bot token (xoxb-...): Web API mode, with updates on resolve
	APIURL         string // Web API base URL; "" is Slack's. Tests point it at slacktest
	WebhookURL     string // incoming-webhook mode, when Token is empty: post only
	Channel        string // default channel (bot mode) when no route matches
	Routes         []Route
	RunbookBaseURL string // runbook link: annotation runbook_url, else this + "/" + alertname, else none

	// AlertURL returns the link to where a person sees the alert (the
	// alerts API, a dashboard), "" for none. May be nil.
	AlertURL func(a *alert.Alert) string

	HTTPClient *http.Client // nil: a client with a 10 s timeout
}

// DefaultTimeout bounds one request when Options.HTTPClient is nil: a
// receiver that hangs must not hold its queue forever.
const DefaultTimeout = 10 * time.Second

// Notifier is the Slack receiver. It is safe for concurrent use.
type Notifier struct {
	o   Options
	api *slack.Client // nil in webhook mode
	hc  *http.Client
}

var _ notify.Notifier = (*Notifier)(nil)

// New checks o and returns the receiver. It does not call Slack.
func New(o Options) (*Notifier, error) {
	if o.Name == "" {
		o.Name = "slack"
	}
	fail := func(format string, args ...any) (*Notifier, error) {
		return nil, fmt.Errorf("slack receiver %q: "+format, append([]any{o.Name}, args...)...)
	}
	switch {
	case o.Token != "" && o.WebhookURL != "":
		return fail("set either a bot token or a webhook URL, not both")
	case o.Token == "" && o.WebhookURL == "":
		return fail("needs a bot token (xoxb-...) or an incoming-webhook URL")
	}
	if o.RunbookBaseURL != "" {
		if err := checkURL(o.RunbookBaseURL); err != nil {
			return fail("runbook base URL: %v", err)
		}
		o.RunbookBaseURL = strings.TrimRight(o.RunbookBaseURL, "/")
	}
	o.Routes = cloneRoutes(o.Routes)
	for i, r := range o.Routes {
		if len(r.Match) == 0 || r.Channel == "" {
			return fail("route %d: needs match (labels) and channel", i)
		}
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	n := &Notifier{o: o, hc: hc}

	if o.WebhookURL != "" {
		if err := checkURL(o.WebhookURL); err != nil {
			return fail("webhook URL: %v", err)
		}
		if o.Channel != "" || len(o.Routes) > 0 {
			return fail("channel and routes need a bot token: an incoming webhook posts to the channel it was created for")
		}
		return n, nil
	}

	if !strings.HasPrefix(o.Token, "xox") {
		return fail("token is not a Slack token (a bot token starts with xoxb-)")
	}
	if o.Channel == "" && len(o.Routes) == 0 {
		return fail("a bot token needs a default channel or routes")
	}
	opts := []slack.Option{slack.OptionHTTPClient(hc)}
	if o.APIURL != "" {
		if err := checkURL(o.APIURL); err != nil {
			return fail("API URL: %v", err)
		}
		// slack-go appends the method name to the base as is.
		if !strings.HasSuffix(o.APIURL, "/") {
			o.APIURL += "/"
		}
		opts = append(opts, slack.OptionAPIURL(o.APIURL))
	}
	n.o = o
	n.api = slack.New(o.Token, opts...)
	return n, nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("must be an http or https URL, got %q", s)
	}
	return nil
}

func cloneRoutes(rs []Route) []Route {
	out := make([]Route, len(rs))
	for i, r := range rs {
		out[i] = Route{Match: maps.Clone(r.Match), Channel: r.Channel}
	}
	return out
}

// Notify posts each notification in turn and stops at the first failure:
// the ones before it were delivered (and have their Receipt), the failed
// one and those after it were not.
func (n *Notifier) Notify(ctx context.Context, ns ...*notify.Notification) (retry bool, err error) {
	for _, nt := range ns {
		if retry, err := n.notify(ctx, nt); err != nil {
			return retry, err
		}
	}
	return false, nil
}

func (n *Notifier) notify(ctx context.Context, nt *notify.Notification) (bool, error) {
	a := nt.Alert
	if a == nil || nt.Resend || (a.State != alert.StateFiring && a.State != alert.StateResolved) {
		return false, nil
	}
	m := n.render(a)
	if n.api == nil {
		// The CustomHTTP variant, so that the client's timeout holds:
		// PostWebhookContext would use http.DefaultClient, which has none.
		// The text is escaped here: MsgOptionText does it for the Web API,
		// nothing does it for a webhook, and an annotation's <!channel>
		// would page the whole channel.
		msg := &slack.WebhookMessage{Text: esc(m.fallback), Blocks: &slack.Blocks{BlockSet: m.blocks}}
		if err := slack.PostWebhookCustomHTTPContext(ctx, n.o.WebhookURL, n.hc, msg); err != nil {
			return n.fail("webhook post", err)
		}
		return false, nil
	}

	if a.State == alert.StateResolved {
		if fr, ok := firingReceipt(nt); ok {
			return n.resolve(ctx, nt, fr, m)
		}
	}
	channel := n.route(a)
	if channel == "" {
		return false, &notify.Error{Reason: notify.ReasonOther,
			Err: fmt.Errorf("slack receiver %q: no route matches alert %s and there is no default channel", n.o.Name, a.Fingerprint)}
	}
	r, err := n.post(ctx, channel, m)
	if err != nil {
		return n.fail("chat.postMessage to "+channel, err)
	}
	nt.Receipt = r
	return false, nil
}

// resolve turns the firing message fr into its resolved form and says so
// in its thread. When the message can no longer be updated (see repost)
// the resolve is posted as a new message, so that it is not lost.
func (n *Notifier) resolve(ctx context.Context, nt *notify.Notification, fr notify.Receipt, m message) (bool, error) {
	_, _, _, err := n.api.UpdateMessageContext(ctx, fr.Channel, fr.MessageTS,
		slack.MsgOptionText(m.fallback, true), slack.MsgOptionBlocks(m.blocks...))
	if channel, ok := n.repost(err, fr, nt.Alert); ok {
		r, err := n.post(ctx, channel, m)
		if err != nil {
			return n.fail("chat.postMessage to "+channel, err)
		}
		nt.Receipt = r
		return false, nil
	}
	if err != nil {
		return n.fail("chat.update of "+fr.Channel+"/"+fr.MessageTS, err)
	}
	nt.Receipt = fr
	if _, _, err := n.api.PostMessageContext(ctx, fr.Channel, slack.MsgOptionTS(fr.MessageTS),
		slack.MsgOptionText(m.reply, false), slack.MsgOptionDisableLinkUnfurl()); err != nil {
		return n.fail("thread reply in "+fr.Channel+"/"+fr.MessageTS, err)
	}
	return false, nil
}

// firingReceipt returns the firing message of nt's occurrence, when the
// log knows it.
func firingReceipt(nt *notify.Notification) (notify.Receipt, bool) {
	p := nt.Prev
	if p == nil || p.Occurrence != nt.Alert.Occurrence() {
		return notify.Receipt{}, false
	}
	r := p.Receipt
	return r, r.MessageTS != "" && r.Channel != ""
}

// repost says whether a failed chat.update of fr should become a new
// message, and where: in the same channel when the message is gone or
// cannot be edited, in the alert's route when the channel itself is no
// longer reachable (archived, the bot removed).
func (n *Notifier) repost(err error, fr notify.Receipt, a *alert.Alert) (string, bool) {
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) {
		return "", false
	}
	switch se.Err {
	case "message_not_found", "cant_update_message", "edit_window_closed":
		return fr.Channel, true
	case "channel_not_found", "not_in_channel", "is_archived":
		if ch := n.route(a); ch != "" {
			return ch, true
		}
	}
	return "", false
}

// post posts m as a new message and returns where it went: Slack answers
// with the channel's id, which chat.update needs, whatever name was used.
func (n *Notifier) post(ctx context.Context, channel string, m message) (notify.Receipt, error) {
	ch, ts, err := n.api.PostMessageContext(ctx, channel, slack.MsgOptionText(m.fallback, true),
		slack.MsgOptionBlocks(m.blocks...), slack.MsgOptionDisableLinkUnfurl())
	if err != nil {
		return notify.Receipt{}, err
	}
	return notify.Receipt{Channel: ch, MessageTS: ts}, nil
}

// route returns the channel of the first route whose labels all match,
// else the default channel.
func (n *Notifier) route(a *alert.Alert) string {
	for _, r := range n.o.Routes {
		match := true
		for k, v := range r.Match {
			if got, ok := a.Labels[k]; !ok || got != v {
				match = false
				break
			}
		}
		if match {
			return r.Channel
		}
	}
	return n.o.Channel
}

// transientCodes are the ok:false errors Slack documents as its own
// trouble, worth another try.
var transientCodes = map[string]bool{
	"internal_error": true, "fatal_error": true, "service_unavailable": true, "request_timeout": true,
}

// fail classifies err (see the package doc) and says what was attempted.
func (n *Notifier) fail(what string, err error) (bool, error) {
	retry, e := classify(err)
	e.Err = fmt.Errorf("slack receiver %q: %s: %w", n.o.Name, what, err)
	return retry, e
}

func classify(err error) (bool, *notify.Error) {
	var (
		rl *slack.RateLimitedError
		sc slack.StatusCodeError
		se slack.SlackErrorResponse
	)
	switch {
	case errors.As(err, &rl):
		return true, &notify.Error{Reason: notify.ReasonRateLimited, RetryAfter: rl.RetryAfter}
	case errors.As(err, &sc):
		return notify.StatusError(sc.Code, 0, err)
	case errors.As(err, &se):
		switch {
		case se.Err == "ratelimited" || se.Err == "rate_limited":
			return true, &notify.Error{Reason: notify.ReasonRateLimited}
		case transientCodes[se.Err]:
			return true, &notify.Error{Reason: notify.ReasonAPIError}
		}
		return false, &notify.Error{Reason: notify.ReasonAPIError}
	}
	var ue *url.Error
	if errors.As(err, &ue) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true, notify.TransportError(err)
	}
	// Anything else (a 200 whose body is not Slack's JSON, a Retry-After
	// that is not a number) may or may not have been delivered: try again
	// rather than lose the alert.
	return true, &notify.Error{Reason: notify.ReasonOther}
}

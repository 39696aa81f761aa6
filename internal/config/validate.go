package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"vigia/internal/pseudo"
)

// problems collects what is wrong, each problem under its setting's key,
// with the checks that recur across sections.
type problems struct{ errs []error }

func (p *problems) add(key, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
}

func (p *problems) positive(key string, d time.Duration) {
	if d <= 0 {
		p.add(key, "must be positive, got %s", d)
	}
}

func (p *problems) atLeastOne(key string, n int) {
	if n < 1 {
		p.add(key, "must be at least 1, got %d", n)
	}
}

func (p *problems) hostPort(key, addr string) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		p.add(key, "not host:port: %q", addr)
	}
}

func (p *problems) required(key, v string) {
	if v == "" {
		p.add(key, "required")
	}
}

func (p *problems) httpURL(key, u string) {
	if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
		p.add(key, "must be an http or https URL, got %q", u)
	}
}

// topic checks that topic key is set and names no topic another key
// already does (seen: topic → key), and records it.
func (p *problems) topic(key, t string, seen map[string]string) {
	if t == "" {
		p.add(key, "required")
		return
	}
	if other, dup := seen[t]; dup {
		p.add(key, "same topic %q as %s", t, other)
		return
	}
	seen[t] = key
}

// Validate checks the whole configuration and returns every problem found,
// each naming its setting.
func (c *Config) Validate() error { return c.ValidateFor("") }

// ValidateFor checks what one service needs: "ingest", "evaluator",
// "notifier", "sink" or "control" check the shared sections and their own; any other
// name (an all-in-one run, "") checks everything.
func (c *Config) ValidateFor(service string) error {
	all := service != "ingest" && service != "evaluator" && service != "notifier" && service != "sink" && service != "control"
	ingest, evaluator, notifier := all || service == "ingest", all || service == "evaluator", all || service == "notifier"
	sink, control := all || service == "sink", all || service == "control"
	p := &problems{}
	bad, positive := p.add, p.positive

	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, not %q", c.Log.Level)
	}

	p.hostPort("http.listen", c.HTTP.Listen)
	positive("http.read_timeout", c.HTTP.ReadTimeout)
	positive("http.write_timeout", c.HTTP.WriteTimeout)
	if c.HTTP.MaxBodyBytes < 4<<20 {
		bad("http.max_body_bytes", "must be at least 4194304 (Meta sends payloads up to about 3 MB), got %d", c.HTTP.MaxBodyBytes)
	}

	k := c.Kafka
	for _, b := range k.Brokers {
		p.hostPort("kafka.brokers", b)
	}
	if len(k.Brokers) == 0 {
		if k.Embedded.DataDir == "" {
			bad("kafka.embedded.data_dir", "required when kafka.brokers is empty (embedded broker)")
		}
		if k.Embedded.Port < 0 || k.Embedded.Port > 65535 {
			bad("kafka.embedded.port", "must be a port number (0: any free port), got %d", k.Embedded.Port)
		}
	}
	seen := map[string]string{} // topic → the key that names it
	p.topic("kafka.events_topic", k.EventsTopic, seen)
	p.topic("kafka.dlq_topic", k.DLQTopic, seen)
	p.topic("kafka.raw_topic", k.RawTopic, seen)
	p.atLeastOne("kafka.partitions", k.Partitions)
	p.atLeastOne("kafka.replication_factor", k.ReplicationFactor)
	if k.PublishTimeout <= 0 {
		bad("kafka.publish_timeout", "must be positive")
	}
	if k.PublishTimeout >= c.HTTP.WriteTimeout {
		bad("kafka.publish_timeout", "must be shorter than http.write_timeout (%s), or the 503 never reaches Meta", c.HTTP.WriteTimeout)
	}
	if k.BatchTimeout <= 0 || k.BatchTimeout > 1e9 {
		bad("kafka.batch_timeout", "must be between 1ns and 1s (a few ms is right), got %s", k.BatchTimeout)
	}
	switch k.Compression {
	case "none", "gzip", "snappy", "lz4", "zstd":
	default:
		bad("kafka.compression", "must be none, gzip, snappy, lz4 or zstd, not %q", k.Compression)
	}
	positive("kafka.events_retention", k.EventsRetention)
	positive("kafka.raw_retention", k.RawRetention)
	positive("kafka.dlq_retention", k.DLQRetention)

	if ingest {
		c.validateIngest(p)
	}
	if evaluator || notifier || sink || control {
		// The topic the evaluator writes, the notifier and the sink read.
		p.topic("evaluator.alerts_topic", c.Evaluator.AlertsTopic, seen)
	}
	if sink || control {
		// The topic control writes, the sink reads.
		p.topic("kafka.actions_topic", c.Kafka.ActionsTopic, seen)
	}
	if sink {
		c.validateClickHouse(p, seen)
	}
	if evaluator {
		c.validateEvaluator(p)
	}
	if notifier {
		c.validateNotifier(p, seen)
	}
	if control {
		c.validateControl(p, seen)
	}
	if n := c.Notifier; service == "notifier" && len(n.Alertmanager.URLs) == 0 && n.Slack.Token == "" && n.Slack.WebhookURL == "" {
		// Only the notifier alone needs one; an all-in-one run may notify nobody.
		bad("notifier", "no receiver: set notifier.alertmanager.urls, notifier.slack.token or notifier.slack.webhook_url")
	}
	return errors.Join(p.errs...)
}

func (c *Config) validateIngest(p *problems) {
	bad := p.add
	if len(c.Meta.AppSecrets) == 0 {
		bad("meta.app_secrets", "at least one app secret is required to verify webhook signatures")
	}
	for i, s := range c.Meta.AppSecrets {
		if strings.TrimSpace(s) == "" {
			bad("meta.app_secrets", "entry %d is empty", i)
		}
	}
	if c.Meta.VerifyToken == "" {
		bad("meta.verify_token", "required for Meta's GET verification handshake")
	}
	for i, n := range c.Meta.PhoneNumbers {
		if n.ID == "" || pseudo.Digits(n.Display) == "" {
			bad(fmt.Sprintf("meta.phone_numbers[%d]", i), "needs id and display")
		}
	}
	if c.Meta.MaxLearnedNumbers < 0 {
		bad("meta.max_learned_numbers", "must not be negative")
	}
	if len(c.Privacy.PseudonymKey) < pseudo.MinKeyBytes {
		bad("privacy.pseudonym_key", "must be at least %d bytes (a random secret kept outside the data), got %d", pseudo.MinKeyBytes, len(c.Privacy.PseudonymKey))
	}
	if u := c.Twilio.PublicBaseURL; u != "" {
		if pu, err := url.Parse(u); err != nil || pu.Scheme == "" || pu.Host == "" || pu.RawQuery != "" || pu.Fragment != "" {
			bad("twilio.public_base_url", "must be scheme://host[/path prefix] without query or fragment: %q", u)
		}
	}
	if len(c.SendGrid.PublicKeys) > 0 && c.SendGrid.MaxSkew <= 0 {
		bad("sendgrid.max_skew", "must be positive")
	}
}

func (c *Config) validateEvaluator(p *problems) {
	ev := c.Evaluator
	p.hostPort("evaluator.listen", ev.Listen)
	p.required("evaluator.group_id", ev.GroupID)
	p.positive("evaluator.alerts_retention", ev.AlertsRetention)
	p.positive("evaluator.dedupe_horizon", ev.DedupeHorizon)
	p.positive("evaluator.idle_ttl", ev.IdleTTL)
	p.positive("evaluator.commit_interval", ev.CommitInterval)
	p.positive("evaluator.attribution_ttl", ev.AttributionTTL)
	p.positive("evaluator.max_future_skew", ev.MaxFutureSkew)
	if ev.AllowedLateness < 0 {
		p.add("evaluator.allowed_lateness", "must not be negative")
	}
	p.atLeastOne("evaluator.max_keys", ev.MaxKeys)
	p.atLeastOne("evaluator.max_dedupe", ev.MaxDedupe)
	p.atLeastOne("evaluator.max_attribution", ev.MaxAttribution)
}

func (c *Config) validateNotifier(p *problems, seen map[string]string) {
	n := c.Notifier
	p.hostPort("notifier.listen", n.Listen)
	p.required("notifier.group_id", n.GroupID)
	p.topic("notifier.log_topic", n.LogTopic, seen)
	if n.ExternalURL != "" {
		p.httpURL("notifier.external_url", n.ExternalURL)
	}
	p.atLeastOne("notifier.queue_capacity", n.QueueCapacity)
	p.positive("notifier.max_record_age", n.MaxRecordAge)
	p.positive("notifier.max_backoff", n.MaxBackoff)
	p.positive("notifier.commit_interval", n.CommitInterval)
	p.positive("notifier.alertmanager.resend_interval", n.Alertmanager.ResendInterval)
	p.positive("notifier.alertmanager.timeout", n.Alertmanager.Timeout)
	p.positive("notifier.slack.timeout", n.Slack.Timeout)
	for _, u := range n.Alertmanager.URLs {
		p.httpURL("notifier.alertmanager.urls", u)
	}
	s := n.Slack
	switch {
	case s.Token != "" && s.WebhookURL != "":
		p.add("notifier.slack.webhook_url", "set either notifier.slack.token (bot) or notifier.slack.webhook_url, not both")
	case s.WebhookURL != "":
		p.httpURL("notifier.slack.webhook_url", s.WebhookURL)
		if s.Channel != "" || len(s.Routes) > 0 {
			p.add("notifier.slack.channel", "an incoming webhook posts to its own channel; channel and routes need a bot token")
		}
	case s.Token != "":
		if s.Channel == "" && len(s.Routes) == 0 {
			p.add("notifier.slack.channel", "required with a bot token (or routes covering every alert)")
		}
	}
	if s.APIURL != "" {
		p.httpURL("notifier.slack.api_url", s.APIURL)
	}
	if s.RunbookBaseURL != "" {
		p.httpURL("notifier.slack.runbook_base_url", s.RunbookBaseURL)
	}
	for i, r := range s.Routes {
		if r.Channel == "" || len(r.Match) == 0 {
			p.add(fmt.Sprintf("notifier.slack.routes[%d]", i), "needs match (labels) and channel")
		}
	}
}

func (c *Config) validateClickHouse(p *problems, seen map[string]string) {
	ch := c.ClickHouse
	if ch.Addr != "" {
		p.hostPort("clickhouse.addr", ch.Addr)
	} else if ch.Path == "" {
		p.add("clickhouse.path", "required when clickhouse.addr is empty (embedded chDB)")
	}
	p.required("clickhouse.database", ch.Database)
	p.positive("clickhouse.events_ttl", ch.EventsTTL)
	p.positive("clickhouse.recipient_ttl", ch.RecipientTTL)
	p.positive("clickhouse.rollups_ttl", ch.RollupsTTL)
	p.positive("clickhouse.alerts_ttl", ch.AlertsTTL)
	p.positive("clickhouse.raw_ttl", ch.RawTTL)
	p.positive("clickhouse.sink.batch_wait", ch.Sink.BatchWait)
	p.positive("clickhouse.sink.max_backoff", ch.Sink.MaxBackoff)
	if ch.RecipientTTL > ch.EventsTTL {
		p.add("clickhouse.recipient_ttl", "longer than clickhouse.events_ttl (%s): the rows go first", ch.EventsTTL)
	}
	if ch.Sink.BatchRows < 1 || ch.Sink.BatchRows > 1000000 {
		p.add("clickhouse.sink.batch_rows", "must be between 1 and 1000000 (ClickHouse advises 10000 to 100000), got %d", ch.Sink.BatchRows)
	}
	p.hostPort("clickhouse.sink.listen", ch.Sink.Listen)
	p.required("clickhouse.sink.group_id", ch.Sink.GroupID)
	if ch.Sink.ArchiveRaw && !c.Kafka.RawEnabled {
		p.add("clickhouse.sink.archive_raw", "needs kafka.raw_enabled (nothing is published to the raw topic otherwise)")
	}
}

// Scopes of control API tokens.
var controlScopes = []string{"read", "pick", "operate", "admin"}

func (c *Config) validateControl(p *problems, seen map[string]string) {
	ct := c.Control
	p.hostPort("control.listen", ct.Listen)
	p.required("control.routes_file", ct.RoutesFile)
	p.topic("control.routes_topic", ct.RoutesTopic, seen)
	p.required("control.group_id", ct.GroupID)
	p.atLeastOne("control.replicas", ct.Replicas)
	p.positive("control.max_alert_age", ct.MaxAlertAge)
	p.positive("control.propose_timeout", ct.ProposeTimeout)
	p.atLeastOne("control.snapshot_every", ct.SnapshotEvery)
	if ct.MaxBodyBytes < 1024 {
		p.add("control.max_body_bytes", "must be at least 1024, got %d", ct.MaxBodyBytes)
	}
	p.positive("control.webhook_max_age", ct.WebhookMaxAge)
	p.positive("control.webhook_max_backoff", ct.WebhookMaxBackoff)
	names := map[string]bool{}
	for i, t := range ct.Tokens {
		key := fmt.Sprintf("control.tokens[%d]", i)
		if t.Name == "" || names[t.Name] {
			p.add(key, "needs a unique name, got %q", t.Name)
		}
		names[t.Name] = true
		if len(t.SHA256) != 64 || strings.Trim(strings.ToLower(t.SHA256), "0123456789abcdef") != "" {
			p.add(key+".sha256", "must be the 64 hex digits of the token's SHA-256 (vigia-control hash-token prints it)")
		}
		if len(t.Scopes) == 0 {
			p.add(key+".scopes", "at least one of %s", strings.Join(controlScopes, ", "))
		}
		for _, s := range t.Scopes {
			if !slices.Contains(controlScopes, s) {
				p.add(key+".scopes", "unknown scope %q (%s)", s, strings.Join(controlScopes, ", "))
			}
		}
	}
	subs := map[string]bool{}
	for i, s := range ct.Subscribers {
		key := fmt.Sprintf("control.subscribers[%d]", i)
		if s.Name == "" || subs[s.Name] {
			p.add(key, "needs a unique name, got %q", s.Name)
		}
		subs[s.Name] = true
		p.httpURL(key+".url", s.URL)
		if len(s.Secrets) == 0 || s.Secrets[0] == "" {
			p.add(key+".secrets", "at least one signing secret")
		}
	}
}

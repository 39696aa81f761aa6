package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"vigia/internal/pseudo"
)

// Validate checks the whole configuration and returns every problem found,
// each naming its setting.
func (c *Config) Validate() error { return c.ValidateFor("") }

// ValidateFor checks what one service needs: "ingest", "evaluator" or
// "notifier" check the shared sections and their own; any other name (an
// all-in-one run, "") checks everything.
func (c *Config) ValidateFor(service string) error {
	all := service != "ingest" && service != "evaluator" && service != "notifier" && service != "sink"
	ingest, evaluator, notifier := all || service == "ingest", all || service == "evaluator", all || service == "notifier"
	sink := all || service == "sink"
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}

	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, not %q", c.Log.Level)
	}

	if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
		bad("http.listen", "not host:port: %q", c.HTTP.Listen)
	}
	positive := func(key string, d time.Duration) {
		if d <= 0 {
			bad(key, "must be positive, got %s", d)
		}
	}
	positive("http.read_timeout", c.HTTP.ReadTimeout)
	positive("http.write_timeout", c.HTTP.WriteTimeout)
	if c.HTTP.MaxBodyBytes < 4<<20 {
		bad("http.max_body_bytes", "must be at least 4194304 (Meta sends payloads up to about 3 MB), got %d", c.HTTP.MaxBodyBytes)
	}

	k := c.Kafka
	for _, b := range k.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			bad("kafka.brokers", "not host:port: %q", b)
		}
	}
	if len(k.Brokers) == 0 {
		if k.Embedded.DataDir == "" {
			bad("kafka.embedded.data_dir", "required when kafka.brokers is empty (embedded broker)")
		}
		if k.Embedded.Port < 0 || k.Embedded.Port > 65535 {
			bad("kafka.embedded.port", "must be a port number (0: any free port), got %d", k.Embedded.Port)
		}
	}
	seen := map[string]string{}
	for _, kv := range [][2]string{{"kafka.events_topic", k.EventsTopic}, {"kafka.dlq_topic", k.DLQTopic}, {"kafka.raw_topic", k.RawTopic}} {
		key, t := kv[0], kv[1]
		if t == "" {
			bad(key, "required")
			continue
		}
		if other, dup := seen[t]; dup {
			bad(key, "same topic %q as %s", t, other)
		}
		seen[t] = key
	}
	if k.Partitions < 1 {
		bad("kafka.partitions", "must be at least 1, got %d", k.Partitions)
	}
	if k.ReplicationFactor < 1 {
		bad("kafka.replication_factor", "must be at least 1, got %d", k.ReplicationFactor)
	}
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
		errs = append(errs, c.validateIngest()...)
	}
	if evaluator || notifier || sink {
		errs = append(errs, c.validateAlertsTopic(seen)...)
	}
	if sink {
		errs = append(errs, c.validateClickHouse(seen)...)
	}
	if evaluator {
		errs = append(errs, c.validateEvaluator()...)
	}
	if notifier {
		errs = append(errs, c.validateNotifier(seen)...)
	}
	if n := c.Notifier; service == "notifier" && len(n.Alertmanager.URLs) == 0 && n.Slack.Token == "" && n.Slack.WebhookURL == "" {
		// Only the notifier alone needs one; an all-in-one run may notify nobody.
		errs = append(errs, errors.New("notifier: no receiver: set notifier.alertmanager.urls, notifier.slack.token or notifier.slack.webhook_url"))
	}
	return errors.Join(errs...)
}

func (c *Config) validateIngest() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
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
	for i, p := range c.Meta.PhoneNumbers {
		if p.ID == "" || pseudo.Digits(p.Display) == "" {
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
	return errs
}

// validateAlertsTopic checks the topic the evaluator writes and the
// notifier reads.
func (c *Config) validateAlertsTopic(seen map[string]string) []error {
	t := c.Evaluator.AlertsTopic
	switch other, dup := seen[t]; {
	case t == "":
		return []error{errors.New("evaluator.alerts_topic: required")}
	case dup:
		return []error{fmt.Errorf("evaluator.alerts_topic: same topic %q as %s", t, other)}
	}
	seen[t] = "evaluator.alerts_topic"
	return nil
}

func (c *Config) validateEvaluator() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	positive := func(key string, d time.Duration) {
		if d <= 0 {
			bad(key, "must be positive, got %s", d)
		}
	}
	ev := c.Evaluator
	if _, _, err := net.SplitHostPort(ev.Listen); err != nil {
		bad("evaluator.listen", "not host:port: %q", ev.Listen)
	}
	if ev.GroupID == "" {
		bad("evaluator.group_id", "required")
	}
	positive("evaluator.alerts_retention", ev.AlertsRetention)
	positive("evaluator.dedupe_horizon", ev.DedupeHorizon)
	positive("evaluator.idle_ttl", ev.IdleTTL)
	positive("evaluator.commit_interval", ev.CommitInterval)
	positive("evaluator.attribution_ttl", ev.AttributionTTL)
	positive("evaluator.max_future_skew", ev.MaxFutureSkew)
	if ev.AllowedLateness < 0 {
		bad("evaluator.allowed_lateness", "must not be negative")
	}
	atLeastOne := func(key string, n int) {
		if n < 1 {
			bad(key, "must be at least 1, got %d", n)
		}
	}
	atLeastOne("evaluator.max_keys", ev.MaxKeys)
	atLeastOne("evaluator.max_dedupe", ev.MaxDedupe)
	atLeastOne("evaluator.max_attribution", ev.MaxAttribution)
	return errs
}

func (c *Config) validateNotifier(seen map[string]string) []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	n := c.Notifier
	if _, _, err := net.SplitHostPort(n.Listen); err != nil {
		bad("notifier.listen", "not host:port: %q", n.Listen)
	}
	if n.GroupID == "" {
		bad("notifier.group_id", "required")
	}
	if n.LogTopic == "" {
		bad("notifier.log_topic", "required")
	} else if other, dup := seen[n.LogTopic]; dup {
		bad("notifier.log_topic", "same topic %q as %s", n.LogTopic, other)
	}
	httpURL := func(key, u string) {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			bad(key, "must be an http or https URL, got %q", u)
		}
	}
	if n.ExternalURL != "" {
		httpURL("notifier.external_url", n.ExternalURL)
	}
	if n.QueueCapacity < 1 {
		bad("notifier.queue_capacity", "must be at least 1, got %d", n.QueueCapacity)
	}
	for key, d := range map[string]time.Duration{"notifier.max_record_age": n.MaxRecordAge, "notifier.max_backoff": n.MaxBackoff,
		"notifier.commit_interval": n.CommitInterval, "notifier.alertmanager.resend_interval": n.Alertmanager.ResendInterval,
		"notifier.alertmanager.timeout": n.Alertmanager.Timeout, "notifier.slack.timeout": n.Slack.Timeout} {
		if d <= 0 {
			bad(key, "must be positive, got %s", d)
		}
	}
	for _, u := range n.Alertmanager.URLs {
		httpURL("notifier.alertmanager.urls", u)
	}
	s := n.Slack
	switch {
	case s.Token != "" && s.WebhookURL != "":
		bad("notifier.slack.webhook_url", "set either notifier.slack.token (bot) or notifier.slack.webhook_url, not both")
	case s.WebhookURL != "":
		httpURL("notifier.slack.webhook_url", s.WebhookURL)
		if s.Channel != "" || len(s.Routes) > 0 {
			bad("notifier.slack.channel", "an incoming webhook posts to its own channel; channel and routes need a bot token")
		}
	case s.Token != "":
		if s.Channel == "" && len(s.Routes) == 0 {
			bad("notifier.slack.channel", "required with a bot token (or routes covering every alert)")
		}
	}
	if s.APIURL != "" {
		httpURL("notifier.slack.api_url", s.APIURL)
	}
	if s.RunbookBaseURL != "" {
		httpURL("notifier.slack.runbook_base_url", s.RunbookBaseURL)
	}
	for i, r := range s.Routes {
		if r.Channel == "" || len(r.Match) == 0 {
			bad(fmt.Sprintf("notifier.slack.routes[%d]", i), "needs match (labels) and channel")
		}
	}
	return errs
}

func (c *Config) validateClickHouse(seen map[string]string) []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	ch := c.ClickHouse
	if t := c.Kafka.ActionsTopic; t == "" {
		bad("kafka.actions_topic", "required")
	} else if other, dup := seen[t]; dup {
		bad("kafka.actions_topic", "same topic %q as %s", t, other)
	}
	if ch.Addr != "" {
		if _, _, err := net.SplitHostPort(ch.Addr); err != nil {
			bad("clickhouse.addr", "not host:port: %q", ch.Addr)
		}
	} else if ch.Path == "" {
		bad("clickhouse.path", "required when clickhouse.addr is empty (embedded chDB)")
	}
	if ch.Database == "" {
		bad("clickhouse.database", "required")
	}
	for key, d := range map[string]time.Duration{"clickhouse.events_ttl": ch.EventsTTL, "clickhouse.recipient_ttl": ch.RecipientTTL,
		"clickhouse.rollups_ttl": ch.RollupsTTL, "clickhouse.alerts_ttl": ch.AlertsTTL, "clickhouse.raw_ttl": ch.RawTTL,
		"clickhouse.sink.batch_wait": ch.Sink.BatchWait, "clickhouse.sink.max_backoff": ch.Sink.MaxBackoff} {
		if d <= 0 {
			bad(key, "must be positive, got %s", d)
		}
	}
	if ch.RecipientTTL > ch.EventsTTL {
		bad("clickhouse.recipient_ttl", "longer than clickhouse.events_ttl (%s): the rows go first", ch.EventsTTL)
	}
	if ch.Sink.BatchRows < 1 || ch.Sink.BatchRows > 1000000 {
		bad("clickhouse.sink.batch_rows", "must be between 1 and 1000000 (ClickHouse advises 10000 to 100000), got %d", ch.Sink.BatchRows)
	}
	if _, _, err := net.SplitHostPort(ch.Sink.Listen); err != nil {
		bad("clickhouse.sink.listen", "not host:port: %q", ch.Sink.Listen)
	}
	if ch.Sink.GroupID == "" {
		bad("clickhouse.sink.group_id", "required")
	}
	if ch.Sink.ArchiveRaw && !c.Kafka.RawEnabled {
		bad("clickhouse.sink.archive_raw", "needs kafka.raw_enabled (nothing is published to the raw topic otherwise)")
	}
	return errs
}

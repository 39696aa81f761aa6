// Package config holds Vigia's configuration: its shape and defaults, loading
// from a YAML file, VIGIA_* environment variables and command-line flags (in
// that order of precedence, flags last), and validation that reports every
// bad setting at once, each by its name.
package config

import (
	"time"
)

// Config is the whole configuration. Keys in docs, flags and environment
// variables are the YAML paths: kafka.brokers, flag --kafka.brokers,
// variable VIGIA_KAFKA_BROKERS.
type Config struct {
	Log        Log        `yaml:"log"`
	HTTP       HTTP       `yaml:"http"`
	Kafka      Kafka      `yaml:"kafka"`
	Meta       Meta       `yaml:"meta"`
	Privacy    Privacy    `yaml:"privacy"`
	OptOut     OptOut     `yaml:"optout"`
	Twilio     Twilio     `yaml:"twilio"`
	SendGrid   SendGrid   `yaml:"sendgrid"`
	Evaluator  Evaluator  `yaml:"evaluator"`
	Notifier   Notifier   `yaml:"notifier"`
	ClickHouse ClickHouse `yaml:"clickhouse"`
	Control    Control    `yaml:"control"`
}

// Control configures the control API: the routes file, the route log,
// the automation's consumer group on the alerts topic, API tokens and the
// senders subscribed to route changes.
type Control struct {
	Listen            string              `yaml:"listen" help:"address of the control API (routes, pick, operator actions, metrics, health)"`
	RoutesFile        string              `yaml:"routes_file" help:"routes file: use cases, number pools, strategies, budgets, channel chains, automation guards"`
	RoutesTopic       string              `yaml:"routes_topic" help:"compacted one-partition topic of the route log (commands and snapshots), shared by control replicas"`
	GroupID           string              `yaml:"group_id" help:"Kafka consumer group of the control replicas on the alerts topic"`
	Replicas          int                 `yaml:"replicas" help:"control processes sharing the pick traffic; each grants 1/replicas of every number's budgets"`
	MaxAlertAge       time.Duration       `yaml:"max_alert_age" help:"firing alert records older than this (event time) start no automatic change when first read"`
	ProposeTimeout    time.Duration       `yaml:"propose_timeout" help:"longest wait for a route change to be written to and read back from the route log"`
	SnapshotEvery     int                 `yaml:"snapshot_every" help:"route commands between two snapshots of the route state in the route log"`
	MaxBodyBytes      int64               `yaml:"max_body_bytes" help:"largest accepted API request body, in bytes"`
	WebhookMaxAge     time.Duration       `yaml:"webhook_max_age" help:"a route change webhook a sender keeps refusing is given up this long after its first attempt"`
	WebhookMaxBackoff time.Duration       `yaml:"webhook_max_backoff" help:"longest wait between retries of a webhook to a sender"`
	Tokens            []ControlToken      `yaml:"tokens"`
	Subscribers       []ControlSubscriber `yaml:"subscribers"`
}

// ControlToken is one API bearer token, stored as the hex SHA-256 of the
// token (vigia-control hash-token prints it), with its scopes: read, pick,
// operate, admin.
type ControlToken struct {
	Name   string   `yaml:"name"`
	SHA256 string   `yaml:"sha256"`
	Scopes []string `yaml:"scopes"`
}

// ControlSubscriber is a sender that receives route changes as signed
// webhooks.
type ControlSubscriber struct {
	Name     string   `yaml:"name"`
	URL      string   `yaml:"url"`
	Secrets  []string `yaml:"secrets"`
	UseCases []string `yaml:"use_cases"`
}

// ClickHouse configures the history store (a ClickHouse server, or
// embedded chDB) and the sink that fills it.
type ClickHouse struct {
	Addr         string         `yaml:"addr" help:"ClickHouse server host:port (native protocol); empty runs embedded chDB in clickhouse.path"`
	Database     string         `yaml:"database" help:"database of Vigia's tables (created if missing)"`
	Username     string         `yaml:"username" help:"ClickHouse user (server only)"`
	Password     string         `yaml:"password" secret:"true" help:"ClickHouse password (server only)"`
	Path         string         `yaml:"path" help:"data directory of embedded chDB; one process at a time may hold it"`
	EventsTTL    time.Duration  `yaml:"events_ttl" help:"how long raw events are kept"`
	RecipientTTL time.Duration  `yaml:"recipient_ttl" help:"how long the recipient pseudonym of an event is kept (then cleared; the row stays)"`
	RollupsTTL   time.Duration  `yaml:"rollups_ttl" help:"how long the per-minute rollups are kept (longer than raw events)"`
	AlertsTTL    time.Duration  `yaml:"alerts_ttl" help:"how long alert state changes and route actions are kept"`
	RawTTL       time.Duration  `yaml:"raw_ttl" help:"how long archived raw payloads are kept (short: personal data)"`
	Sink         ClickHouseSink `yaml:"sink"`
}

// ClickHouseSink configures the sink: the consumer group that copies the
// events, alerts and actions topics into ClickHouse.
type ClickHouseSink struct {
	Listen     string        `yaml:"listen" help:"address of the sink's HTTP server (metrics, health)"`
	GroupID    string        `yaml:"group_id" help:"Kafka consumer group of the sinks"`
	BatchRows  int           `yaml:"batch_rows" help:"rows per insert: a batch is written when it has this many rows..."`
	BatchWait  time.Duration `yaml:"batch_wait" help:"...or when its oldest row has waited this long"`
	MaxBackoff time.Duration `yaml:"max_backoff" help:"longest wait between retries of an insert ClickHouse refused"`
	ArchiveRaw bool          `yaml:"archive_raw" help:"also copy the raw topic into raw_payloads (personal data; needs kafka.raw_enabled)"`
}

// Notifier configures the notifier: its consumer group on the alerts
// topic, the notification log and the receivers (Alertmanager, Slack).
type Notifier struct {
	Listen         string               `yaml:"listen" help:"address of the notifier's HTTP server (metrics, health, receivers API)"`
	GroupID        string               `yaml:"group_id" help:"Kafka consumer group of the notifiers"`
	LogTopic       string               `yaml:"log_topic" help:"compacted topic of the notification log: what was sent to which receiver (key: receiver/fingerprint)"`
	ExternalURL    string               `yaml:"external_url" help:"base URL people use to reach the evaluator's alerts API; links in notifications point there (empty: no link)"`
	QueueCapacity  int                  `yaml:"queue_capacity" help:"bound on notifications waiting per receiver; beyond it the oldest is dropped and counted"`
	MaxRecordAge   time.Duration        `yaml:"max_record_age" help:"alert records older than this (event time) are not notified when first read, e.g. by a new notifier on an old topic"`
	MaxBackoff     time.Duration        `yaml:"max_backoff" help:"longest wait between retries of a receiver that is down"`
	CommitInterval time.Duration        `yaml:"commit_interval" help:"how often the offsets of delivered alert records are committed"`
	Alertmanager   NotifierAlertmanager `yaml:"alertmanager"`
	Slack          NotifierSlack        `yaml:"slack"`
}

// NotifierAlertmanager configures delivery to Alertmanagers (API v2).
type NotifierAlertmanager struct {
	URLs           []string      `yaml:"urls" help:"Alertmanager base URLs (http://host:9093), comma-separated; each gets every alert; empty: none"`
	ResendInterval time.Duration `yaml:"resend_interval" help:"how often firing alerts are re-sent; their endsAt is 4 times this after each send"`
	Timeout        time.Duration `yaml:"timeout" help:"time allowed for one request to an Alertmanager"`
}

// NotifierSlack configures delivery to Slack, by bot token (messages are
// updated on resolve) or incoming webhook (post only).
type NotifierSlack struct {
	Token          string        `yaml:"token" secret:"true" help:"bot token (xoxb-...) with chat:write; enables Slack with updates on resolve"`
	WebhookURL     string        `yaml:"webhook_url" secret:"true" help:"incoming-webhook URL, used when no token is set (cannot update messages)"`
	APIURL         string        `yaml:"api_url" help:"Slack Web API base URL (empty: Slack's own; set for a proxy or a test server)"`
	Channel        string        `yaml:"channel" help:"default channel (bot mode) for alerts no route matches"`
	Routes         []SlackRoute  `yaml:"routes"`
	RunbookBaseURL string        `yaml:"runbook_base_url" help:"runbook link for alerts without a runbook_url annotation: this URL + / + alertname (empty: none)"`
	Timeout        time.Duration `yaml:"timeout" help:"time allowed for one Slack request"`
}

// SlackRoute sends alerts whose labels all equal Match to Channel; the
// first matching route wins.
type SlackRoute struct {
	Match   map[string]string `yaml:"match"`
	Channel string            `yaml:"channel"`
}

// Evaluator configures the evaluator: its rules, its consumer group, its
// windows and the alerts topic.
type Evaluator struct {
	Listen          string        `yaml:"listen" help:"address of the evaluator's HTTP server (metrics, health, reload, alerts API)"`
	Rules           []string      `yaml:"rules" help:"rules files or directories, comma-separated"`
	GroupID         string        `yaml:"group_id" help:"Kafka consumer group of the evaluators"`
	AlertsTopic     string        `yaml:"alerts_topic" help:"topic the evaluator publishes alert state changes to (key: fingerprint)"`
	AlertsRetention time.Duration `yaml:"alerts_retention" help:"retention of the alerts topic; alert states are restored from it at start"`
	AllowedLateness time.Duration `yaml:"allowed_lateness" help:"events older than the partition watermark minus this are dropped and counted"`
	DedupeHorizon   time.Duration `yaml:"dedupe_horizon" help:"how long (message id, status) pairs are remembered for deduplication and latency"`
	IdleTTL         time.Duration `yaml:"idle_ttl" help:"a key with no event for this long is forgotten (its alerts resolve)"`
	MaxKeys         int           `yaml:"max_keys" help:"bound on keys per keyspace; new keys beyond it are refused and counted"`
	MaxDedupe       int           `yaml:"max_dedupe" help:"bound on remembered (message id, status) pairs"`
	MaxAttribution  int           `yaml:"max_attribution" help:"bound on remembered (number, user) -> last template pairs, for opt-out attribution"`
	AttributionTTL  time.Duration `yaml:"attribution_ttl" help:"how long the last template sent to a user is remembered for attributing their opt-outs"`
	MaxFutureSkew   time.Duration `yaml:"max_future_skew" help:"events stamped further than this after their receive time are refused (a wrong clock must not move the watermark)"`
	CommitInterval  time.Duration `yaml:"commit_interval" help:"how often applied offsets are committed"`
}

// Log configures the JSON logger.
type Log struct {
	Level string `yaml:"level" help:"log level: debug, info, warn or error"`
}

// HTTP configures the ingest HTTP server.
type HTTP struct {
	Listen       string        `yaml:"listen" help:"address the HTTP server listens on"`
	ReadTimeout  time.Duration `yaml:"read_timeout" help:"time allowed to read a whole request, body included"`
	WriteTimeout time.Duration `yaml:"write_timeout" help:"time allowed to answer, publishing to Kafka included"`
	IdleTimeout  time.Duration `yaml:"idle_timeout" help:"keep-alive idle time"`
	MaxBodyBytes int64         `yaml:"max_body_bytes" help:"largest accepted request body, in bytes (Meta sends up to about 3 MB)"`
}

// Kafka configures the broker connection, the topics and the producer.
type Kafka struct {
	Brokers           []string      `yaml:"brokers" help:"bootstrap brokers host:port, comma-separated; empty runs the embedded broker"`
	Embedded          Embedded      `yaml:"embedded"`
	EventsTopic       string        `yaml:"events_topic" help:"topic of normalized events (key: WABA id)"`
	RawTopic          string        `yaml:"raw_topic" help:"topic of exact signed payloads, for replay (holds personal data)"`
	RawEnabled        bool          `yaml:"raw_enabled" help:"publish every signed payload to the raw topic"`
	DLQTopic          string        `yaml:"dlq_topic" help:"dead-letter topic for payloads that could not be parsed (holds personal data)"`
	CreateTopics      bool          `yaml:"create_topics" help:"create missing topics at start"`
	Partitions        int           `yaml:"partitions" help:"partitions of topics created at start"`
	ReplicationFactor int           `yaml:"replication_factor" help:"replication factor of topics created at start"`
	EventsRetention   time.Duration `yaml:"events_retention" help:"retention of the events topic"`
	RawRetention      time.Duration `yaml:"raw_retention" help:"retention of the raw topic (short: it holds personal data)"`
	DLQRetention      time.Duration `yaml:"dlq_retention" help:"retention of the dead-letter topic (short: it holds personal data)"`
	PublishTimeout    time.Duration `yaml:"publish_timeout" help:"longest wait for Kafka to acknowledge one request's records before answering 503"`
	BatchTimeout      time.Duration `yaml:"batch_timeout" help:"producer linger: how long records wait for more to share a batch"`
	Compression       string        `yaml:"compression" help:"producer compression: none, gzip, snappy, lz4 or zstd"`
	ActionsTopic      string        `yaml:"actions_topic" help:"topic of route changes (the control API's audit log), copied to ClickHouse"`
}

// Embedded configures the in-process Kafka-protocol broker used when no
// brokers are configured.
type Embedded struct {
	DataDir    string `yaml:"data_dir" help:"data directory of the embedded broker"`
	Port       int    `yaml:"port" help:"port of the embedded broker on 127.0.0.1"`
	SyncWrites bool   `yaml:"sync_writes" help:"fsync every produced batch before acknowledging it"`
}

// Meta configures the WhatsApp Cloud API webhook.
type Meta struct {
	VerifyToken       string        `yaml:"verify_token" secret:"true" help:"token Meta echoes in the GET verification handshake"`
	AppSecrets        []string      `yaml:"app_secrets" secret:"true" help:"app secrets that may sign webhooks (several during a rotation), comma-separated"`
	PhoneNumbers      []PhoneNumber `yaml:"phone_numbers"`
	MaxLearnedNumbers int           `yaml:"max_learned_numbers" help:"bound on display-number to id mappings learned from webhooks"`
}

// PhoneNumber maps a display number to its phone number id (for
// phone_number_quality_update, which names only the display number).
type PhoneNumber struct {
	ID      string `yaml:"id"`
	Display string `yaml:"display"`
	WABAID  string `yaml:"waba_id"`
}

// Privacy configures pseudonymization.
type Privacy struct {
	PseudonymKey string `yaml:"pseudonym_key" secret:"true" help:"secret key (at least 32 bytes) of the HMAC that pseudonymizes recipients"`
}

// OptOut configures opt-out detection in inbound messages.
type OptOut struct {
	Keywords       []string `yaml:"keywords" help:"words that make an inbound text an opt-out, alone or starting a message of up to 4 words, comma-separated (empty: built-in list)"`
	ExactKeywords  []string `yaml:"exact_keywords" help:"words that make an inbound text an opt-out only as the whole message, comma-separated (empty: built-in list)"`
	ButtonPayloads []string `yaml:"button_payloads" help:"quick-reply payloads or titles that mean opt-out, comma-separated (empty: built-in list)"`
}

// Twilio configures the SMS status callback endpoint.
type Twilio struct {
	AuthTokens    []string `yaml:"auth_tokens" secret:"true" help:"Twilio auth tokens that may sign callbacks, comma-separated; empty disables the endpoint"`
	PublicBaseURL string   `yaml:"public_base_url" help:"scheme://host Twilio calls (the signature covers the full URL); empty: taken from the request"`
	WABAID        string   `yaml:"waba_id" help:"WABA id SMS events are keyed by when the callback URL names none"`
}

// SendGrid configures the e-mail event webhook endpoint.
type SendGrid struct {
	PublicKeys []string      `yaml:"public_keys" secret:"true" help:"SendGrid verification keys (base64 DER), comma-separated; empty disables the endpoint"`
	MaxSkew    time.Duration `yaml:"max_skew" help:"oldest accepted signature timestamp, against replays"`
	WABAID     string        `yaml:"waba_id" help:"WABA id e-mail events are keyed by when the event names none"`
}

// Default returns the configuration used when nothing is set: everything on
// one machine, embedded broker, loopback only.
func Default() Config {
	return Config{
		Log: Log{Level: "info"},
		HTTP: HTTP{
			Listen:       "127.0.0.1:8080",
			ReadTimeout:  30 * time.Second,
			WriteTimeout: 30 * time.Second,
			IdleTimeout:  120 * time.Second,
			MaxBodyBytes: 8 << 20,
		},
		Kafka: Kafka{
			Embedded:          Embedded{DataDir: "data/kafka", Port: 19192, SyncWrites: true},
			EventsTopic:       "vigia.events",
			RawTopic:          "vigia.raw",
			DLQTopic:          "vigia.dlq",
			CreateTopics:      true,
			Partitions:        6,
			ReplicationFactor: 1,
			EventsRetention:   7 * 24 * time.Hour,
			RawRetention:      72 * time.Hour,
			DLQRetention:      7 * 24 * time.Hour,
			PublishTimeout:    10 * time.Second,
			BatchTimeout:      2 * time.Millisecond,
			Compression:       "lz4",
			ActionsTopic:      "vigia.actions",
		},
		Meta:     Meta{MaxLearnedNumbers: 100000},
		SendGrid: SendGrid{MaxSkew: 10 * time.Minute},
		Evaluator: Evaluator{
			Listen:          "127.0.0.1:8081",
			Rules:           []string{"rules"},
			GroupID:         "vigia-evaluator",
			AlertsTopic:     "vigia.alerts",
			AlertsRetention: 30 * 24 * time.Hour,
			AllowedLateness: 2 * time.Minute,
			DedupeHorizon:   2 * time.Hour,
			IdleTTL:         3 * time.Hour,
			MaxKeys:         200000,
			MaxDedupe:       5000000,
			MaxAttribution:  1000000,
			AttributionTTL:  24 * time.Hour,
			MaxFutureSkew:   5 * time.Minute,
			CommitInterval:  time.Second,
		},
		Notifier: Notifier{
			Listen:         "127.0.0.1:8082",
			GroupID:        "vigia-notifier",
			LogTopic:       "vigia.notifications",
			QueueCapacity:  10000,
			MaxRecordAge:   24 * time.Hour,
			MaxBackoff:     30 * time.Second,
			CommitInterval: time.Second,
			Alertmanager:   NotifierAlertmanager{ResendInterval: time.Minute, Timeout: 10 * time.Second},
			Slack:          NotifierSlack{Timeout: 10 * time.Second},
		},
		ClickHouse: ClickHouse{
			Database:     "vigia",
			Path:         "data/chdb",
			EventsTTL:    90 * 24 * time.Hour,
			RecipientTTL: 30 * 24 * time.Hour,
			RollupsTTL:   400 * 24 * time.Hour,
			AlertsTTL:    400 * 24 * time.Hour,
			RawTTL:       72 * time.Hour,
			Sink: ClickHouseSink{Listen: "127.0.0.1:8083", GroupID: "vigia-sink", BatchRows: 100000,
				BatchWait: time.Second, MaxBackoff: 30 * time.Second},
		},
		Control: Control{
			Listen:            "127.0.0.1:8084",
			RoutesFile:        "routes.yaml",
			RoutesTopic:       "vigia.routes",
			GroupID:           "vigia-control",
			Replicas:          1,
			MaxAlertAge:       time.Hour,
			ProposeTimeout:    10 * time.Second,
			SnapshotEvery:     1000,
			MaxBodyBytes:      64 << 10,
			WebhookMaxAge:     24 * time.Hour,
			WebhookMaxBackoff: 5 * time.Minute,
		},
	}
}

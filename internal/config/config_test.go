package config

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const goodKey = "0123456789abcdef0123456789abcdef" // 32 bytes

// required are the settings Default() leaves empty and Validate requires.
var required = map[string]string{
	"VIGIA_META_APP_SECRETS":      "env-secret",
	"VIGIA_META_VERIFY_TOKEN":     "env-verify-token",
	"VIGIA_PRIVACY_PSEUDONYM_KEY": goodKey,
}

// envOf returns a getenv func over the required settings plus extra (an
// extra value "" removes a required one).
func envOf(extra map[string]string) func(string) string {
	m := map[string]string{}
	for k, v := range required {
		m[k] = v
	}
	for k, v := range extra {
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

func noEnv(string) string { return "" }

func validDefault() Config {
	c := Default()
	c.Meta.AppSecrets = []string{"secret"}
	c.Meta.VerifyToken = "token"
	c.Privacy.PseudonymKey = goodKey
	return c
}

func fixture(name string) string { return filepath.Join("testdata", name) }

// wantAll fails unless err contains every one of the substrings.
func wantAll(t *testing.T, err error, subs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want an error containing %q", subs)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error does not contain %q:\n%v", s, err)
		}
	}
}

func TestDefaultPlusSecretsValidates(t *testing.T) {
	c := validDefault()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default() with secrets: %v", err)
	}
	// Default alone lacks exactly the three secrets.
	d := Default()
	err := d.Validate()
	wantAll(t, err, "meta.app_secrets", "meta.verify_token", "privacy.pseudonym_key")
	if n := len(strings.Split(err.Error(), "\n")); n != 3 {
		t.Errorf("Default().Validate() reported %d problems, want 3:\n%v", n, err)
	}
}

func TestLoadDefaultsOnly(t *testing.T) {
	cfg, err := Load("vigia", nil, envOf(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Meta.AppSecrets = []string{"env-secret"}
	want.Meta.VerifyToken = "env-verify-token"
	want.Privacy.PseudonymKey = goodKey
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("Load with only the required env:\n got %+v\nwant %+v", cfg, want)
	}
}

func TestLoadFullFile(t *testing.T) {
	cfg, err := Load("vigia", []string{"--config.file", fixture("full.yaml")}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Log: Log{Level: "debug"},
		HTTP: HTTP{
			Listen: "0.0.0.0:9090", ReadTimeout: 15 * time.Second, WriteTimeout: 45 * time.Second,
			IdleTimeout: 3 * time.Minute, MaxBodyBytes: 16 << 20,
		},
		Kafka: Kafka{
			Brokers:           []string{"kafka-1:9092", "kafka-2:9092"},
			Embedded:          Embedded{DataDir: "/var/lib/vigia/kafka", Port: 29192, SyncWrites: false},
			EventsTopic:       "prod.events",
			RawTopic:          "prod.raw",
			RawEnabled:        true,
			DLQTopic:          "prod.dlq",
			CreateTopics:      false,
			Partitions:        12,
			ReplicationFactor: 3,
			EventsRetention:   336 * time.Hour,
			RawRetention:      24 * time.Hour,
			DLQRetention:      48 * time.Hour,
			PublishTimeout:    5 * time.Second,
			BatchTimeout:      5 * time.Millisecond,
			Compression:       "zstd",
			ActionsTopic:      "prod.actions",
		},
		Meta: Meta{
			VerifyToken:       "file-verify-token",
			AppSecrets:        []string{"file-secret-1", "file-secret-2"},
			PhoneNumbers:      []PhoneNumber{{ID: "106540352242922", Display: "+1 555-078-3881", WABAID: "102290129340398"}},
			MaxLearnedNumbers: 500,
		},
		Privacy:  Privacy{PseudonymKey: "file-pseudonym-key-0123456789abcdef"},
		OptOut:   OptOut{Keywords: []string{"parar", "stop"}, ExactKeywords: []string{"cancelar"}, ButtonPayloads: []string{"STOP_PROMOTIONS"}},
		Twilio:   Twilio{AuthTokens: []string{"twilio-token"}, PublicBaseURL: "https://vigia.example.com", WABAID: "102290129340398"},
		SendGrid: SendGrid{PublicKeys: []string{"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"}, MaxSkew: 5 * time.Minute, WABAID: "102290129340398"},
		Evaluator: Evaluator{Listen: "0.0.0.0:9091", Rules: []string{"/etc/vigia/rules", "/etc/vigia/extra.yaml"}, GroupID: "prod-evaluator",
			AlertsTopic: "prod.alerts", AlertsRetention: 240 * time.Hour, AllowedLateness: time.Minute, DedupeHorizon: time.Hour,
			IdleTTL: 6 * time.Hour, MaxKeys: 1000, MaxDedupe: 2000, MaxAttribution: 3000, CommitInterval: 2 * time.Second,
			AttributionTTL: 12 * time.Hour, MaxFutureSkew: time.Minute},
		Notifier: Notifier{Listen: "0.0.0.0:9092", GroupID: "prod-notifier", LogTopic: "prod.notifications",
			ExternalURL: "https://vigia.example.com", QueueCapacity: 500, MaxRecordAge: 6 * time.Hour, MaxBackoff: time.Minute,
			CommitInterval: 3 * time.Second,
			Alertmanager:   NotifierAlertmanager{URLs: []string{"http://am-1:9093", "http://am-2:9093"}, ResendInterval: 30 * time.Second, Timeout: 5 * time.Second},
			Slack: NotifierSlack{Token: "file-slack-token", APIURL: "https://slack-proxy.example.com/api/", Channel: "#vigia-alerts",
				Routes: []SlackRoute{{Match: map[string]string{"severity": "critical"}, Channel: "#vigia-critical"},
					{Match: map[string]string{"use_case": "billing"}, Channel: "#billing-oncall"}},
				RunbookBaseURL: "https://wiki.example.com/runbooks", Timeout: 3 * time.Second}},
		ClickHouse: ClickHouse{Addr: "clickhouse-1:9000", Database: "prod_vigia", Username: "vigia", Password: "file-clickhouse-password",
			Path: "/var/lib/vigia/chdb", EventsTTL: 720 * time.Hour, RecipientTTL: 240 * time.Hour, RollupsTTL: 8760 * time.Hour,
			AlertsTTL: 4380 * time.Hour, RawTTL: 24 * time.Hour,
			Sink: ClickHouseSink{Listen: "0.0.0.0:9093", GroupID: "prod-sink", BatchRows: 20000, BatchWait: 2 * time.Second,
				MaxBackoff: time.Minute, ArchiveRaw: true}},
		Control: Control{Listen: "0.0.0.0:9094", RoutesFile: "/etc/vigia/routes.yaml", RoutesTopic: "prod.routes", GroupID: "prod-control",
			Replicas: 2, MaxAlertAge: 30 * time.Minute, ProposeTimeout: 5 * time.Second, SnapshotEvery: 500, MaxBodyBytes: 32768,
			WebhookMaxAge: 12 * time.Hour, WebhookMaxBackoff: 2 * time.Minute,
			Tokens:      []ControlToken{{Name: "ops", SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Scopes: []string{"operate"}}},
			Subscribers: []ControlSubscriber{{Name: "crm", URL: "https://crm.example.com/vigia", Secrets: []string{"file-webhook-secret"}, UseCases: []string{"sales"}}}},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("full.yaml:\n got %+v\nwant %+v", cfg, want)
	}
	// full.yaml must really set every setting to a non-default value, or
	// this test would not notice a key the loader ignores.
	def := Default()
	got, defs := Describe(&cfg), Describe(&def)
	for i := range got {
		// The webhook excludes the bot token set in full.yaml; its
		// loading is the same code, its checks are in TestValidateEachSetting.
		if got[i][0] == "notifier.slack.webhook_url" {
			continue
		}
		if got[i][2] == defs[i][2] {
			t.Errorf("full.yaml leaves %s at its default %q", got[i][0], defs[i][2])
		}
	}
}

func TestLoadPartialFileKeepsDefaults(t *testing.T) {
	cfg, err := Load("vigia", []string{"--config.file=" + fixture("partial.yaml")}, envOf(map[string]string{"VIGIA_META_APP_SECRETS": ""}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Kafka.Partitions = 3
	want.Meta.AppSecrets = []string{"file-secret"}
	want.Meta.VerifyToken = "env-verify-token"
	want.Privacy.PseudonymKey = goodKey
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("partial.yaml:\n got %+v\nwant %+v", cfg, want)
	}
}

func TestLoadFileErrors(t *testing.T) {
	cases := []struct {
		file string
		want []string
	}{
		{"unknown_key.bad.yaml", []string{"unknown_key.bad.yaml", "line 5", "field partitons not found"}},
		{"unknown_section.bad.yaml", []string{"line 3", "field metrics not found"}},
		{"bad_duration.bad.yaml", []string{"line 2", "soon", "time.Duration"}},
		{"does_not_exist.yaml", []string{"config file", "does_not_exist.yaml"}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			_, err := Load("vigia", []string{"--config.file", fixture(c.file)}, envOf(nil), io.Discard)
			wantAll(t, err, c.want...)
		})
	}
}

func TestLoadEmptyFile(t *testing.T) {
	cfg, err := Load("vigia", []string{"--config.file", fixture("empty.yaml")}, envOf(nil), io.Discard)
	if err != nil {
		t.Fatalf("empty file: %v", err)
	}
	if cfg.Kafka.Partitions != Default().Kafka.Partitions {
		t.Errorf("empty file changed kafka.partitions to %d", cfg.Kafka.Partitions)
	}
}

func TestConfigFileFromEnv(t *testing.T) {
	cfg, err := Load("vigia", nil, envOf(map[string]string{"VIGIA_CONFIG_FILE": fixture("full.yaml")}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Kafka.Partitions != 12 || cfg.Log.Level != "debug" {
		t.Errorf("VIGIA_CONFIG_FILE not read: partitions %d level %q", cfg.Kafka.Partitions, cfg.Log.Level)
	}
	// The flag names another file and wins over the variable.
	cfg, err = Load("vigia", []string{"--config.file", fixture("partial.yaml")},
		envOf(map[string]string{"VIGIA_CONFIG_FILE": fixture("full.yaml")}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Kafka.Partitions != 3 || cfg.Log.Level != "info" {
		t.Errorf("--config.file did not win over VIGIA_CONFIG_FILE: partitions %d level %q", cfg.Kafka.Partitions, cfg.Log.Level)
	}
}

func TestPrecedence(t *testing.T) {
	file := []string{"--config.file", fixture("full.yaml")}
	cases := []struct {
		name       string
		args       []string
		env        map[string]string
		partitions int
		compress   string
		publish    time.Duration
		brokers    []string
		secrets    []string
	}{
		{"default", nil, nil, 6, "lz4", 10 * time.Second, nil, []string{"env-secret"}},
		{"file over default", file, map[string]string{"VIGIA_META_APP_SECRETS": ""}, 12, "zstd", 5 * time.Second,
			[]string{"kafka-1:9092", "kafka-2:9092"}, []string{"file-secret-1", "file-secret-2"}},
		{"env over file", file, map[string]string{
			"VIGIA_KAFKA_PARTITIONS":      "8",
			"VIGIA_KAFKA_COMPRESSION":     "gzip",
			"VIGIA_KAFKA_PUBLISH_TIMEOUT": "7s",
			"VIGIA_KAFKA_BROKERS":         "env-1:9092",
			"VIGIA_META_APP_SECRETS":      "a, b",
		}, 8, "gzip", 7 * time.Second, []string{"env-1:9092"}, []string{"a", "b"}},
		{"flags over env", append(append([]string{}, file...),
			"--kafka.partitions", "4", "--kafka.compression=snappy", "--kafka.publish_timeout", "3s",
			"--kafka.brokers", "flag-1:9092,flag-2:9092", "--meta.app_secrets", "x"),
			map[string]string{
				"VIGIA_KAFKA_PARTITIONS":      "8",
				"VIGIA_KAFKA_COMPRESSION":     "gzip",
				"VIGIA_KAFKA_PUBLISH_TIMEOUT": "7s",
				"VIGIA_KAFKA_BROKERS":         "env-1:9092",
				"VIGIA_META_APP_SECRETS":      "a, b",
			}, 4, "snappy", 3 * time.Second, []string{"flag-1:9092", "flag-2:9092"}, []string{"x"}},
		{"flag before --config.file still wins", append([]string{"--kafka.partitions", "5"}, file...), nil,
			5, "zstd", 5 * time.Second, []string{"kafka-1:9092", "kafka-2:9092"}, []string{"env-secret"}},
		{"flags over default without file", []string{"--kafka.partitions=2"}, nil, 2, "lz4", 10 * time.Second, nil, []string{"env-secret"}},
		{"last of repeated flags wins", []string{"--kafka.partitions=2", "--kafka.partitions=9"}, nil, 9, "lz4", 10 * time.Second, nil, []string{"env-secret"}},
		{"empty env does not override", file, map[string]string{"VIGIA_KAFKA_PARTITIONS": "", "VIGIA_KAFKA_COMPRESSION": ""},
			12, "zstd", 5 * time.Second, []string{"kafka-1:9092", "kafka-2:9092"}, []string{"env-secret"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Load("vigia", c.args, envOf(c.env), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			k := cfg.Kafka
			if k.Partitions != c.partitions || k.Compression != c.compress || k.PublishTimeout != c.publish ||
				!reflect.DeepEqual(k.Brokers, c.brokers) || !reflect.DeepEqual(cfg.Meta.AppSecrets, c.secrets) {
				t.Errorf("got partitions=%d compression=%q publish_timeout=%s brokers=%q app_secrets=%q\n"+
					"want partitions=%d compression=%q publish_timeout=%s brokers=%q app_secrets=%q",
					k.Partitions, k.Compression, k.PublishTimeout, k.Brokers, cfg.Meta.AppSecrets,
					c.partitions, c.compress, c.publish, c.brokers, c.secrets)
			}
		})
	}
}

func TestEnvAndFlagTypes(t *testing.T) {
	cases := []struct {
		name  string
		env   map[string]string
		args  []string
		check func(c Config) bool
	}{
		{"list with spaces", map[string]string{"VIGIA_META_APP_SECRETS": "a, b"}, nil,
			func(c Config) bool { return reflect.DeepEqual(c.Meta.AppSecrets, []string{"a", "b"}) }},
		{"list drops empty items", map[string]string{"VIGIA_OPTOUT_KEYWORDS": " parar ,, stop , "}, nil,
			func(c Config) bool { return reflect.DeepEqual(c.OptOut.Keywords, []string{"parar", "stop"}) }},
		{"list single", map[string]string{"VIGIA_KAFKA_BROKERS": "k:9092"}, nil,
			func(c Config) bool { return reflect.DeepEqual(c.Kafka.Brokers, []string{"k:9092"}) }},
		{"list from flag", nil, []string{"--twilio.auth_tokens", "t1, t2,t3"},
			func(c Config) bool { return reflect.DeepEqual(c.Twilio.AuthTokens, []string{"t1", "t2", "t3"}) }},
		{"duration env", map[string]string{"VIGIA_HTTP_WRITE_TIMEOUT": "1m30s", "VIGIA_KAFKA_BATCH_TIMEOUT": "250us"}, nil,
			func(c Config) bool {
				return c.HTTP.WriteTimeout == 90*time.Second && c.Kafka.BatchTimeout == 250*time.Microsecond
			}},
		{"duration flag", nil, []string{"--kafka.raw_retention=36h", "--sendgrid.max_skew", "90s"},
			func(c Config) bool {
				return c.Kafka.RawRetention == 36*time.Hour && c.SendGrid.MaxSkew == 90*time.Second
			}},
		{"bool env", map[string]string{"VIGIA_KAFKA_RAW_ENABLED": "true", "VIGIA_KAFKA_CREATE_TOPICS": "0"}, nil,
			func(c Config) bool { return c.Kafka.RawEnabled && !c.Kafka.CreateTopics }},
		{"bool flag with value", nil, []string{"--kafka.embedded.sync_writes=false", "--kafka.raw_enabled=T"},
			func(c Config) bool { return !c.Kafka.Embedded.SyncWrites && c.Kafka.RawEnabled }},
		{"int64 env", map[string]string{"VIGIA_HTTP_MAX_BODY_BYTES": "5242880"}, nil,
			func(c Config) bool { return c.HTTP.MaxBodyBytes == 5<<20 }},
		{"nested int flag", nil, []string{"--kafka.embedded.port", "29092"},
			func(c Config) bool { return c.Kafka.Embedded.Port == 29092 }},
		{"string env", map[string]string{"VIGIA_LOG_LEVEL": "warn", "VIGIA_HTTP_LISTEN": ":8081"}, nil,
			func(c Config) bool { return c.Log.Level == "warn" && c.HTTP.Listen == ":8081" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Load("vigia", c.args, envOf(c.env), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if !c.check(cfg) {
				t.Errorf("unexpected config: %+v", cfg)
			}
		})
	}
}

func TestBadValuesNameSettingAndSource(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"env not an int", map[string]string{"VIGIA_KAFKA_PARTITIONS": "many"}, nil,
			[]string{"kafka.partitions", "VIGIA_KAFKA_PARTITIONS", "not an integer", `"many"`}},
		{"env bad duration", map[string]string{"VIGIA_KAFKA_PUBLISH_TIMEOUT": "10"}, nil,
			[]string{"kafka.publish_timeout", "VIGIA_KAFKA_PUBLISH_TIMEOUT", "not a duration", `"10"`}},
		{"env bad bool", map[string]string{"VIGIA_KAFKA_RAW_ENABLED": "yes"}, nil,
			[]string{"kafka.raw_enabled", "VIGIA_KAFKA_RAW_ENABLED", "not a boolean"}},
		{"flag not an int", nil, []string{"--http.max_body_bytes", "8MB"},
			[]string{"http.max_body_bytes", "flag --http.max_body_bytes", "not an integer"}},
		{"flag bad duration", nil, []string{"--http.read_timeout=forever"},
			[]string{"http.read_timeout", "flag --http.read_timeout", "not a duration"}},
		{"several at once", map[string]string{"VIGIA_KAFKA_PARTITIONS": "x", "VIGIA_KAFKA_EMBEDDED_PORT": "y"},
			[]string{"--kafka.batch_timeout=z"},
			[]string{"VIGIA_KAFKA_PARTITIONS", "VIGIA_KAFKA_EMBEDDED_PORT", "flag --kafka.batch_timeout"}},
		{"unknown flag", nil, []string{"--kafka.partition=3"}, []string{"kafka.partition"}},
		{"positional argument", nil, []string{"--kafka.partitions=3", "extra"}, []string{"unexpected arguments", "extra"}},
		{"validation after loading", map[string]string{"VIGIA_KAFKA_PARTITIONS": "0"}, nil,
			[]string{"kafka.partitions", "at least 1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load("vigia", c.args, envOf(c.env), io.Discard)
			wantAll(t, err, c.want...)
		})
	}
}

func TestHelp(t *testing.T) {
	var out strings.Builder
	_, err := Load("vigia", []string{"-h"}, noEnv, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
	for _, s := range []string{"-kafka.partitions", "VIGIA_KAFKA_PARTITIONS", "-config.file", "VIGIA_CONFIG_FILE",
		"-meta.app_secrets", "-kafka.embedded.port", "VIGIA_KAFKA_EMBEDDED_PORT"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("usage does not mention %q", s)
		}
	}
	if strings.Contains(out.String(), "phone_numbers") {
		t.Error("usage offers meta.phone_numbers, which is YAML-only")
	}
}

func TestValidateReportsEverything(t *testing.T) {
	c := validDefault()
	c.Privacy.PseudonymKey = "tiny!"
	c.Kafka.Partitions = 0
	c.HTTP.Listen = "localhost" // no port
	c.HTTP.WriteTimeout = 5 * time.Second
	c.Kafka.PublishTimeout = 5 * time.Second
	c.Kafka.Compression = "brotli"
	c.Meta.AppSecrets = nil
	err := c.Validate()
	wantAll(t, err,
		"privacy.pseudonym_key: must be at least 32 bytes", "got 5",
		"kafka.partitions: must be at least 1, got 0",
		`http.listen: not host:port: "localhost"`,
		"kafka.publish_timeout: must be shorter than http.write_timeout (5s)",
		`kafka.compression: must be none, gzip, snappy, lz4 or zstd, not "brotli"`,
		"meta.app_secrets: at least one app secret is required",
	)
	if n := len(strings.Split(err.Error(), "\n")); n != 6 {
		t.Errorf("got %d problems, want 6:\n%v", n, err)
	}
	// errors.Join: each problem is a separate wrapped error.
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 6 {
		t.Errorf("error is not a join of 6 errors: %#v", err)
	}
	// The secret itself is never echoed.
	if strings.Contains(err.Error(), "tiny!") {
		t.Errorf("error echoes the pseudonym key: %v", err)
	}
}

func TestValidateEachSetting(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(c *Config)
		want   string // "" means valid
	}{
		{"valid", func(c *Config) {}, ""},
		{"log level", func(c *Config) { c.Log.Level = "trace" }, `log.level: must be debug, info, warn or error, not "trace"`},
		{"log level empty", func(c *Config) { c.Log.Level = "" }, "log.level"},
		{"listen port only", func(c *Config) { c.HTTP.Listen = ":8080" }, ""},
		{"listen ipv6", func(c *Config) { c.HTTP.Listen = "[::1]:8080" }, ""},
		{"listen empty", func(c *Config) { c.HTTP.Listen = "" }, "http.listen"},
		{"read timeout zero", func(c *Config) { c.HTTP.ReadTimeout = 0 }, "http.read_timeout: must be positive"},
		{"write timeout negative", func(c *Config) { c.HTTP.WriteTimeout = -time.Second }, "http.write_timeout: must be positive"},
		{"body too small", func(c *Config) { c.HTTP.MaxBodyBytes = 1 << 20 }, "http.max_body_bytes: must be at least 4194304"},
		{"body minimum", func(c *Config) { c.HTTP.MaxBodyBytes = 4 << 20 }, ""},
		{"broker no port", func(c *Config) { c.Kafka.Brokers = []string{"k1:9092", "k2"} }, `kafka.brokers: not host:port: "k2"`},
		{"brokers make embedded settings irrelevant", func(c *Config) {
			c.Kafka.Brokers = []string{"k1:9092"}
			c.Kafka.Embedded = Embedded{}
		}, ""},
		{"embedded data dir", func(c *Config) { c.Kafka.Embedded.DataDir = "" }, "kafka.embedded.data_dir: required"},
		{"embedded port zero means any free port", func(c *Config) { c.Kafka.Embedded.Port = 0 }, ""},
		{"embedded port negative", func(c *Config) { c.Kafka.Embedded.Port = -1 }, "kafka.embedded.port: must be a port number (0: any free port), got -1"},
		{"embedded port max", func(c *Config) { c.Kafka.Embedded.Port = 65535 }, ""},
		{"embedded port too big", func(c *Config) { c.Kafka.Embedded.Port = 70000 }, "kafka.embedded.port"},
		{"events topic empty", func(c *Config) { c.Kafka.EventsTopic = "" }, "kafka.events_topic: required"},
		{"raw topic empty", func(c *Config) { c.Kafka.RawTopic = "" }, "kafka.raw_topic: required"},
		{"same topics", func(c *Config) { c.Kafka.DLQTopic = c.Kafka.EventsTopic }, `same topic "vigia.events"`},
		{"replication zero", func(c *Config) { c.Kafka.ReplicationFactor = 0 }, "kafka.replication_factor: must be at least 1"},
		{"partitions negative", func(c *Config) { c.Kafka.Partitions = -1 }, "kafka.partitions: must be at least 1, got -1"},
		{"publish timeout zero", func(c *Config) { c.Kafka.PublishTimeout = 0 }, "kafka.publish_timeout: must be positive"},
		{"publish timeout equals write", func(c *Config) { c.Kafka.PublishTimeout = c.HTTP.WriteTimeout }, "kafka.publish_timeout: must be shorter than http.write_timeout"},
		{"publish timeout just shorter", func(c *Config) { c.Kafka.PublishTimeout = c.HTTP.WriteTimeout - time.Millisecond }, ""},
		{"batch timeout zero", func(c *Config) { c.Kafka.BatchTimeout = 0 }, "kafka.batch_timeout: must be between 1ns and 1s"},
		{"batch timeout too long", func(c *Config) { c.Kafka.BatchTimeout = 2 * time.Second }, "kafka.batch_timeout"},
		{"batch timeout 1s", func(c *Config) { c.Kafka.BatchTimeout = time.Second }, ""},
		{"compression none", func(c *Config) { c.Kafka.Compression = "none" }, ""},
		{"compression upper", func(c *Config) { c.Kafka.Compression = "LZ4" }, "kafka.compression"},
		{"events retention", func(c *Config) { c.Kafka.EventsRetention = 0 }, "kafka.events_retention: must be positive"},
		{"raw retention", func(c *Config) { c.Kafka.RawRetention = -1 }, "kafka.raw_retention: must be positive"},
		{"dlq retention", func(c *Config) { c.Kafka.DLQRetention = 0 }, "kafka.dlq_retention: must be positive"},
		{"app secret blank entry", func(c *Config) { c.Meta.AppSecrets = []string{"s", "  "} }, "meta.app_secrets: entry 1 is empty"},
		{"verify token", func(c *Config) { c.Meta.VerifyToken = "" }, "meta.verify_token: required"},
		{"phone number without id", func(c *Config) {
			c.Meta.PhoneNumbers = []PhoneNumber{{ID: "1", Display: "+1 555"}, {Display: "+1 555"}}
		}, "meta.phone_numbers[1]: needs id and display"},
		{"phone number display without digits", func(c *Config) { c.Meta.PhoneNumbers = []PhoneNumber{{ID: "1", Display: "n/a"}} }, "meta.phone_numbers[0]"},
		{"max learned negative", func(c *Config) { c.Meta.MaxLearnedNumbers = -1 }, "meta.max_learned_numbers: must not be negative"},
		{"max learned zero", func(c *Config) { c.Meta.MaxLearnedNumbers = 0 }, ""},
		{"pseudonym key 31 bytes", func(c *Config) { c.Privacy.PseudonymKey = goodKey[:31] }, "privacy.pseudonym_key: must be at least 32 bytes"},
		{"twilio url relative", func(c *Config) { c.Twilio.PublicBaseURL = "vigia.example.com" }, "twilio.public_base_url: must be scheme://host"},
		{"twilio url ok", func(c *Config) { c.Twilio.PublicBaseURL = "https://vigia.example.com" }, ""},
		{"sendgrid skew with keys", func(c *Config) { c.SendGrid.PublicKeys = []string{"k"}; c.SendGrid.MaxSkew = 0 }, "sendgrid.max_skew: must be positive"},
		{"sendgrid skew without keys", func(c *Config) { c.SendGrid.MaxSkew = 0 }, ""},
		{"notifier log topic same as alerts", func(c *Config) { c.Notifier.LogTopic = c.Evaluator.AlertsTopic }, `notifier.log_topic: same topic "vigia.alerts" as evaluator.alerts_topic`},
		{"notifier listen", func(c *Config) { c.Notifier.Listen = "8082" }, "notifier.listen: not host:port"},
		{"notifier queue", func(c *Config) { c.Notifier.QueueCapacity = 0 }, "notifier.queue_capacity: must be at least 1, got 0"},
		{"notifier resend", func(c *Config) { c.Notifier.Alertmanager.ResendInterval = 0 }, "notifier.alertmanager.resend_interval: must be positive"},
		{"alertmanager url", func(c *Config) { c.Notifier.Alertmanager.URLs = []string{"http://am:9093", "am:9093"} }, `notifier.alertmanager.urls: must be an http or https URL, got "am:9093"`},
		{"slack token and webhook", func(c *Config) {
			c.Notifier.Slack.Token, c.Notifier.Slack.WebhookURL = "xoxb-1", "https://hooks.example.com/T/B/X"
		}, "notifier.slack.webhook_url: set either notifier.slack.token (bot) or notifier.slack.webhook_url, not both"},
		{"slack token without channel", func(c *Config) { c.Notifier.Slack.Token = "xoxb-1" }, "notifier.slack.channel: required with a bot token"},
		{"slack token with routes only", func(c *Config) {
			c.Notifier.Slack.Token = "xoxb-1"
			c.Notifier.Slack.Routes = []SlackRoute{{Match: map[string]string{"severity": "critical"}, Channel: "#c"}}
		}, ""},
		{"slack route without match", func(c *Config) {
			c.Notifier.Slack.Token, c.Notifier.Slack.Channel = "xoxb-1", "#a"
			c.Notifier.Slack.Routes = []SlackRoute{{Channel: "#c"}}
		}, "notifier.slack.routes[0]: needs match (labels) and channel"},
		{"slack webhook with channel", func(c *Config) {
			c.Notifier.Slack.WebhookURL, c.Notifier.Slack.Channel = "https://hooks.example.com/T/B/X", "#a"
		}, "notifier.slack.channel: an incoming webhook posts to its own channel"},
		{"slack webhook ok", func(c *Config) { c.Notifier.Slack.WebhookURL = "https://hooks.example.com/T/B/X" }, ""},
		{"slack webhook not a url", func(c *Config) { c.Notifier.Slack.WebhookURL = "hooks" }, "notifier.slack.webhook_url: must be an http or https URL"},
		{"control routes topic same as actions", func(c *Config) { c.Control.RoutesTopic = c.Kafka.ActionsTopic }, `control.routes_topic: same topic "vigia.actions" as kafka.actions_topic`},
		{"control replicas", func(c *Config) { c.Control.Replicas = 0 }, "control.replicas: must be at least 1, got 0"},
		{"control routes file", func(c *Config) { c.Control.RoutesFile = "" }, "control.routes_file: required"},
		{"control token hash", func(c *Config) {
			c.Control.Tokens = []ControlToken{{Name: "ops", SHA256: "secret-in-clear", Scopes: []string{"operate"}}}
		}, "control.tokens[0].sha256: must be the 64 hex digits"},
		{"control token scope", func(c *Config) {
			c.Control.Tokens = []ControlToken{{Name: "ops", SHA256: strings.Repeat("ab", 32), Scopes: []string{"write"}}}
		}, `control.tokens[0].scopes: unknown scope "write"`},
		{"control token duplicate", func(c *Config) {
			tok := ControlToken{Name: "ops", SHA256: strings.Repeat("ab", 32), Scopes: []string{"read"}}
			c.Control.Tokens = []ControlToken{tok, tok}
		}, `control.tokens[1]: needs a unique name, got "ops"`},
		{"control subscriber", func(c *Config) {
			c.Control.Subscribers = []ControlSubscriber{{Name: "crm", URL: "crm.example.com"}}
		}, "control.subscribers[0].url: must be an http or https URL"},
		{"control subscriber secret", func(c *Config) {
			c.Control.Subscribers = []ControlSubscriber{{Name: "crm", URL: "https://crm.example.com/hook"}}
		}, "control.subscribers[0].secrets: at least one signing secret"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := validDefault()
			c.mutate(&cfg)
			err := cfg.Validate()
			if c.want == "" {
				if err != nil {
					t.Errorf("Validate: %v, want nil", err)
				}
				return
			}
			wantAll(t, err, c.want)
		})
	}
}

func TestDescribe(t *testing.T) {
	cfg, err := Load("vigia", []string{"--config.file", fixture("full.yaml")}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	rows := Describe(&cfg)
	byKey := map[string][3]string{}
	for _, r := range rows {
		if _, dup := byKey[r[0]]; dup {
			t.Errorf("key %s described twice", r[0])
		}
		byKey[r[0]] = r
		if want := "VIGIA_" + strings.ToUpper(strings.ReplaceAll(r[0], ".", "_")); r[1] != want {
			t.Errorf("%s: env %s, want %s", r[0], r[1], want)
		}
	}
	want := map[string]string{
		"meta.verify_token":          "<secret>",
		"meta.app_secrets":           "<secret>",
		"privacy.pseudonym_key":      "<secret>",
		"twilio.auth_tokens":         "<secret>",
		"sendgrid.public_keys":       "<secret>",
		"notifier.slack.token":       "<secret>",
		"clickhouse.password":        "<secret>",
		"kafka.partitions":           "12",
		"kafka.brokers":              "[kafka-1:9092 kafka-2:9092]",
		"kafka.publish_timeout":      "5s",
		"kafka.embedded.port":        "29192",
		"kafka.raw_enabled":          "true",
		"http.max_body_bytes":        "16777216",
		"log.level":                  "debug",
		"twilio.public_base_url":     "https://vigia.example.com",
		"optout.keywords":            "[parar stop]",
		"meta.max_learned_numbers":   "500",
		"kafka.embedded.sync_writes": "false",
	}
	for k, v := range want {
		r, ok := byKey[k]
		if !ok {
			t.Errorf("%s not described", k)
			continue
		}
		if r[2] != v {
			t.Errorf("%s = %q, want %q", k, r[2], v)
		}
	}
	if _, ok := byKey["meta.phone_numbers"]; ok {
		t.Error("meta.phone_numbers (YAML-only) is described as a setting")
	}
	if len(rows) != 95 {
		t.Errorf("described %d settings, want 95", len(rows))
	}
	// No secret text leaks in any value.
	for _, r := range rows {
		for _, s := range []string{"file-verify-token", "file-secret", "file-pseudonym-key", "twilio-token", "MFkwEwYH", "file-slack-token", "file-clickhouse-password"} {
			if strings.Contains(r[2], s) {
				t.Errorf("%s value %q leaks a secret", r[0], r[2])
			}
		}
	}
	// Unset secrets are shown as empty, not as <secret>.
	def := Default()
	for _, r := range Describe(&def) {
		if r[2] == "<secret>" {
			t.Errorf("unset %s shown as <secret>", r[0])
		}
	}
}

func TestBareBooleanFlag(t *testing.T) {
	cfg, err := Load("vigia", []string{"--kafka.raw_enabled", "--kafka.partitions=3"}, envOf(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Kafka.RawEnabled || cfg.Kafka.Partitions != 3 {
		t.Errorf("raw_enabled %v partitions %d", cfg.Kafka.RawEnabled, cfg.Kafka.Partitions)
	}
}

// TestEverySettingIsDocumented keeps docs/configuration.md in step with the
// Config struct.
func TestEverySettingIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Default()
	for _, s := range settings(&cfg) {
		if !strings.Contains(string(doc), "| `"+s.Key+"` | `"+s.Env+"` |") {
			t.Errorf("docs/configuration.md has no row for %s (%s)", s.Key, s.Env)
		}
	}
}

// TestValidateForService: each service checks only what it needs, so the
// evaluator starts without the webhook secrets and ingest ignores the
// evaluator section.
func TestValidateForService(t *testing.T) {
	c := Default() // no webhook secrets, no pseudonym key
	if err := c.ValidateFor("evaluator"); err != nil {
		t.Errorf("evaluator: %v", err)
	}
	if err := c.ValidateFor("ingest"); err == nil || !strings.Contains(err.Error(), "meta.app_secrets") {
		t.Errorf("ingest: %v, want the missing app secrets", err)
	}
	c = validDefault()
	c.Evaluator.GroupID = ""
	c.Evaluator.AlertsTopic = c.Kafka.EventsTopic
	if err := c.ValidateFor("ingest"); err != nil {
		t.Errorf("ingest checked the evaluator section: %v", err)
	}
	wantAll(t, c.ValidateFor("evaluator"), "evaluator.group_id: required", "evaluator.alerts_topic: same topic")

	// The notifier needs the alerts topic and a receiver, not the
	// evaluator's own settings nor the webhook secrets.
	c = Default()
	c.Evaluator.GroupID = ""
	wantAll(t, c.ValidateFor("notifier"), "notifier: no receiver")
	c.Notifier.Alertmanager.URLs = []string{"http://127.0.0.1:9093"}
	if err := c.ValidateFor("notifier"); err != nil {
		t.Errorf("notifier: %v", err)
	}
	c.Evaluator.AlertsTopic = ""
	wantAll(t, c.ValidateFor("notifier"), "evaluator.alerts_topic: required")
	if err := c.ValidateFor("ingest"); err == nil || strings.Contains(err.Error(), "notifier") || strings.Contains(err.Error(), "alerts_topic") {
		t.Errorf("ingest checked the notifier: %v", err)
	}
}

func TestLoadCommandExitCodes(t *testing.T) {
	var out strings.Builder
	if _, code, ok := LoadCommand("ingest", []string{"-h"}, &out); ok || code != 0 {
		t.Errorf("-h: ok %v code %d, want false 0", ok, code)
	}
	out.Reset()
	t.Setenv("VIGIA_META_APP_SECRETS", "")
	if _, code, ok := LoadCommand("ingest", []string{"--kafka.partitions=0"}, &out); ok || code != 2 ||
		!strings.Contains(out.String(), "ingest: invalid configuration:\n  ") || !strings.Contains(out.String(), "kafka.partitions") {
		t.Errorf("bad configuration: ok %v code %d, output %q", ok, code, out.String())
	}
	if _, code, ok := LoadCommand("evaluator", nil, &out); !ok || code != 0 {
		t.Errorf("evaluator defaults: ok %v code %d, output %q", ok, code, out.String())
	}
}

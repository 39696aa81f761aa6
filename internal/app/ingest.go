// Package app wires Vigia's services from their configuration, so that the
// thin mains under cmd/ and the tests start exactly the same thing.
package app

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"vigia/internal/config"
	"vigia/internal/embedded"
	"vigia/internal/fallback/sendgrid"
	"vigia/internal/fallback/twilio"
	"vigia/internal/ingest"
	"vigia/internal/kafkaio"
	"vigia/internal/meta"
	"vigia/internal/optout"
	"vigia/internal/pseudo"
)

// ReadyInterval is how often readiness re-checks Kafka.
var ReadyInterval = 2 * time.Second

// Ingest is the ingest service: the webhook HTTP server, its Kafka producer,
// and, when no brokers are configured, the embedded broker.
type Ingest struct {
	cfg      config.Config
	log      *slog.Logger
	reg      *prometheus.Registry
	broker   *embedded.Broker
	brokers  []string
	writer   *kafkaio.Producer
	handler  *ingest.Server
	server   *http.Server
	listener net.Listener
	ready    atomic.Bool
	kafkaUp  prometheus.Gauge
	topicsOK atomic.Bool
	admin    *kafkaio.Admin
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// NewIngest builds the service from a validated configuration. Nothing
// listens or connects until Start.
func NewIngest(cfg config.Config, log *slog.Logger) (*Ingest, error) {
	p, err := pseudo.New([]byte(cfg.Privacy.PseudonymKey))
	if err != nil {
		return nil, fmt.Errorf("privacy.pseudonym_key: %w", err)
	}
	reg := newRegistry()

	var numbers []meta.PhoneNumber
	for _, n := range cfg.Meta.PhoneNumbers {
		numbers = append(numbers, meta.PhoneNumber{ID: n.ID, Display: n.Display, WABAID: n.WABAID})
	}
	var kw, exact, buttons []string
	if len(cfg.OptOut.Keywords) > 0 {
		kw = cfg.OptOut.Keywords
	}
	if len(cfg.OptOut.ExactKeywords) > 0 {
		exact = cfg.OptOut.ExactKeywords
	}
	if len(cfg.OptOut.ButtonPayloads) > 0 {
		buttons = cfg.OptOut.ButtonPayloads
	}
	a := &Ingest{cfg: cfg, log: log, reg: reg, brokers: cfg.Kafka.Brokers}
	a.kafkaUp = promauto.With(reg).NewGauge(prometheus.GaugeOpts{
		Name: "vigia_kafka_up", Help: "1 when the last check found the brokers reachable and the topics present.",
	})

	opts := ingest.Options{
		Logger:     log,
		Registerer: reg,
		Topics: ingest.Topics{Events: cfg.Kafka.EventsTopic, Raw: cfg.Kafka.RawTopic, DLQ: cfg.Kafka.DLQTopic,
			RawEnabled: cfg.Kafka.RawEnabled},
		Meta: ingest.MetaOptions{
			VerifyToken: cfg.Meta.VerifyToken,
			AppSecrets:  bytesList(cfg.Meta.AppSecrets),
			Normalizer:  meta.NewNormalizer(p, meta.NewDirectory(numbers, cfg.Meta.MaxLearnedNumbers), optout.NewWithExact(kw, exact, buttons)),
		},
		MaxBodyBytes:   cfg.HTTP.MaxBodyBytes,
		PublishTimeout: cfg.Kafka.PublishTimeout,
	}
	if len(cfg.Twilio.AuthTokens) > 0 {
		opts.Twilio = &ingest.TwilioOptions{
			AuthTokens:    bytesList(cfg.Twilio.AuthTokens),
			PublicBaseURL: strings.TrimRight(cfg.Twilio.PublicBaseURL, "/"),
			Normalizer:    &twilio.Normalizer{Pseudo: p, WABAID: cfg.Twilio.WABAID},
		}
	}
	if len(cfg.SendGrid.PublicKeys) > 0 {
		var keys []*ecdsa.PublicKey
		for i, k := range cfg.SendGrid.PublicKeys {
			pk, err := sendgrid.ParsePublicKey(k)
			if err != nil {
				return nil, fmt.Errorf("sendgrid.public_keys[%d]: %w", i, err)
			}
			keys = append(keys, pk)
		}
		opts.SendGrid = &ingest.SendGridOptions{Keys: keys, MaxSkew: cfg.SendGrid.MaxSkew,
			Normalizer: &sendgrid.Normalizer{Pseudo: p, WABAID: cfg.SendGrid.WABAID}}
	}
	a.handler = ingest.New(opts)
	return a, nil
}

func bytesList(ss []string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

// Registry exposes the service's metrics registry (for tests).
func (a *Ingest) Registry() *prometheus.Registry { return a.reg }

// Brokers returns the bootstrap addresses in use (the embedded broker's
// address when embedded).
func (a *Ingest) Brokers() []string { return a.brokers }

// Addr returns the address the HTTP server listens on, after Start.
func (a *Ingest) Addr() string { return a.listener.Addr().String() }

// Start starts the embedded broker when configured, the Kafka producer, the
// readiness loop and the HTTP server. Kafka need not be reachable: the
// server answers 503 (and /-/ready says so) until it is.
func (a *Ingest) Start(ctx context.Context) error {
	k := a.cfg.Kafka
	if len(a.brokers) == 0 {
		b, err := embedded.Start(embedded.Options{DataDir: k.Embedded.DataDir, Port: k.Embedded.Port, SyncWrites: k.Embedded.SyncWrites})
		if err != nil {
			return err
		}
		a.broker = b
		a.brokers = b.Addrs()
		a.log.Info("embedded kafka broker started", "addrs", a.brokers, "data_dir", k.Embedded.DataDir)
	}
	w, err := kafkaio.NewWriter(kafkaio.WriterOptions{Brokers: a.brokers, BatchTimeout: k.BatchTimeout,
		Compression: k.Compression, MaxRecordBytes: a.cfg.HTTP.MaxBodyBytes * 2})
	if err != nil {
		a.closeBroker()
		return err
	}
	a.writer = w
	a.handler.SetPublisher(w)
	a.admin = kafkaio.NewAdmin(a.brokers)

	ln, err := net.Listen("tcp", a.cfg.HTTP.Listen)
	if err != nil {
		a.closeBroker()
		return fmt.Errorf("http.listen: %w", err)
	}
	a.listener = ln
	a.server = &http.Server{
		Handler:           a.routes(),
		ReadTimeout:       a.cfg.HTTP.ReadTimeout,
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      a.cfg.HTTP.WriteTimeout,
		IdleTimeout:       a.cfg.HTTP.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	ctx, a.cancel = context.WithCancel(ctx)
	a.wg.Add(2)
	go func() { defer a.wg.Done(); a.readinessLoop(ctx) }()
	go func() {
		defer a.wg.Done()
		if err := a.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("http server", "err", err)
		}
	}()
	a.log.Info("ingest listening", "addr", ln.Addr().String(), "brokers", a.brokers)
	return nil
}

func (a *Ingest) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/webhooks/", a.handler)
	opsRoutes(mux, a.reg, &a.ready, "kafka not reachable")
	return mux
}

// readinessLoop creates the topics once Kafka answers, then keeps checking
// that the brokers are reachable and the topics exist.
func (a *Ingest) readinessLoop(ctx context.Context) {
	k := a.cfg.Kafka
	topics := []string{k.EventsTopic, k.DLQTopic}
	if k.RawEnabled {
		topics = append(topics, k.RawTopic)
	}
	var lastErr string
	t := time.NewTicker(ReadyInterval)
	defer t.Stop()
	for {
		err := a.checkKafka(ctx, topics)
		a.ready.Store(err == nil)
		if err == nil {
			a.kafkaUp.Set(1)
			if lastErr != "" {
				a.log.Info("kafka reachable again")
			}
			lastErr = ""
		} else {
			a.kafkaUp.Set(0)
			if err.Error() != lastErr && ctx.Err() == nil {
				a.log.Warn("kafka not ready", "err", err)
			}
			lastErr = err.Error()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *Ingest) checkKafka(ctx context.Context, topics []string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	k := a.cfg.Kafka
	if k.CreateTopics && !a.topicsOK.Load() {
		maxBytes := a.cfg.HTTP.MaxBodyBytes + 1<<20
		err := a.admin.EnsureTopics(ctx, []kafkaio.TopicSpec{
			{Name: k.EventsTopic, Partitions: k.Partitions, ReplicationFactor: k.ReplicationFactor, Retention: k.EventsRetention},
			{Name: k.DLQTopic, Partitions: k.Partitions, ReplicationFactor: k.ReplicationFactor, Retention: k.DLQRetention, MaxMessageBytes: maxBytes},
			{Name: k.RawTopic, Partitions: k.Partitions, ReplicationFactor: k.ReplicationFactor, Retention: k.RawRetention, MaxMessageBytes: maxBytes},
		})
		if err != nil {
			return err
		}
		a.topicsOK.Store(true)
	}
	return a.admin.Ping(ctx, topics...)
}

// Stop shuts the HTTP server down gracefully (in-flight requests finish and
// are published), then closes the producer and the embedded broker.
func (a *Ingest) Stop(ctx context.Context) error {
	err := a.server.Shutdown(ctx)
	a.cancel()
	a.wg.Wait()
	if werr := a.writer.Close(); werr != nil && err == nil {
		err = werr
	}
	a.admin.Close()
	a.closeBroker()
	return err
}

func (a *Ingest) closeBroker() {
	if a.broker != nil {
		a.broker.Close()
		a.broker = nil
	}
}

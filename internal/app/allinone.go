package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"vigia/internal/config"
	"vigia/internal/route"
	"vigia/internal/rules"
	"vigia/internal/store"
)

// IngestReadyTimeout bounds how long the all-in-one waits for ingest's
// Kafka (the embedded broker and its topics) before starting the other
// services: a consumer group that joins before its topic exists never gets
// partitions.
var IngestReadyTimeout = time.Minute

// Vigia is the all-in-one service: ingest (with the embedded broker when
// kafka.brokers is empty), the evaluator, the ClickHouse sink, the
// notifier (when a receiver is configured) and the control API in one
// process, on one configuration. They are the same services the
// distributed mode runs, talking through Kafka and the store exactly as
// they do there; only the process is shared.
//
// Start starts ingest first (it owns the embedded broker), waits for its
// topics, then the others; Stop stops them in reverse order and closes the
// store last.
type Vigia struct {
	cfg config.Config
	log *slog.Logger

	ingest    *Ingest
	evaluator *Evaluator
	sink      *Sink
	notifier  *Notifier
	control   *Control
	store     *store.Store

	started []namedService // in start order
}

type namedService struct {
	name string
	svc  Service
}

// NewVigia checks what can be checked before anything starts (the rules,
// the routes file, the ingest settings) and builds ingest. The other
// services are built in Start, once the broker's address is known (an
// embedded broker on port 0 picks a free one).
func NewVigia(cfg config.Config, log *slog.Logger) (*Vigia, error) {
	if _, err := rules.Load(cfg.Evaluator.Rules...); err != nil {
		return nil, err
	}
	if _, err := route.LoadFile(cfg.Control.RoutesFile); err != nil {
		return nil, fmt.Errorf("control.routes_file: %w", err)
	}
	ing, err := NewIngest(cfg, log.With("component", "ingest"))
	if err != nil {
		return nil, err
	}
	return &Vigia{cfg: cfg, log: log, ingest: ing}, nil
}

// HasReceivers reports whether the configuration names a notification
// receiver; without one the all-in-one runs no notifier.
func HasReceivers(cfg config.Config) bool {
	n := cfg.Notifier
	return len(n.Alertmanager.URLs) > 0 || n.Slack.Token != "" || n.Slack.WebhookURL != ""
}

// Start starts every service; on failure it stops those already started
// and returns the error.
func (v *Vigia) Start(ctx context.Context) error {
	if err := v.start(ctx); err != nil {
		sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
		defer cancel()
		_ = v.Stop(sctx)
		return err
	}
	v.log.Info("vigia started", "ingest", v.ingest.Addr(), "evaluator", v.evaluator.Addr(), "sink", v.sink.Addr(),
		"control", v.control.Addr(), "notifier", v.NotifierAddr(), "brokers", v.ingest.Brokers())
	return nil
}

func (v *Vigia) start(ctx context.Context) error {
	if err := v.ingest.Start(ctx); err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	v.started = append(v.started, namedService{"ingest", v.ingest})
	if err := v.waitIngest(ctx); err != nil {
		return err
	}
	// The others connect to the broker ingest uses: the embedded one's
	// actual address, or the configured cluster.
	cfg := v.cfg
	cfg.Kafka.Brokers = v.ingest.Brokers()

	ev, err := NewEvaluator(cfg, v.log.With("component", "evaluator"))
	if err != nil {
		return fmt.Errorf("evaluator: %w", err)
	}
	if err := v.startOne(ctx, "evaluator", ev); err != nil {
		return err
	}
	v.evaluator = ev

	st, err := OpenStore(ctx, cfg, v.log.With("component", "sink"))
	if err != nil {
		return fmt.Errorf("sink: clickhouse store: %w", err)
	}
	v.store = st
	sk := NewSink(cfg, v.log.With("component", "sink"), st, st)
	if err := v.startOne(ctx, "sink", sk); err != nil {
		return err
	}
	v.sink = sk

	if HasReceivers(cfg) {
		n, err := NewNotifier(cfg, v.log.With("component", "notifier"))
		if err != nil {
			return fmt.Errorf("notifier: %w", err)
		}
		if err := v.startOne(ctx, "notifier", n); err != nil {
			return err
		}
		v.notifier = n
	} else {
		v.log.Info("notifier not started: no receiver configured (notifier.alertmanager.urls, notifier.slack.token or notifier.slack.webhook_url); alerts still reach control, ClickHouse and the evaluator's alerts API")
	}

	c, err := NewControl(cfg, v.log.With("component", "control"))
	if err != nil {
		return fmt.Errorf("control: %w", err)
	}
	if err := v.startOne(ctx, "control", c); err != nil {
		return err
	}
	v.control = c
	return nil
}

func (v *Vigia) startOne(ctx context.Context, name string, svc Service) error {
	if err := svc.Start(ctx); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	v.started = append(v.started, namedService{name, svc})
	return nil
}

// waitIngest waits until ingest reaches Kafka and its topics exist.
func (v *Vigia) waitIngest(ctx context.Context) error {
	deadline := time.Now().Add(IngestReadyTimeout)
	for !v.ingest.ready.Load() {
		if time.Now().After(deadline) {
			return fmt.Errorf("ingest: kafka not ready within %s (brokers %v)", IngestReadyTimeout, v.ingest.Brokers())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// Stop stops the services in reverse start order, then closes the store.
// Every service is asked to stop even when one fails; the errors are
// joined.
func (v *Vigia) Stop(ctx context.Context) error {
	var errs []error
	for i := len(v.started) - 1; i >= 0; i-- {
		s := v.started[i]
		if err := s.svc.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", s.name, err))
		}
	}
	v.started = nil
	if v.store != nil {
		if err := v.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close clickhouse store: %w", err))
		}
		v.store = nil
	}
	return errors.Join(errs...)
}

// Ingest, Evaluator, Sink, Notifier and Control return the running
// services (after Start; Notifier is nil when no receiver is configured).
func (v *Vigia) Ingest() *Ingest       { return v.ingest }
func (v *Vigia) Evaluator() *Evaluator { return v.evaluator }
func (v *Vigia) Sink() *Sink           { return v.sink }
func (v *Vigia) Notifier() *Notifier   { return v.notifier }
func (v *Vigia) Control() *Control     { return v.control }

// NotifierAddr is the notifier's HTTP address, or "" when none runs.
func (v *Vigia) NotifierAddr() string {
	if v.notifier == nil {
		return ""
	}
	return v.notifier.Addr()
}

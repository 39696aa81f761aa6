// Command ingest receives WhatsApp Cloud API webhooks and the status
// callbacks of the SMS and e-mail fallback channels, verifies their
// signatures, and publishes normalized events to Kafka.
//
// Configuration comes from a YAML file (--config.file), VIGIA_* environment
// variables and flags; run with -h for the list.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"vigia/internal/app"
	"vigia/internal/config"
	"vigia/internal/logging"
)

func main() { os.Exit(run()) }

func run() int {
	cfg, code, ok := config.LoadCommand("ingest", os.Args[1:], os.Stderr)
	if !ok {
		return code
	}
	log := logging.New(os.Stderr, cfg.Log.Level).With("component", "ingest")

	svc, err := app.NewIngest(cfg, log)
	if err != nil {
		log.Error("cannot build ingest", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := svc.Start(ctx); err != nil {
		log.Error("cannot start ingest", "err", err)
		return 1
	}
	<-ctx.Done()
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := svc.Stop(shutdownCtx); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	return 0
}

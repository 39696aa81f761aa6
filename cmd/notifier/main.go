// Command notifier delivers the evaluator's alerts to people: it reads the
// alerts topic as a consumer group and sends firing and resolved alerts to
// Alertmanager (API v2) and Slack, once per receiver and state.
//
//	notifier [flags]
//
// It reads the same configuration as the other services (YAML file,
// VIGIA_* variables, flags; -h lists them); the notifier.* settings choose
// the receivers.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"vigia/internal/app"
	"vigia/internal/config"
	"vigia/internal/logging"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	cfg, code, ok := config.LoadCommand("notifier", args, os.Stderr)
	if !ok {
		return code
	}
	log := logging.New(os.Stderr, cfg.Log.Level).With("component", "notifier")
	svc, err := app.NewNotifier(cfg, log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "notifier: %s\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := svc.Start(ctx); err != nil {
		log.Error("cannot start notifier", "err", err)
		return 1
	}
	<-ctx.Done()
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := svc.Stop(sctx); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	return 0
}

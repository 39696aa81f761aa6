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
	"fmt"
	"os"

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
	return app.Run("notifier", svc, log, nil)
}

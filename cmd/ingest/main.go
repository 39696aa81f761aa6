// Command ingest receives WhatsApp Cloud API webhooks and the status
// callbacks of the SMS and e-mail fallback channels, verifies their
// signatures, and publishes normalized events to Kafka.
//
// Configuration comes from a YAML file (--config.file), VIGIA_* environment
// variables and flags; run with -h for the list.
package main

import (
	"os"

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
	return app.Run("ingest", svc, log, nil)
}

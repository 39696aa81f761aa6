// Command evaluator turns the event stream into alerts defined in CEL rules
// files.
//
//	evaluator [flags]                 run the service (consumer group, windows, rules, alerts topic)
//	evaluator check <rules dir|file>  lint and type-check rules files; exit 0 or 1
//	evaluator test <tests.yaml>...    run rule unit tests; exit 0 or 1
//
// The service reads the same configuration as ingest (YAML file, VIGIA_*
// variables, flags; -h lists them). SIGHUP reloads the rules.
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
	"vigia/internal/rules"
	"vigia/internal/ruletest"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "check":
			if len(args) < 2 {
				fmt.Fprintln(os.Stderr, "usage: evaluator check <rules dir|file>...")
				return 2
			}
			return rules.Check(os.Stdout, args[1:]...)
		case "test":
			if len(args) < 2 {
				fmt.Fprintln(os.Stderr, "usage: evaluator test <tests.yaml>...")
				return 2
			}
			return ruletest.Run(os.Stdout, args[1:]...)
		case "run":
			args = args[1:]
		}
	}
	return serve(args)
}

func serve(args []string) int {
	cfg, code, ok := config.LoadCommand("evaluator", args, os.Stderr)
	if !ok {
		return code
	}
	log := logging.New(os.Stderr, cfg.Log.Level).With("component", "evaluator")
	svc, err := app.NewEvaluator(cfg, log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "evaluator: %s\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := svc.Start(ctx); err != nil {
		log.Error("cannot start evaluator", "err", err)
		return 1
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	for {
		select {
		case <-hup:
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			_ = svc.Reload(rctx) // logged and counted by the service
			cancel()
			continue
		case <-ctx.Done():
		}
		break
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := svc.Stop(sctx); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	return 0
}

// Command evaluator turns the event stream into alerts defined in CEL rules
// files.
//
//	evaluator [flags]                 run the service (consumer group, windows, rules, alerts topic)
//	evaluator check <rules dir|file>  lint and type-check rules files; exit 0 or 1
//	evaluator test <tests.yaml>...    run rule unit tests; exit 0 or 1
//	evaluator backtest --from T --to T [--rules d] [--against d] [--rule NAME]... [--json]
//	                                  replay stored history through the rules (and diff two rule sets)
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
	"vigia/internal/backtest"
	"vigia/internal/config"
	"vigia/internal/logging"
	"vigia/internal/rules"
	"vigia/internal/ruletest"
	"vigia/internal/store"
	_ "vigia/internal/store/chdb"   // embedded history for backtests (libchdb.so from CHDB_LIB_PATH, loaded on use)
	_ "vigia/internal/store/server" // a ClickHouse server
)

func main() { os.Exit(run(os.Args[1:])) }

// openSource opens the stored history that backtests replay: the
// ClickHouse store the configuration names (a server at clickhouse.addr,
// else embedded chDB in clickhouse.path, which must not be held by a
// running sink: chDB locks its data path).
var openSource backtest.OpenFunc = func(cfg config.Config) (backtest.Source, func() error, error) {
	st, err := app.OpenStore(context.Background(), cfg, logging.New(os.Stderr, "warn"))
	if err != nil {
		return nil, nil, fmt.Errorf("clickhouse store: %w", err)
	}
	return st, st.Close, nil
}

// The store counts the events of a range, so that a backtest sizes its
// dedupe and attribution memories at once.
var _ backtest.Counter = (*store.Store)(nil)

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
		case "backtest":
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return backtest.Main(ctx, args[1:], openSource, os.Stdout, os.Stderr)
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
	// SIGHUP reloads the rules; a failure is logged and counted by the
	// service, and the old rules stay.
	return app.Run("evaluator", svc, log, func(ctx context.Context) {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_ = svc.Reload(rctx)
	})
}

// Command vigia is the whole of Vigia in one binary: the all-in-one
// service (ingest with the embedded broker, evaluator, ClickHouse sink,
// notifier, control API in one process), the incident simulator, and the
// analysts' and operators' commands.
//
//	vigia [run] [flags]                  run every service in one process
//	vigia simulate [flags] <scenario>    play an incident scenario against a running Vigia
//	vigia check <rules dir|file>...      lint and type-check rules files
//	vigia test <tests.yaml>...           run rule unit tests
//	vigia backtest --from T --to T ...   replay stored history through the rules
//	vigia control-check <routes.yaml>    validate a routes file
//	vigia hash-token                     read a token on stdin, print its sha256 for control.tokens
//
// The service reads the same configuration as the separate services (YAML
// file, VIGIA_* variables, flags; `vigia run -h` lists them). SIGHUP
// reloads the rules. docs/simulator.md describes scenarios and drills.
package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"vigia/internal/app"
	"vigia/internal/backtest"
	"vigia/internal/config"
	"vigia/internal/control"
	"vigia/internal/logging"
	"vigia/internal/route"
	"vigia/internal/rules"
	"vigia/internal/ruletest"
	_ "vigia/internal/store/chdb"   // embedded ClickHouse (libchdb.so from CHDB_LIB_PATH, loaded on use)
	_ "vigia/internal/store/server" // a ClickHouse server
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

const usage = `Vigia keeps a business's WhatsApp messaging running when its numbers degrade.

usage: vigia <command> [arguments]

commands:
  run [flags]                   run ingest, evaluator, sink, notifier and control in one process
                                (the default when the first argument is a flag or absent;
                                 vigia run -h lists every setting)
  simulate [flags] <scenario>   play an incident scenario against a running Vigia and report
                                detection and switch times (vigia simulate -h)
  check <rules dir|file>...     lint and type-check rules files; exit 0 or 1
  test <tests.yaml>...          run rule unit tests; exit 0 or 1
  backtest --from T --to T ...  replay stored history through the rules (vigia backtest -h)
  control-check <routes.yaml>   validate a routes file
  hash-token                    read a token on stdin, print its sha256 for control.tokens
  help                          this text

docs: README.md, docs/simulator.md (scenarios and drills), docs/configuration.md
`

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	} else if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		cmd = "help"
	}
	switch cmd {
	case "run":
		return serve(args, stderr)
	case "simulate":
		return simulateCmd(args, stdout, stderr)
	case "check":
		if len(args) < 1 {
			fmt.Fprintln(stderr, "usage: vigia check <rules dir|file>...")
			return 2
		}
		return rules.Check(stdout, args...)
	case "test":
		if len(args) < 1 {
			fmt.Fprintln(stderr, "usage: vigia test <tests.yaml>...")
			return 2
		}
		return ruletest.Run(stdout, args...)
	case "backtest":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return backtest.Main(ctx, args, openSource(stderr), stdout, stderr)
	case "control-check":
		return controlCheck(args, stdout, stderr)
	case "hash-token":
		return hashToken(stdin, stdout, stderr)
	case "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "vigia: unknown command %q\n\n%s", cmd, usage)
	return 2
}

// openSource opens the stored history backtests replay: the store the
// configuration names. Embedded chDB must not be held by a running Vigia
// (chDB locks its data path): stop it, or backtest against a server.
func openSource(stderr io.Writer) backtest.OpenFunc {
	return func(cfg config.Config) (backtest.Source, func() error, error) {
		st, err := app.OpenStore(context.Background(), cfg, logging.New(stderr, "warn"))
		if err != nil {
			return nil, nil, fmt.Errorf("clickhouse store: %w", err)
		}
		return st, st.Close, nil
	}
}

func serve(args []string, stderr io.Writer) int {
	cfg, code, ok := config.LoadCommand("vigia", args, stderr)
	if !ok {
		return code
	}
	log := logging.New(stderr, cfg.Log.Level)
	v, err := app.NewVigia(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "vigia: %s\n", err)
		return 1
	}
	return app.Run("vigia", v, log, func(ctx context.Context) {
		if ev := v.Evaluator(); ev != nil {
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			_ = ev.Reload(rctx)
		}
	})
}

func controlCheck(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: vigia control-check <routes.yaml>")
		return 2
	}
	f, err := route.LoadFile(args[0])
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: %d use cases, %d numbers, hash %s\n", args[0], len(f.UseCases), len(f.NumberIDs()), f.Hash)
	return 0
}

func hashToken(stdin io.Reader, stdout, stderr io.Writer) int {
	line, err := bufio.NewReader(stdin).ReadString('\n')
	token := strings.TrimSpace(line)
	if err != nil && err != io.EOF || token == "" {
		fmt.Fprintln(stderr, "usage: echo -n \"$TOKEN\" | vigia hash-token")
		return 2
	}
	if len(token) < 16 {
		fmt.Fprintln(stderr, "vigia hash-token: a token needs at least 16 characters; use a long random one (openssl rand -hex 24)")
		return 1
	}
	fmt.Fprintln(stdout, control.HashToken(token))
	return 0
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"vigia/internal/app"
	"vigia/internal/config"
	"vigia/internal/logging"
	"vigia/internal/simulate"
)

const simulateUsage = `usage: vigia simulate [flags] <scenario.yaml>

Plays an incident scenario against a running Vigia: signed Meta webhooks to
ingest, every message routed by control's pick, incidents at their offsets.
Prints, per incident, the time to detect, the time to the route switch and
the messages sent on the bad route after the detection; with -json, writes
the same as JSON. Exit 0 when every expectation of the scenario was met, 1
otherwise, 2 for bad usage or a bad scenario.

With -start, runs an all-in-one Vigia in this process for the scenario
(configuration from -config.file and VIGIA_* variables), then stops it.

flags:
`

func simulateCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vigia simulate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var o simulate.Options
	fs.StringVar(&o.Ingest, "ingest", "", "base URL of ingest (default: the scenario's target.ingest)")
	fs.StringVar(&o.Control, "control", "", "base URL of the control API (default: target.control)")
	fs.StringVar(&o.Evaluator, "evaluator", "", "base URL of the evaluator, for detection times (default: target.evaluator)")
	fs.StringVar(&o.AppSecret, "app-secret", "", "Meta app secret that signs the webhooks (default: target.app_secret)")
	fs.StringVar(&o.PickToken, "pick-token", "", "control API token with scope pick (default: target.pick_token)")
	fs.StringVar(&o.ReadToken, "read-token", "", "control API token with scope read, for switch times (default: target.read_token)")
	fs.Float64Var(&o.Speed, "speed", 0, "scenario seconds per wall-clock second (default: the scenario's speed)")
	jsonOut := fs.String("json", "", "also write the report as JSON to this file ('-': to stdout instead of the text)")
	quiet := fs.Bool("quiet", false, "print no progress lines, only the report")
	start := fs.Bool("start", false, "run an all-in-one Vigia in this process for the scenario")
	configFile := fs.String("config.file", os.Getenv("VIGIA_CONFIG_FILE"), "with -start: the configuration file")
	routes := fs.String("routes", "", "with -start: the routes file (overrides control.routes_file)")
	fresh := fs.Bool("fresh", false, "with -start: a new temporary broker data dir and chDB path, removed afterwards")
	help := func(w io.Writer) {
		fmt.Fprint(w, simulateUsage)
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	// Flags may follow the scenario.
	var files []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				help(stdout)
				return 0
			}
			fmt.Fprintf(stderr, "vigia simulate: %v\n\n", err)
			help(stderr)
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(files) != 1 {
		fmt.Fprintf(stderr, "vigia simulate: want one scenario file, got %d\n\n", len(files))
		help(stderr)
		return 2
	}
	sc, err := simulate.Load(files[0])
	if err != nil {
		fmt.Fprintf(stderr, "vigia simulate: %v\n", err)
		return 2
	}
	if !*quiet {
		o.Progress = stdout
		if *jsonOut == "-" {
			o.Progress = stderr
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *start {
		cfgArgs := []string{}
		if *configFile != "" {
			cfgArgs = append(cfgArgs, "--config.file", *configFile)
		}
		if *routes != "" {
			cfgArgs = append(cfgArgs, "--control.routes_file", *routes)
		}
		v, cleanup, code := startVigia(ctx, cfgArgs, *fresh, stderr)
		if v == nil {
			return code
		}
		defer cleanup()
		// The in-process services answer on their actual addresses.
		o.Ingest = "http://" + v.Ingest().Addr()
		o.Control = "http://" + v.Control().Addr()
		o.Evaluator = "http://" + v.Evaluator().Addr()
	}

	rep, err := simulate.Run(ctx, sc, o)
	if rep == nil {
		fmt.Fprintf(stderr, "vigia simulate: %v\n", err)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "vigia simulate: stopped early: %v\n", err)
	}
	switch *jsonOut {
	case "-":
		if werr := rep.WriteJSON(stdout); werr != nil {
			fmt.Fprintf(stderr, "vigia simulate: %v\n", werr)
			return 1
		}
	case "":
		_ = rep.WriteText(stdout)
	default:
		_ = rep.WriteText(stdout)
		if werr := writeJSONFile(*jsonOut, rep); werr != nil {
			fmt.Fprintf(stderr, "vigia simulate: %v\n", werr)
			return 1
		}
	}
	if err != nil || !rep.Passed {
		return 1
	}
	return 0
}

func writeJSONFile(path string, rep *simulate.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := rep.WriteJSON(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// startVigia starts an all-in-one Vigia for `simulate -start`. It returns
// nil and the exit code when it cannot.
func startVigia(ctx context.Context, cfgArgs []string, fresh bool, stderr io.Writer) (*app.Vigia, func(), int) {
	cfg, err := config.Load("vigia", cfgArgs, os.Getenv, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "vigia simulate -start: invalid configuration:\n  %v\n", err)
		return nil, nil, 2
	}
	var tmp string
	if fresh {
		if tmp, err = os.MkdirTemp("", "vigia-simulate-"); err != nil {
			fmt.Fprintf(stderr, "vigia simulate -start: %v\n", err)
			return nil, nil, 1
		}
		cfg.Kafka.Embedded.DataDir = filepath.Join(tmp, "kafka")
		cfg.ClickHouse.Path = filepath.Join(tmp, "chdb")
	}
	removeTmp := func() {
		if tmp != "" {
			_ = os.RemoveAll(tmp)
		}
	}
	log := logging.New(stderr, cfg.Log.Level)
	v, err := app.NewVigia(cfg, log)
	if err != nil {
		removeTmp()
		fmt.Fprintf(stderr, "vigia simulate -start: %v\n", err)
		return nil, nil, 1
	}
	if err := v.Start(ctx); err != nil {
		removeTmp()
		fmt.Fprintf(stderr, "vigia simulate -start: %v\n", err)
		return nil, nil, 1
	}
	return v, func() {
		sctx, cancel := context.WithTimeout(context.Background(), app.ShutdownTimeout)
		defer cancel()
		if err := v.Stop(sctx); err != nil {
			fmt.Fprintf(stderr, "vigia simulate: stopping vigia: %v\n", err)
		}
		removeTmp()
	}, 0
}

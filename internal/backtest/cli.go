package backtest

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"vigia/internal/config"
	"vigia/internal/rules"
)

// OpenFunc opens the stored history a configuration names; close releases
// it.
type OpenFunc func(cfg config.Config) (src Source, close func() error, err error)

const usage = `usage: evaluator backtest --from TIME --to TIME [--rules DIR|FILE]... [--against DIR|FILE]...
                          [--rule NAME]... [--json] [--progress=false] [--config.file FILE]

Replays the stored events with event_time in [--from, --to) through the
rules in event time and reports every alert that would have fired or
resolved, with its values and actions. With --against, replays the same
history through a second rule set (B) and reports the differences from
the first (A). TIME is RFC 3339 (2026-01-05T12:00:00Z) or a date
(2026-01-05), in UTC. --rules defaults to evaluator.rules of the
configuration (file, VIGIA_* variables).

`

// Main runs `evaluator backtest` with args (those after "backtest") and
// returns the exit code: 0 done, 1 the backtest failed (rules that do not
// load, no stored events, the store), 2 bad usage.
func Main(ctx context.Context, args []string, open OpenFunc, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("evaluator backtest", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var ruleFiles, against, names listFlag
	fs.Var(&ruleFiles, "rules", "rules file or directory (A); repeatable")
	fs.Var(&against, "against", "rules file or directory to compare with (B); repeatable")
	fs.Var(&names, "rule", "evaluate only this rule (alertname or group/alertname); repeatable")
	fromS := fs.String("from", "", "start of the range, inclusive")
	toS := fs.String("to", "", "end of the range, exclusive")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	showProgress := fs.Bool("progress", isTerminal(stderr), "draw a progress line on stderr (default: when stderr is a terminal)")
	configFile := fs.String("config.file", "", "YAML configuration file (env VIGIA_CONFIG_FILE)")
	bad := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "evaluator backtest: "+format+"\n\n", a...)
		fmt.Fprint(stderr, usage)
		fs.SetOutput(stderr)
		fs.PrintDefaults()
		return 2
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return 0
		}
		return bad("%v", err)
	}
	if fs.NArg() > 0 {
		return bad("unexpected arguments: %q", fs.Args())
	}
	if *fromS == "" || *toS == "" {
		return bad("--from and --to are required")
	}
	from, err := ParseTime(*fromS)
	if err != nil {
		return bad("--from: %v", err)
	}
	to, err := ParseTime(*toS)
	if err != nil {
		return bad("--to: %v", err)
	}
	if !from.Before(to) {
		return bad("--from (%s) must be before --to (%s)", fmtTime(from), fmtTime(to))
	}

	var cfgArgs []string
	if *configFile != "" {
		cfgArgs = []string{"--config.file", *configFile}
	}
	cfg, code, ok := config.LoadCommand("evaluator", cfgArgs, stderr)
	if !ok {
		return code
	}
	if len(ruleFiles) == 0 {
		ruleFiles = cfg.Evaluator.Rules
	}
	setA, err := rules.Load(ruleFiles...)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	var setB *rules.Set
	if len(against) > 0 {
		if setB, err = rules.Load(against...); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	// --rule names must name a rule of A or B; each side evaluates those
	// it has (a rule renamed in B is then only in A, and only in B).
	sets := []*rules.Set{setA}
	if setB != nil {
		sets = append(sets, setB)
	}
	if len(names) > 0 {
		var unknown []string
		for _, n := range names {
			if !Knows(setA, n) && (setB == nil || !Knows(setB, n)) {
				unknown = append(unknown, n)
			}
		}
		if len(unknown) > 0 {
			known := RuleNames(setA)
			if setB != nil {
				known = append(known, RuleNames(setB)...)
				slices.Sort(known)
				known = slices.Compact(known)
			}
			fmt.Fprintf(stderr, "evaluator backtest: unknown rule %s; known rules: %s\n", strings.Join(quoteAll(unknown), ", "), strings.Join(known, ", "))
			return 2
		}
		for i := range sets {
			sets[i] = only(sets[i], names)
		}
	}

	src, closeSrc, err := open(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "evaluator backtest: %v\n", err)
		return 1
	}
	defer func() {
		if closeSrc != nil {
			if err := closeSrc(); err != nil {
				fmt.Fprintf(stderr, "evaluator backtest: closing the store: %v\n", err)
			}
		}
	}()
	opts := Options{From: from, To: to, Window: WindowOptions(cfg.Evaluator)}
	if *showProgress {
		opts.Progress = stderr
	}
	// A and B replay the history in one read.
	reps, err := RunSets(ctx, src, sets, opts)
	if err != nil {
		fmt.Fprintf(stderr, "evaluator backtest: %v\n", err)
		return 1
	}
	var out interface {
		WriteText(io.Writer) error
	} = reps[0]
	if len(reps) == 2 {
		out = Diff(reps[0], reps[1])
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(out)
	} else {
		err = out.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "evaluator backtest: writing the report: %v\n", err)
		return 1
	}
	return 0
}

// only narrows set to the rules of names it knows (none when it knows
// none of them).
func only(set *rules.Set, names []string) *rules.Set {
	var known []string
	for _, n := range names {
		if Knows(set, n) {
			known = append(known, n)
		}
	}
	if len(known) == 0 {
		return &rules.Set{Files: set.Files}
	}
	sub, _ := Select(set, known...) // known names: no error
	return sub
}

// ParseTime reads an RFC 3339 time or a date (2006-01-02, midnight), and
// returns it in UTC.
func ParseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, time.UTC); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is neither RFC 3339 (2026-01-05T12:00:00Z) nor a date (2026-01-05)", s)
}

// listFlag is a repeatable flag; each value may also hold a comma-separated
// list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"strings"
	"time"
)

// Limits of the flags; beyond them a run is a mistake rather than a test.
const (
	MaxBatch       = 1000
	maxConcurrency = 10000
	maxNumbers     = 100000
)

// SecretsEnv holds ingest's app secrets (comma-separated); the first one
// signs when -secret is not given, so that the tool and the service agree
// without the secret appearing in the command line.
const SecretsEnv = "VIGIA_META_APP_SECRETS"

// Options are the parsed flags.
type Options struct {
	Config
	JSON bool
	Once bool
}

// ParseFlags parses the command line. getenv supplies SecretsEnv. The error
// is flag.ErrHelp for -h, otherwise a usage error (already printed to
// stderr).
func ParseFlags(args []string, getenv func(string) string, stderr io.Writer) (Options, error) {
	var o Options
	var secret string
	fs := flag.NewFlagSet("vigia-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: vigia-load [flags]\n\n"+
			"Posts signed WhatsApp status webhooks to a local Vigia ingest and reports\n"+
			"throughput and answer latency. Exit status: 0 when every request got 200,\n"+
			"1 otherwise, 2 on bad flags.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.URL, "url", "http://127.0.0.1:8080/webhooks/whatsapp", "the only URL posted to")
	// No default value shown: -h must not print the secret.
	fs.StringVar(&secret, "secret", "", "app secret that signs the bodies (default: first entry of $"+SecretsEnv+")")
	fs.Float64Var(&o.Rate, "rate", 0, "target status events per second, paced in open loop; 0 = as fast as answered")
	fs.IntVar(&o.Batch, "batch", 100, fmt.Sprintf("statuses per POST (1..%d)", MaxBatch))
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "length of the run, warmup included")
	fs.DurationVar(&o.Warmup, "warmup", time.Second, "first part of the run left out of the report")
	fs.IntVar(&o.Concurrency, "concurrency", 16, "requests in flight at most")
	fs.IntVar(&o.WABAs, "wabas", 4, "distinct WhatsApp Business Account ids")
	fs.IntVar(&o.Numbers, "numbers", 16, "distinct phone number ids, spread over the accounts (>= -wabas)")
	fs.Uint64Var(&o.Seed, "seed", 0, "seed of the payload generator; 0 = from the clock (the report prints it)")
	fs.Float64Var(&o.Mix, "mix", 0.05, "fraction of statuses that are failed (errors 131048, 130429, 131026...); the rest are sent/delivered/read")
	fs.DurationVar(&o.Timeout, "timeout", 10*time.Second, "per request")
	fs.BoolVar(&o.JSON, "json", false, "print the report as JSON")
	fs.BoolVar(&o.Once, "once", false, "post a single batch and print the answer")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	fail := func(format string, a ...any) (Options, error) {
		err := fmt.Errorf(format, a...)
		fmt.Fprintf(stderr, "vigia-load: %v\n", err)
		return o, err
	}
	if fs.NArg() > 0 {
		return fail("unexpected arguments: %q", fs.Args())
	}
	if secret == "" {
		first, _, _ := strings.Cut(getenv(SecretsEnv), ",")
		secret = strings.TrimSpace(first)
	}
	if secret == "" {
		return fail("no app secret: give -secret or set %s", SecretsEnv)
	}
	o.Secret = []byte(secret)
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	u, err := url.Parse(o.URL)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fail("-url %q: want an http:// or https:// URL", o.URL)
	case math.IsNaN(o.Rate) || math.IsInf(o.Rate, 0) || o.Rate < 0:
		return fail("-rate %v: want a number >= 0", o.Rate)
	case o.Batch < 1 || o.Batch > MaxBatch:
		return fail("-batch %d: want 1..%d", o.Batch, MaxBatch)
	case o.Concurrency < 1 || o.Concurrency > maxConcurrency:
		return fail("-concurrency %d: want 1..%d", o.Concurrency, maxConcurrency)
	case o.WABAs < 1:
		return fail("-wabas %d: want at least 1", o.WABAs)
	case o.Numbers < o.WABAs || o.Numbers > maxNumbers:
		return fail("-numbers %d: want -wabas (%d) up to %d, so that every account has a number", o.Numbers, o.WABAs, maxNumbers)
	case math.IsNaN(o.Mix) || o.Mix < 0 || o.Mix > 1:
		return fail("-mix %v: want 0..1", o.Mix)
	case o.Timeout <= 0:
		return fail("-timeout %v: want > 0", o.Timeout)
	case !o.Once && o.Duration <= 0:
		return fail("-duration %v: want > 0", o.Duration)
	case !o.Once && (o.Warmup < 0 || o.Warmup >= o.Duration):
		return fail("-warmup %v: want 0 up to less than -duration (%v)", o.Warmup, o.Duration)
	}
	if !isLoopback(u.Hostname()) {
		fmt.Fprintf(stderr, "vigia-load: note: %s is not a loopback address; this tool is meant for an ingest on this machine\n", u.Hostname())
	}
	return o, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Main runs the tool with the given command line and returns the exit
// status: 0 when every request got a 200, 1 otherwise, 2 on bad flags.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	o, err := ParseFlags(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	write := func(text func(io.Writer) error, v any) int {
		if o.JSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			err = enc.Encode(v)
		} else {
			err = text(stdout)
		}
		if err != nil {
			fmt.Fprintf(stderr, "vigia-load: write report: %v\n", err)
			return 1
		}
		return 0
	}
	if o.Once {
		r, err := Once(ctx, o.Config)
		if err != nil {
			fmt.Fprintf(stderr, "vigia-load: %v\n", err)
			return 1
		}
		if write(r.WriteText, r) != 0 || r.Status != 200 || r.Error != "" {
			return 1
		}
		return 0
	}
	r, err := Run(ctx, o.Config)
	if err != nil {
		fmt.Fprintf(stderr, "vigia-load: %v\n", err)
		return 1
	}
	if write(r.WriteText, r) != 0 || !r.Success() {
		return 1
	}
	return 0
}

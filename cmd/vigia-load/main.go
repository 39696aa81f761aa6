// Command vigia-load is the load tool of the ingest service: it posts
// realistic, correctly signed WhatsApp status webhooks to one URL (a local
// ingest) at a target rate or as fast as answered, for a bounded time, and
// reports throughput, answer latency percentiles and errors.
//
// Run with -h for the flags; the logic lives in internal/loadgen.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"vigia/internal/loadgen"
)

func main() { os.Exit(run()) }

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal ends the run early with a report; restoring the
	// default handling lets a second one kill the tool outright.
	go func() {
		<-ctx.Done()
		stop()
	}()
	return loadgen.Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
}

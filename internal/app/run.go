package app

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Service is what the mains run: Start connects and serves, Stop drains.
type Service interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// ShutdownTimeout bounds Stop when a service is asked to exit.
const ShutdownTimeout = 30 * time.Second

// Run starts svc and runs it until SIGINT or SIGTERM, then stops it within
// ShutdownTimeout. Each SIGHUP calls onHUP, when it is not nil. It returns
// the process exit code.
func Run(name string, svc Service, log *slog.Logger, onHUP func(ctx context.Context)) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := svc.Start(ctx); err != nil {
		log.Error("cannot start "+name, "err", err)
		return 1
	}
	hup := make(chan os.Signal, 1)
	if onHUP != nil {
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
	}
	for done := false; !done; {
		select {
		case <-hup:
			onHUP(ctx)
		case <-ctx.Done():
			done = true
		}
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if err := svc.Stop(sctx); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	return 0
}

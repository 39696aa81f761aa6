package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// newRegistry is a service's own metrics registry, with the Go runtime and
// process collectors (no global registry: tests run several services in
// one process).
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// opsRoutes adds what every service serves to operators: /metrics,
// /-/healthy (200 while the process runs) and /-/ready (503 with notReady
// as the reason until ready is true).
func opsRoutes(mux *http.ServeMux, reg *prometheus.Registry, ready *atomic.Bool, notReady string) {
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("OK\n")) })
	mux.HandleFunc("GET /-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, notReady, http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("OK\n"))
	})
}

// serveHTTP listens on addr and serves h from a goroutine counted by wg,
// until the server is shut down. setting names the address's
// configuration key in the error.
func serveHTTP(setting, addr string, h http.Handler, log *slog.Logger, wg *sync.WaitGroup) (*http.Server, net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", setting, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	return srv, ln, nil
}

// shutdown stops a service built on serveHTTP: the HTTP server first (no
// new requests), then its goroutines (cancel, wait), then what they used.
func shutdown(ctx context.Context, srv *http.Server, cancel context.CancelFunc, wg *sync.WaitGroup, closers ...io.Closer) error {
	err := srv.Shutdown(ctx)
	cancel()
	wg.Wait()
	for _, c := range closers {
		if cerr := c.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}

// writeJSON answers v as JSON.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// Package amtest runs a real Alertmanager for tests, with a webhook
// receiver that records what it notifies.
//
// Tests of the Alertmanager notifier run against the real binary rather
// than a fake because what matters is what Alertmanager does with the
// posts: whether it accepts them, merges re-sends, notifies firing and
// resolved. [Start] uses the binary of the Debian package
// prometheus-alertmanager. When it is not installed the test is skipped,
// unless VIGIA_TEST_REAL_ALERTMANAGER=1 is set (CI sets it), in which case
// the test fails: a CI run must never pass by skipping these tests.
package amtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RequireEnv is the environment variable that turns a missing Alertmanager
// binary from a skip into a failure.
const RequireEnv = "VIGIA_TEST_REAL_ALERTMANAGER"

// Receiver is the name of the receiver, the only one, in the configuration.
const Receiver = "hook"

// readyTimeout bounds the wait for /-/ready after a start.
const readyTimeout = 20 * time.Second

// binaries are the names tried for the Alertmanager binary, in order.
var binaries = []string{"prometheus-alertmanager", "/usr/bin/prometheus-alertmanager", "alertmanager"}

// Binary returns the path of the Alertmanager binary, "" when none is
// installed.
func Binary() string {
	for _, b := range binaries {
		if p, err := exec.LookPath(b); err == nil {
			return p
		}
	}
	return ""
}

// Option changes the route of the configuration Start writes.
type Option func(*settings)

type settings struct {
	groupWait, groupInterval, repeatInterval time.Duration
}

// GroupWait sets the route's group_wait (default 0s: notify a new alert at
// once).
func GroupWait(d time.Duration) Option { return func(s *settings) { s.groupWait = d } }

// GroupInterval sets the route's group_interval (default 1s: how soon a
// change to a notified alert, its resolve for one, is notified).
func GroupInterval(d time.Duration) Option { return func(s *settings) { s.groupInterval = d } }

// RepeatInterval sets the route's repeat_interval (default 1h: no repeats
// during a test).
func RepeatInterval(d time.Duration) Option { return func(s *settings) { s.repeatInterval = d } }

// Alertmanager is a running Alertmanager process.
type Alertmanager struct {
	t       testing.TB
	bin     string
	dir     string // config, storage and log
	addr    string // 127.0.0.1:port, kept across restarts
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd exited
}

// Start starts an Alertmanager that sends every alert, each in its own
// group, to webhookURL, and waits until it is ready. It is stopped when the
// test ends.
func Start(t testing.TB, webhookURL string, opts ...Option) *Alertmanager {
	t.Helper()
	bin := Binary()
	if bin == "" {
		msg := "no Alertmanager binary (prometheus-alertmanager or alertmanager on PATH); " +
			"install it with: apt-get install prometheus-alertmanager"
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%s (%s=1 requires it)", msg, RequireEnv)
		}
		t.Skipf("%s; set %s=1 to fail instead of skipping", msg, RequireEnv)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "alertmanager.yml"), []byte(Config(webhookURL, opts...)), 0o600); err != nil {
		t.Fatal(err)
	}
	am := &Alertmanager{
		t:       t,
		bin:     bin,
		dir:     dir,
		addr:    freeAddr(t),
		logPath: filepath.Join(dir, "alertmanager.log"),
	}
	t.Cleanup(func() {
		am.Stop()
		if t.Failed() {
			t.Logf("alertmanager log:\n%s", am.Log())
		}
	})
	am.start()
	return am
}

// Config returns the configuration Start writes: one route to the webhook
// receiver, with send_resolved, every alert in a group of its own ('...'),
// group_wait 0s, group_interval 1s and repeat_interval 1h unless opts say
// otherwise.
func Config(webhookURL string, opts ...Option) string {
	s := settings{groupWait: 0, groupInterval: time.Second, repeatInterval: time.Hour}
	for _, o := range opts {
		o(&s)
	}
	return fmt.Sprintf(`route:
  receiver: %s
  group_by: ['...']
  group_wait: %s
  group_interval: %s
  repeat_interval: %s
receivers:
  - name: %s
    webhook_configs:
      - url: %s
        send_resolved: true
`, Receiver, promDuration(s.groupWait), promDuration(s.groupInterval), promDuration(s.repeatInterval),
		Receiver, strconv.Quote(webhookURL))
}

// promDuration writes d in Prometheus's duration syntax, which has no
// fractions: whole hours, seconds or milliseconds.
func promDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

// freeAddr returns a loopback address with a port that was free a moment
// ago. Alertmanager must be told its port, so there is a small window in
// which another process could take it; Restart keeps it, so that the
// notifier under test can find Alertmanager again.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// URL returns Alertmanager's base URL, http://127.0.0.1:port.
func (am *Alertmanager) URL() string { return "http://" + am.addr }

// Log returns what the process wrote to stdout and stderr, over every
// start.
func (am *Alertmanager) Log() string {
	b, err := os.ReadFile(am.logPath)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func (am *Alertmanager) start() {
	am.t.Helper()
	am.mu.Lock()
	defer am.mu.Unlock()
	if am.cmd != nil {
		am.t.Fatal("amtest: alertmanager already running")
	}
	logf, err := os.OpenFile(am.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		am.t.Fatal(err)
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(am.bin,
		"--config.file="+filepath.Join(am.dir, "alertmanager.yml"),
		"--storage.path="+filepath.Join(am.dir, "data"),
		"--web.listen-address="+am.addr,
		// Empty: no cluster listener. Its default listens on all
		// interfaces on port 9094, which two tests cannot share.
		"--cluster.listen-address=",
		"--log.level=debug",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		am.t.Fatalf("amtest: start %s: %v", am.bin, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait() //nolint:errcheck // the exit status of a stopped test process tells nothing
		close(done)
	}()
	am.cmd, am.done = cmd, done

	if err := waitReady(am.URL(), done); err != nil {
		am.stopLocked()
		am.t.Fatalf("amtest: alertmanager at %s not ready: %v\nlog:\n%s", am.addr, err, am.Log())
	}
}

// waitReady polls /-/ready until it answers 200, the process exits or
// readyTimeout passes.
func waitReady(base string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error = errors.New("no answer yet")
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/-/ready", nil)
		res, err := client.Do(req)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("/-/ready: %s", res.Status)
		} else {
			last = err
		}
		select {
		case <-exited:
			return errors.New("the process exited")
		case <-ctx.Done():
			return fmt.Errorf("timeout after %v: %w", readyTimeout, last)
		case <-tick.C:
		}
	}
}

// Stop stops Alertmanager (SIGTERM, SIGKILL after 10 s) and waits for it
// to exit. Stopping a stopped Alertmanager does nothing.
func (am *Alertmanager) Stop() {
	am.mu.Lock()
	defer am.mu.Unlock()
	am.stopLocked()
}

func (am *Alertmanager) stopLocked() {
	if am.cmd == nil {
		return
	}
	cmd, done := am.cmd, am.done
	am.cmd, am.done = nil, nil
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Restart stops Alertmanager and starts it again on the same address with
// the same storage (its notification log and silences survive; its alerts
// live in memory and do not).
func (am *Alertmanager) Restart() {
	am.t.Helper()
	am.Stop()
	am.start()
}

// Running reports whether the process is running.
func (am *Alertmanager) Running() bool {
	am.mu.Lock()
	defer am.mu.Unlock()
	if am.cmd == nil {
		return false
	}
	select {
	case <-am.done:
		return false
	default:
		return true
	}
}

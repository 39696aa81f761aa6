package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.yaml.in/yaml/v3"

	"vigia/internal/simulate"
)

// TestQuickstartDistributed is the quickstart end to end in distributed
// mode: a real Apache Kafka broker (scripts/kafka.sh) and ingest,
// evaluator and control as separate processes built from cmd/, on the
// drills' configuration. No sink and no notifier: the quickstart needs
// neither. The simulator runs in this process against the services' HTTP
// endpoints, and its report must show what the all-in-one's does
// (TestQuickstartAllInOne): the detection and the switch, in order and in
// time, and the traffic on the reserve.
func TestQuickstartDistributed(t *testing.T) {
	if os.Getenv("VIGIA_TEST_REAL_KAFKA") != "1" {
		t.Skip("the distributed quickstart needs a real Kafka broker: set VIGIA_TEST_REAL_KAFKA=1 (make test does)")
	}
	start := time.Now()
	// The build runs while the broker starts.
	bin := t.TempDir()
	var buildErr error
	built := make(chan struct{})
	go func() {
		defer close(built)
		buildErr = buildServices(bin, "ingest", "evaluator", "control")
	}()
	t.Cleanup(func() { <-built })
	broker := startDistBroker(t, 20192)
	<-built
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	t.Logf("broker and build ready after %s", time.Since(start).Round(100*time.Millisecond))

	work := t.TempDir() // the services' working directory: anything relative lands here
	ports := freePorts(t, 3)
	ingestAddr, evaluatorAddr, controlAddr := ports[0], ports[1], ports[2]
	cfgFile := writeDistConfig(t, work, broker, ingestAddr, evaluatorAddr, controlAddr)

	// In the all-in-one's order. Ingest first: it creates the events
	// topic, and a consumer group that joins before its topic exists gets
	// no partitions. Then the evaluator, whose readiness means its group
	// joined (the broker's group coordinator is up), then control.
	ingest := startService(t, bin, "ingest", work, cfgFile)
	ingest.waitReady(t, "http://"+ingestAddr, 60*time.Second)
	evaluator := startService(t, bin, "evaluator", work, cfgFile)
	evaluator.waitReady(t, "http://"+evaluatorAddr, 60*time.Second)
	control := startService(t, bin, "control", work, cfgFile)
	control.waitReady(t, "http://"+controlAddr, 60*time.Second)
	// Control is ready once its route state is rebuilt; its consumer
	// group on the alerts topic may join later (a new group reads the
	// topic from the start, so an alert is not lost, but the switch would
	// wait for the join). Wait for the group, so that the times measured
	// are control's reaction, not its start.
	waitGroupStable(t, broker.addr(), "vigia-control", control, 30*time.Second)
	t.Logf("services ready after %s", time.Since(start).Round(100*time.Millisecond))

	out := filepath.Join(t.TempDir(), "report.json")
	var stdout, stderr bytes.Buffer
	simStart := time.Now()
	code := run([]string{"simulate",
		"-ingest", "http://" + ingestAddr, "-evaluator", "http://" + evaluatorAddr, "-control", "http://" + controlAddr,
		"-speed", "8", "-json", out, "../../deploy/drills/quickstart.yaml"}, nil, &stdout, &stderr)
	t.Logf("simulation took %s (whole test so far %s)\n%s", time.Since(simStart).Round(time.Second),
		time.Since(start).Round(time.Second), stdout.String())
	for _, s := range []*service{ingest, evaluator, control} {
		if s.exited() {
			t.Errorf("%s exited during the scenario: %v", s.name, s.err)
		}
	}
	if code != 0 {
		t.Fatalf("simulate: exit %d\nstderr:\n%s", code, stderr.String())
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep simulate.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	checkQuickstartReport(t, &rep, data, stdout.String(), 8)
}

// checkQuickstartReport asserts what TestQuickstartAllInOne asserts of the
// quickstart's report, played at speed.
func checkQuickstartReport(t *testing.T, rep *simulate.Report, data []byte, text string, speed int) {
	t.Helper()
	if !rep.Passed || len(rep.Incidents) != 1 {
		t.Fatalf("report: %s", data)
	}
	ir := rep.Incidents[0]
	if ir.Detected == nil || ir.Switched == nil {
		t.Fatalf("no detection or no switch: %+v", ir)
	}
	// The rule group runs every 10 s: detection within two rounds, the
	// failover right after it (the alerts topic, control's consumer
	// group, the route log).
	if d := ir.Detected.AfterSeconds; d < 0 || d > 25 {
		t.Errorf("detected %.1fs after the incident started, want within 25s", d)
	}
	if s := ir.Switched.AfterSeconds; s < ir.Detected.AfterSeconds || s > ir.Detected.AfterSeconds+10 {
		t.Errorf("switched at +%.1fs, detected at +%.1fs: want the switch within 10s of the detection", s, ir.Detected.AfterSeconds)
	}
	if ir.Detected.Alert != "NumberBlocked" || ir.Switched.Action != "failover" || ir.Switched.UseCase != "orders" {
		t.Errorf("detected %+v, switched %+v", ir.Detected, ir.Switched)
	}
	// The audit's time is when the change was proposed; pick follows once
	// the route log applied it, a moment later.
	if perSecond := 3 * speed; ir.BadRouteAfterSwitch > 2*perSecond {
		t.Errorf("%d messages went to the blocked number after the switch, want at most 2 s of traffic (%d)", ir.BadRouteAfterSwitch, 2*perSecond)
	}
	var reserve int
	for _, rc := range rep.Routes {
		if rc.Number == "106540352242924" {
			reserve = rc.Messages
		}
	}
	if reserve == 0 || rep.Stats.IngestErrors > 0 || rep.Stats.PickErrors > 0 {
		t.Errorf("routes %+v, stats %+v", rep.Routes, rep.Stats)
	}
	for _, want := range []string{"NumberBlocked", "failover orders", "Every expectation met."} {
		if !strings.Contains(text, want) {
			t.Errorf("text report lacks %q", want)
		}
	}
}

// distBroker is an Apache Kafka broker started by scripts/kafka.sh for one
// test, on its own port and data directory (internal/app's realBroker).
type distBroker struct {
	t    *testing.T
	port int
	dir  string
}

func startDistBroker(t *testing.T, port int) *distBroker {
	t.Helper()
	b := &distBroker{t: t, port: port, dir: t.TempDir()}
	b.script("start")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("broker log (end):\n%s", tail(filepath.Join(b.dir, "kafka.log"), 8<<10))
		}
		b.script("stop")
	})
	return b
}

func (b *distBroker) script(args ...string) {
	b.t.Helper()
	args = append(args, "--port", strconv.Itoa(b.port), "--dir", b.dir)
	out, err := exec.Command("../../scripts/kafka.sh", args...).CombinedOutput()
	if err != nil {
		b.t.Fatalf("scripts/kafka.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (b *distBroker) addr() string { return fmt.Sprintf("127.0.0.1:%d", b.port) }

// buildServices builds the commands into dir, with the race detector when
// this test binary has it.
func buildServices(dir string, names ...string) error {
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if raceEnabled() {
		args = append(args, "-race")
	}
	for _, n := range names {
		args = append(args, "./cmd/"+n)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// waitGroupStable waits until the consumer group has a member and is
// stable; it fails the test when s exits or the time is up.
func waitGroupStable(t *testing.T, broker, group string, s *service, within time.Duration) {
	t.Helper()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 5 * time.Second, Transport: tr}
	deadline := time.Now().Add(within)
	last := "no answer"
	for {
		resp, err := c.DescribeGroups(context.Background(), &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
		switch {
		case err != nil:
			last = err.Error()
		case len(resp.Groups) != 1:
			last = fmt.Sprintf("%d groups described", len(resp.Groups))
		case resp.Groups[0].Error != nil:
			last = resp.Groups[0].Error.Error()
		case resp.Groups[0].GroupState == "Stable" && len(resp.Groups[0].Members) > 0:
			return
		default:
			last = fmt.Sprintf("state %q, %d members", resp.Groups[0].GroupState, len(resp.Groups[0].Members))
		}
		if s.exited() {
			t.Fatalf("%s exited before its consumer group %s joined: %v", s.name, group, s.err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer group %s not stable within %s: %s", group, within, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freePorts returns n addresses on 127.0.0.1 that were free a moment ago:
// the services are separate processes, so they cannot listen on :0 and
// tell us.
func freePorts(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		addrs = append(addrs, l.Addr().String())
	}
	for _, l := range ls {
		l.Close()
	}
	return addrs
}

// writeDistConfig writes the drills' configuration (deploy/drills/vigia.yaml:
// secrets, tokens, phone numbers) for the distributed mode: the real
// broker, the given listen addresses, the repository's rules and the
// quickstart routes by absolute path, data paths in the work directory.
func writeDistConfig(t *testing.T, work string, b *distBroker, ingest, evaluator, control string) string {
	t.Helper()
	data, err := os.ReadFile("../../deploy/drills/vigia.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	section := func(name string) map[string]any {
		m, ok := cfg[name].(map[string]any)
		if !ok {
			m = map[string]any{}
			cfg[name] = m
		}
		return m
	}
	section("log")["level"] = "info"
	section("http")["listen"] = ingest
	k := section("kafka")
	k["brokers"] = []string{b.addr()}
	delete(k, "embedded")
	ev := section("evaluator")
	ev["listen"] = evaluator
	ev["rules"] = []string{filepath.Join(repo, "rules"), filepath.Join(repo, "deploy/drills/rules")}
	section("clickhouse")["path"] = filepath.Join(work, "chdb")
	c := section("control")
	c["listen"] = control
	c["routes_file"] = filepath.Join(repo, "deploy/drills/quickstart.routes.yaml")
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(work, "vigia.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("configuration of the services (%s):\n%s", path, out)
		}
	})
	return path
}

// service is one Vigia service running as its own process.
type service struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr string // files
	done           chan struct{}
	err            error // Wait's, once done is closed
}

// startService starts bin/name with the configuration file, its output
// in files of work shown when the test fails, and stops it when the test
// ends: SIGTERM, then SIGKILL if it has not exited within 20 s. A clean
// exit is expected of it.
func startService(t *testing.T, bin, name, work, cfgFile string) *service {
	t.Helper()
	s := &service{name: name, stdout: filepath.Join(work, name+".stdout"), stderr: filepath.Join(work, name+".stderr"),
		done: make(chan struct{})}
	outF, err := os.Create(s.stdout)
	if err != nil {
		t.Fatal(err)
	}
	defer outF.Close()
	errF, err := os.Create(s.stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer errF.Close()
	s.cmd = exec.Command(filepath.Join(bin, name), "--config.file", cfgFile)
	s.cmd.Dir = work
	s.cmd.Stdout, s.cmd.Stderr = outF, errF
	// Only the configuration file configures the services: no VIGIA_*
	// setting of this environment leaks in.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VIGIA_") {
			s.cmd.Env = append(s.cmd.Env, kv)
		}
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() { s.stop(t) })
	return s
}

func (s *service) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *service) stop(t *testing.T) {
	if !s.exited() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
			if s.err != nil {
				t.Errorf("%s (pid %d) after SIGTERM: %v", s.name, s.cmd.Process.Pid, s.err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("%s (pid %d) did not stop within 20s of SIGTERM: killed", s.name, s.cmd.Process.Pid)
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	if logs, _ := os.ReadFile(s.stderr); bytes.Contains(logs, []byte("WARNING: DATA RACE")) {
		t.Errorf("%s: the race detector found a data race", s.name)
	}
	if t.Failed() {
		t.Logf("%s (pid %d, %v) stderr (end):\n%s", s.name, s.cmd.Process.Pid, s.err, tail(s.stderr, 16<<10))
		t.Logf("%s stdout (end):\n%s", s.name, tail(s.stdout, 4<<10))
	}
}

// waitReady waits until the service's /-/ready answers 200; it fails the
// test when the process exits or the time is up.
func (s *service) waitReady(t *testing.T, base string, within time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(within)
	last := "no answer"
	for {
		resp, err := client.Get(base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if s.exited() {
			t.Fatalf("%s exited before it was ready: %v", s.name, s.err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within %s: %s", s.name, within, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tail returns the last n bytes of a file (or why it cannot).
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	off := max(fi.Size()-n, 0)
	buf := make([]byte, fi.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return err.Error()
	}
	return string(buf)
}

package app

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"vigia/internal/alert"
)

// evaluatorProcess runs cmd/evaluator as a real process, so that the test
// can kill it with SIGKILL.
type evaluatorProcess struct {
	t    *testing.T
	bin  string
	conf string
	cmd  *exec.Cmd
	base string
	log  *os.File
}

func buildEvaluator(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "evaluator")
	out, err := exec.Command("go", "build", "-o", bin, "../../cmd/evaluator").CombinedOutput()
	if err != nil {
		t.Fatalf("build evaluator: %v\n%s", err, out)
	}
	return bin
}

func (p *evaluatorProcess) start(port int) {
	p.t.Helper()
	p.cmd = exec.Command(p.bin, "--config.file", p.conf, fmt.Sprintf("--evaluator.listen=127.0.0.1:%d", port))
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.base = fmt.Sprintf("http://127.0.0.1:%d", port)
	if pollReady(p.base, 60*time.Second) {
		return
	}
	logs, _ := os.ReadFile(p.log.Name())
	p.t.Fatalf("evaluator at %s not ready within 60s; its log:\n%s", p.base, tail(string(logs), 30))
}

func (p *evaluatorProcess) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
}

// TestEvaluatorRestartNeitherRefiresNorForgets runs the evaluator as a
// process against the real broker, kills it with SIGKILL while events keep
// coming, starts it again, and checks: the alert that was firing is not
// published as firing a second time, an alert whose events arrived around
// the crash still fires, and the first alert later resolves exactly once.
func TestEvaluatorRestartNeitherRefiresNorForgets(t *testing.T) {
	broker := startRealBroker(t, 19592)
	icfg := testConfig(t)
	icfg.Kafka.Brokers = broker.addr()
	_, ingBase := startIngest(t, icfg)

	dir := t.TempDir()
	rulesDir, _ := filepath.Abs("testdata/rules-restart")
	conf := filepath.Join(dir, "evaluator.yaml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`
log: {level: debug}
kafka: {brokers: [%q], partitions: 3}
evaluator:
  rules: [%q]
  group_id: restart-test
  commit_interval: 200ms
`, broker.addr()[0], rulesDir)), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "evaluator.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	p := &evaluatorProcess{t: t, bin: buildEvaluator(t), conf: conf, log: logf}
	p.start(18581)
	t.Cleanup(p.kill)

	const name = "RestartThroughputErrors"
	fired := func(phone string) func([]alert.Alert) bool {
		return func(as []alert.Alert) bool {
			for _, a := range as {
				if a.Name == name && a.State == alert.StateFiring && a.Labels["phone_number"] == phone {
					return true
				}
			}
			return false
		}
	}
	if resp := postSigned(t, ingBase, throttledBatch("PN1", 6, 0, time.Now()), testSecret); resp.StatusCode != 200 {
		t.Fatalf("ingest: %d", resp.StatusCode)
	}
	waitForAlert(t, broker.addr(), 20*time.Second, fired("PN1"))

	// Events keep coming for PN1 (keeping it firing) and start for PN2;
	// the evaluator dies in the middle.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			postSigned(t, ingBase, throttledBatch("PN1", 1, 1000+i, time.Now()), testSecret)
			postSigned(t, ingBase, throttledBatch("PN2", 1, 2000+i, time.Now()), testSecret)
			time.Sleep(300 * time.Millisecond)
		}
	}()
	time.Sleep(time.Second)
	p.kill()
	time.Sleep(time.Second)
	p.start(18582)
	waitForAlert(t, broker.addr(), 30*time.Second, fired("PN2"))
	time.Sleep(2 * time.Second)
	close(stop)
	<-done

	as := waitForAlert(t, broker.addr(), 30*time.Second, fired("PN2"))
	// After the events stop, PN1 resolves once its 40s window empties.
	as = waitForAlert(t, broker.addr(), 90*time.Second, func(as []alert.Alert) bool {
		for _, a := range as {
			if a.Name == name && a.State == alert.StateResolved && a.Labels["phone_number"] == "PN1" {
				return true
			}
		}
		return false
	})
	counts := map[string]int{}
	for _, a := range as {
		counts[a.Labels["phone_number"]+" "+string(a.State)]++
	}
	if counts["PN1 firing"] != 1 || counts["PN1 resolved"] != 1 || counts["PN2 firing"] != 1 {
		logs, _ := os.ReadFile(filepath.Join(dir, "evaluator.log"))
		t.Fatalf("alert records per number and state %v; want PN1 fired once and resolved once, PN2 fired once\n%s",
			counts, tail(string(logs), 40))
	}
	resp, err := http.Get(p.base + "/-/healthy")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("evaluator not healthy after restart: %v", err)
	}
	resp.Body.Close()
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

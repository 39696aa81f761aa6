package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"vigia/internal/action"
	"vigia/internal/alert"
	"vigia/internal/control"
	"vigia/internal/route"
)

// getRaw returns the body of a GET with the operate token (which reads).
func getRaw(t *testing.T, url string) []byte {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+testTokenOperate)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s %v", url, resp.StatusCode, body, err)
	}
	return body
}

func routesSeq(t *testing.T, base string) int64 {
	t.Helper()
	var out struct{ Seq int64 }
	if err := json.Unmarshal(getRaw(t, base+"/api/v1/routes"), &out); err != nil {
		t.Fatal(err)
	}
	return out.Seq
}

// sameState waits until every replica answers GET /api/v1/routes with
// the same bytes at seq want (0: any), then checks that their audit logs,
// automation views and full states are the same too.
func sameState(t *testing.T, want int64, cs []*Control, bases []string) {
	t.Helper()
	var routes [][]byte
	deadline := time.Now().Add(20 * time.Second)
	for {
		routes = routes[:0]
		agree := true
		for _, b := range bases {
			routes = append(routes, getRaw(t, b+"/api/v1/routes"))
		}
		for _, r := range routes[1:] {
			agree = agree && bytes.Equal(r, routes[0])
		}
		if agree && (want == 0 || routesSeq(t, bases[0]) == want) {
			break
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for i, r := range routes {
				fmt.Fprintf(&b, "\nreplica %d: %s", i, r)
			}
			t.Fatalf("replicas do not agree (want seq %d) within 20s:%s", want, b.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, path := range []string{"/api/v1/audit?limit=10000", "/api/v1/automation"} {
		first := getRaw(t, bases[0]+path)
		for i, b := range bases[1:] {
			if got := getRaw(t, b+path); !bytes.Equal(got, first) {
				t.Errorf("GET %s differs between replica 0 and %d:\n%s\n%s", path, i+1, first, got)
			}
		}
	}
	first, _ := json.Marshal(cs[0].Table().State())
	for i, c := range cs[1:] {
		if got, _ := json.Marshal(c.Table().State()); !bytes.Equal(got, first) {
			t.Errorf("route state differs between replica 0 and %d:\n%s\n%s", i+1, first, got)
		}
	}
}

// opCall is one operator request of the concurrent tests.
type opCall struct {
	path string
	body map[string]string
}

// mixedOp returns operator request i of a deterministic mix of pause,
// resume, throttle and switch on the numbers of sales.
func mixedOp(i int) opCall {
	n := "PN" + strconv.Itoa(1+(i/4)%3)
	switch i % 4 {
	case 0:
		return opCall{"numbers/" + n + "/pause", map[string]string{"reason": "op " + strconv.Itoa(i)}}
	case 1:
		return opCall{"numbers/" + n + "/resume", nil}
	case 2:
		return opCall{"numbers/" + n + "/throttle", map[string]string{"rate": strconv.Itoa(1+i%40) + "/s"}}
	}
	return opCall{"routes/sales/switch", map[string]string{"to": n, "reason": "op " + strconv.Itoa(i)}}
}

// post sends an operator request without failing the test (it runs off
// the test goroutine and against processes that may die).
func post(client *http.Client, base string, op opCall) (int, control.OpResult, error) {
	var rd io.Reader
	if op.body != nil {
		data, _ := json.Marshal(op.body)
		rd = bytes.NewReader(data)
	}
	req, _ := http.NewRequest("POST", base+"/api/v1/"+op.path, rd)
	req.Header.Set("Authorization", "Bearer "+testTokenOperate)
	resp, err := client.Do(req)
	if err != nil {
		return 0, control.OpResult{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, control.OpResult{}, err
	}
	var res control.OpResult
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(data, &res); err != nil {
			return resp.StatusCode, res, fmt.Errorf("decode %s: %w", data, err)
		}
	}
	return resp.StatusCode, res, nil
}

// concurrentOps sends n mixed operator requests at once, spread over the
// replicas, and returns how many were decided (200 applied or noop, 409
// refused: each is one command in the log) and the ids of the changes
// the 200s reported.
func concurrentOps(t *testing.T, bases []string, n int) (int64, []string) {
	t.Helper()
	var wg sync.WaitGroup
	var decided atomic.Int64
	var mu sync.Mutex
	var ids []string
	errs := make(chan error, n)
	client := &http.Client{Timeout: 30 * time.Second}
	for i := range n {
		wg.Go(func() {
			op := mixedOp(i)
			code, res, err := post(client, bases[i%len(bases)], op)
			switch {
			case err != nil:
				errs <- fmt.Errorf("%s: %w", op.path, err)
			case code == 200 || code == http.StatusConflict:
				decided.Add(1)
				mu.Lock()
				for _, r := range res.Changes {
					ids = append(ids, r.ID)
				}
				mu.Unlock()
			default:
				errs <- fmt.Errorf("%s %v: %d", op.path, op.body, code)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	return decided.Load(), ids
}

// TestControlReplicas runs two control services on one broker, one
// routes topic and one consumer group: (a) an operator action through one
// is visible through the other; (b) concurrent operator actions through
// both leave them with identical state; (c) an alert is acted on once;
// (d) a third replica started later rebuilds the same state from the log,
// through snapshots and tombstones.
func TestControlReplicas(t *testing.T) {
	ing, _ := startIngest(t, testConfig(t))
	testControlReplicas(t, ing.Brokers())
}

func TestControlReplicasRealKafka(t *testing.T) {
	broker := startRealBroker(t, 19992)
	testControlReplicas(t, broker.addr())
}

func testControlReplicas(t *testing.T, brokers []string) {
	snd := newSender(t)
	cfg := controlConfig(t, brokers, testRoutes, snd.srv.URL)
	cfg.Control.SnapshotEvery = 5
	cA, a := startControl(t, cfg)
	cB, b := startControl(t, cfg)
	if a == b {
		t.Fatal("both replicas on one address")
	}
	cs, bases := []*Control{cA, cB}, []string{a, b}

	// (a) Read your neighbour's write.
	start := time.Now()
	code, res := operate(t, a, "routes/sales/switch", map[string]string{"to": "PN2", "reason": "replica test"})
	if code != 200 || res.Outcome != route.OutcomeApplied {
		t.Fatalf("switch through A: %d %+v", code, res)
	}
	eventually(t, 5*time.Second, "B sees A's switch", func() bool {
		var v route.View
		callAPI(t, "GET", b+"/api/v1/routes/sales", testTokenOperate, nil, &v)
		return v.Preferred == "PN2" && v.Seq == res.Seq
	})
	t.Logf("(a) B saw A's switch after %s", time.Since(start).Round(time.Millisecond))
	if ans := pick(t, b, "sales"); ans.PhoneNumberID != "PN2" || ans.Seq != res.Seq {
		t.Errorf("pick through B: %+v, want PN2 at seq %d", ans, res.Seq)
	}
	sameState(t, res.Seq, cs, bases)

	// (b) Concurrent operators on both replicas.
	before := routesSeq(t, a)
	const n = 50
	decided, changes := concurrentOps(t, bases, n)
	if decided != n {
		t.Fatalf("%d of %d operator requests decided", decided, n)
	}
	sameState(t, before+n, cs, bases)
	if len(changes) == 0 {
		t.Error("no concurrent operator request changed anything")
	}
	for _, b := range bases {
		inAudit := map[string]bool{}
		for _, e := range auditOf(t, b, nil) {
			inAudit[e.ID] = true
		}
		for _, id := range changes {
			if !inAudit[id] {
				t.Errorf("change %s, answered 200 by one replica, is not in the audit log of %s", id, b)
			}
		}
	}

	// (c) An alert is acted on by one replica, once. Support is untouched
	// by (b): its only number fails over to the next channel. The
	// webhooks of (b) are delivered first, so that none arrives late
	// among those of (c).
	nothingQueued := func() bool {
		for _, base := range bases {
			var subs struct{ Subscribers []struct{ Queued int } }
			callAPI(t, "GET", base+"/api/v1/subscribers", testTokenAdmin, nil, &subs)
			if len(subs.Subscribers) != 1 || subs.Subscribers[0].Queued != 0 {
				return false
			}
		}
		return true
	}
	eventually(t, 20*time.Second, "the webhooks of (b) delivered", nothingQueued)
	snd.mu.Lock()
	snd.got = nil
	snd.mu.Unlock()
	now := time.Now()
	publishAlerts(t, brokers, numberAlert("SupportDown", "PN4", "support", alert.StateFiring, now.Add(-time.Minute), now))
	for _, base := range bases {
		eventually(t, 20*time.Second, "pick support answers email on "+base, func() bool {
			return pick(t, base, "support").Channel == route.ChannelEmail
		})
	}
	sameState(t, 0, cs, bases)
	for _, base := range bases {
		es := auditOf(t, base, nil)
		if len(entries(es, "degrade", route.OutcomeApplied, true)) != 1 || len(entries(es, "fallback_channel", route.OutcomeApplied, true)) != 1 ||
			len(entries(es, "", "", true)) != 2 {
			t.Errorf("audit of %s: want one degrade and one channel fallback, nothing else automatic:%s", base, describeAudit(entries(es, "", "", true)))
		}
	}
	proposed := 0.0
	for _, c := range cs {
		proposed += metricValue(t, c.Registry(), "vigia_control_alert_records_total", "outcome", "proposed")
	}
	// Once, unless a rebalance handed the record to the other replica
	// before its offset was committed: then the copy was a duplicate
	// (the audit checks above).
	if proposed < 1 || proposed > 2 {
		t.Errorf("the alert record was proposed %v times by the replicas, want 1 (2 after a rebalance)", proposed)
	}
	t.Logf("(c) alert record proposed %v time(s)", proposed)
	eventually(t, 10*time.Second, "the sender got the two changes", func() bool { return len(snd.changes()) >= 2 })
	eventually(t, 10*time.Second, "nothing queued for the sender", nothingQueued)
	ids := map[string]int{}
	for _, c := range snd.changes() {
		ids[c.ID]++
	}
	if len(snd.changes()) != 2 || len(ids) != 2 {
		t.Errorf("the sender got %+v, want the degrade and the fallback once each", snd.changes())
	}
	// The actions topic is written after the apply, asynchronously
	// (publishActions): wait for both records, then check for no more.
	rules := 0
	eventually(t, 10*time.Second, "two automatic records on the actions topic", func() bool {
		rules = 0
		for _, m := range readTopic(t, brokers, cfg.Kafka.ActionsTopic) {
			var r action.Record
			if json.Unmarshal(m.Value, &r) == nil && r.ActorKind == action.ActorRule {
				rules++
			}
		}
		return rules >= 2
	})
	if rules != 2 {
		t.Errorf("%d automatic records on the actions topic, want 2", rules)
	}

	// (d) A replica started later rebuilds the state from the snapshots
	// and the commands after them.
	snapshots, tombstones, commands := 0, 0, 0
	for _, m := range readTopic(t, brokers, cfg.Control.RoutesTopic) {
		switch key := string(m.Key); {
		case key == "snapshot":
			snapshots++
		case strings.HasPrefix(key, "cmd/") && len(m.Value) == 0:
			tombstones++
		case strings.HasPrefix(key, "cmd/"):
			commands++
		}
	}
	t.Logf("(d) routes topic: %d commands, %d snapshots, %d tombstones", commands, snapshots, tombstones)
	if snapshots == 0 || tombstones == 0 {
		t.Fatalf("routes topic: %d snapshots, %d tombstones; want both with snapshot_every 5", snapshots, tombstones)
	}
	cC, c, stopC := startControlOnce(t, cfg)
	cs, bases = append(cs, cC), append(bases, c)
	sameState(t, 0, cs, bases)
	code, res = operate(t, c, "numbers/PN4/resume", map[string]string{"reason": "back after the test"})
	if code != 200 || res.Outcome != route.OutcomeApplied {
		t.Fatalf("resume through C: %d %+v", code, res)
	}
	sameState(t, res.Seq, cs, bases)

	// (e) C leaves again: the two left take the alerts over. (C's joining
	// and leaving each end the group's generation; a replica that does not
	// come back from it leaves the alerts unread.)
	stopC()
	cs, bases = cs[:2], bases[:2]
	now = time.Now()
	throttle := numberAlert("PN2Throttled", "PN2", "sales", alert.StateFiring, now.Add(-time.Minute), now)
	throttle.Actions = []alert.Action{{Type: "throttle", Params: map[string]string{"phone_number": "PN2", "rate": "77/s"}}}
	publishAlerts(t, brokers, throttle)
	for _, base := range bases {
		eventually(t, 15*time.Second, "the survivors act on an alert after C left: PN2 capped at 77/s on "+base, func() bool {
			var n control.NumberView
			callAPI(t, "GET", base+"/api/v1/numbers/PN2", testTokenOperate, nil, &n)
			return n.RateCap == 77
		})
	}
	sameState(t, 0, cs, bases)
}

// TestControlKilledMidSwitch runs control as a process, fires operator
// requests at it from several goroutines and kills it with SIGKILL in the
// middle; a fresh control then rebuilds from the routes topic a state
// equal to applying every command record of the topic in order, and every
// request answered 200 is in it.
func TestControlKilledMidSwitch(t *testing.T) {
	ing, _ := startIngest(t, testConfig(t))
	testControlKilled(t, ing.Brokers())
}

func TestControlKilledMidSwitchRealKafka(t *testing.T) {
	broker := startRealBroker(t, 20092)
	testControlKilled(t, broker.addr())
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func testControlKilled(t *testing.T, brokers []string) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "control")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/control").CombinedOutput(); err != nil {
		t.Fatalf("build control: %v\n%s", err, out)
	}
	routes := filepath.Join(dir, "routes.yaml")
	if err := os.WriteFile(routes, []byte(testRoutes), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	conf := filepath.Join(dir, "control.yaml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`
log: {level: info}
kafka: {brokers: [%q], partitions: 3}
control:
  listen: 127.0.0.1:%d
  routes_file: %q
  group_id: kill-test
  snapshot_every: 7
  tokens:
    - {name: ops-alice, sha256: %s, scopes: [operate]}
`, brokers[0], port, routes, control.HashToken(testTokenOperate))), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "control.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "--config.file", conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waited sync.Once
	kill := func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		waited.Do(func() { _ = cmd.Wait() })
	}
	t.Cleanup(kill)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if !pollReady(base, 60*time.Second) {
		logs, _ := os.ReadFile(logf.Name())
		t.Fatalf("control at %s not ready within 60s; its log:\n%s", base, tail(string(logs), 30))
	}

	// Operators switch, pause, resume and throttle from 8 goroutines.
	type answer struct {
		op  opCall
		res control.OpResult
	}
	var (
		mu       sync.Mutex
		answered []answer // 200s
		refused  int      // 409s
		failed   int      // no answer: cut by the kill
		inFlight atomic.Int64
		okCount  atomic.Int64
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	client := &http.Client{Timeout: 15 * time.Second}
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				op := mixedOp(w*7 + i*3)
				inFlight.Add(1)
				code, res, err := post(client, base, op)
				inFlight.Add(-1)
				mu.Lock()
				switch {
				case err != nil:
					failed++
				case code == 200:
					answered = append(answered, answer{op, res})
					okCount.Add(1)
				case code == http.StatusConflict:
					refused++
				default:
					t.Errorf("%s %v: %d", op.path, op.body, code)
				}
				mu.Unlock()
				if err != nil {
					return // dead
				}
			}
		})
	}
	deadline := time.Now().Add(30 * time.Second)
	for okCount.Load() < 60 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	flying := inFlight.Load()
	kill()
	close(stop)
	wg.Wait()
	t.Logf("killed with %d requests in flight: %d answered 200, %d answered 409, %d cut", flying, len(answered), refused, failed)
	if len(answered) < 60 {
		logs, _ := os.ReadFile(logf.Name())
		t.Fatalf("only %d requests answered 200 before the kill; its log:\n%s", len(answered), tail(string(logs), 30))
	}

	// A fresh control on the same topic. Under another consumer group:
	// joining the killed one's group waits out its session (30 s) before
	// the join, and the stop at the end of the test, can finish.
	cfg := controlConfig(t, brokers, testRoutes, "")
	cfg.Control.SnapshotEvery = 7
	cfg.Control.GroupID = "kill-test-fresh"
	fresh, _ := startControl(t, cfg)
	got := fresh.Table().State()

	file, err := route.LoadFile(cfg.Control.RoutesFile)
	if err != nil {
		t.Fatal(err)
	}
	replay := route.NewState()
	commands, snapshots := 0, 0
	for _, m := range readTopic(t, brokers, cfg.Control.RoutesTopic) {
		key := string(m.Key)
		if key == "snapshot" {
			snapshots++
		}
		if !strings.HasPrefix(key, "cmd/") || len(m.Value) == 0 {
			continue
		}
		var c route.Command
		if err := json.Unmarshal(m.Value, &c); err != nil {
			t.Fatalf("command record at offset %d: %v", m.Offset, err)
		}
		if key != "cmd/"+c.ID {
			t.Errorf("record key %q holds command %q", key, c.ID)
		}
		replay.Apply(file, c)
		commands++
	}
	t.Logf("routes topic: %d commands, %d snapshots; fresh control at seq %d", commands, snapshots, got.Seq)
	if commands < len(answered)+refused {
		t.Errorf("%d commands in the topic, fewer than the %d requests decided", commands, len(answered)+refused)
	}
	want, _ := json.Marshal(replay.Clone())
	have, _ := json.Marshal(got)
	if !bytes.Equal(want, have) {
		t.Errorf("the fresh control's state is not the replay of the topic's commands:\nreplay: %s\nfresh:  %s", want, have)
	}

	inAudit := map[string]bool{}
	for _, e := range got.Audit {
		inAudit[e.ID] = true
	}
	changes := 0
	for _, a := range answered {
		for _, r := range a.res.Changes {
			changes++
			if !inAudit[r.ID] {
				t.Errorf("%s %v answered 200 with change %s, which the rebuilt audit log lacks", a.op.path, a.op.body, r.ID)
			}
		}
	}
	if changes == 0 {
		t.Error("no answered request changed anything")
	}
}

// TestControlPickReadsOwnWrite: once an operator's switch is answered,
// pick through the same replica answers the new route (the picker is
// updated before the proposer is told the change is applied).
func TestControlPickReadsOwnWrite(t *testing.T) {
	e := startControlEnv(t, testRoutes, "")
	for i := range 30 {
		to := []string{"PN1", "PN2", "PN3"}[i%3]
		res := e.mustOp("routes/sales/switch", map[string]string{"to": to})
		if ans := pick(t, e.base, "sales"); ans.PhoneNumberID != to || ans.Seq < res.Seq {
			t.Fatalf("switch %d to %s answered at seq %d; the pick right after: %s at seq %d", i, to, res.Seq, ans.PhoneNumberID, ans.Seq)
		}
	}
}

#!/usr/bin/env bash
# The README's first command (make demo): builds Vigia, runs ingest on the
# embedded broker, posts the sample webhook payloads through it signed as
# Meta signs them, and shows the normalized events that came out; then runs
# the evaluator with the shipped rules and shows alerts firing on a burst of
# throughput errors and a paused template; then runs the notifier, which
# posts those alerts as Slack messages (to a local stand-in for a Slack
# incoming webhook) and, when Debian's prometheus-alertmanager is installed,
# to a local Alertmanager; then the control API, whose automation carries
# out the alerts' actions and which tells a stand-in sender by signed
# webhook; then the ClickHouse sink. Last, the quickstart drill: the
# all-in-one binary plays an incident through the whole pipeline and
# reports the time to detect and to switch (docs/simulator.md).
set -euo pipefail
cd "$(dirname "$0")/.."

ADDR=127.0.0.1:8080
SECRET=demo-app-secret
BROKER=127.0.0.1:19192
DATA=data/demo-kafka

echo "==> building"
mkdir -p bin
go build -o bin/ ./cmd/...
echo "==> embedded ClickHouse library (chDB; fetched once, about 180 MB)"
CHDB_LIB_PATH="$(scripts/chdb.sh fetch)"
export CHDB_LIB_PATH

rm -rf "$DATA" data/demo-chdb
mkdir -p data
echo "==> starting ingest on the embedded broker (logs: data/demo-ingest.log)"
bin/ingest --config.file deploy/demo.yaml >data/demo-ingest.log 2>&1 &
PID=$!
EVPID=
MORE=
trap 'kill $MORE $EVPID "$PID" 2>/dev/null || true; wait $MORE $EVPID "$PID" 2>/dev/null || true' EXIT

for _ in $(seq 1 100); do
	if curl -fsS "http://$ADDR/-/ready" >/dev/null 2>&1; then break; fi
	if ! kill -0 "$PID" 2>/dev/null; then cat data/demo-ingest.log; exit 1; fi
	sleep 0.1
done
curl -fsS "http://$ADDR/-/ready" >/dev/null

sign() { printf 'sha256=%s' "$(openssl dgst -sha256 -hmac "$SECRET" -r <"$1" | cut -d' ' -f1)"; }

echo "==> Meta's verification handshake"
printf '    GET ?hub.challenge=42 -> %s\n' "$(curl -fsS "http://$ADDR/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=demo-verify-token&hub.challenge=42")"

echo "==> posting the sample webhook payloads (one per webhook field), signed"
for f in internal/meta/testdata/*.json; do
	printf '    %-36s -> ' "$(basename "$f")"
	curl -sS -w ' (HTTP %{http_code})' -H 'Content-Type: application/json' \
		-H "X-Hub-Signature-256: $(sign "$f")" --data-binary @"$f" "http://$ADDR/webhooks/whatsapp" | tr -d '\n'
	echo
done

echo "==> a payload with a wrong signature is refused and kept nowhere"
printf '    '
curl -sS -w ' (HTTP %{http_code})' -H 'X-Hub-Signature-256: sha256=00' \
	--data-binary @internal/meta/testdata/statuses.json "http://$ADDR/webhooks/whatsapp" | tr -d '\n'
echo

echo "==> a burst of 20,000 generated statuses through the load tool"
if [ -x bin/vigia-load ]; then
	bin/vigia-load -url "http://$ADDR/webhooks/whatsapp" -secret "$SECRET" -batch 500 -duration 2s -warmup 0s -rate 10000 -mix 0.005 | sed 's/^/    /'
fi

echo "==> events topic (vigia.events), per kind"
bin/vigia-tail -brokers "$BROKER" -summary | sed 's/^/    /'
echo "==> the first three events, as the evaluator will read them (no phone numbers, no message text)"
bin/vigia-tail -brokers "$BROKER" -n 3 | sed 's/^/    /'
echo "==> dead-letter topic (vigia.dlq): updates that could not be normalized, kept with the reason"
bin/vigia-tail -brokers "$BROKER" -topic vigia.dlq -headers | grep -E '^# vigia-(reason|detail)' | sed 's/^/    /'
echo "==> ingest metrics"
curl -fsS "http://$ADDR/metrics" | grep -E '^vigia_ingest_(requests|dead_letters|signature_failures)_total' | grep -v ' 0$' | sed 's/^/    /'

echo "==> starting the evaluator with the shipped rules (logs: data/demo-evaluator.log)"
bin/evaluator check rules/ | sed 's/^/    /'
bin/evaluator --config.file deploy/demo.yaml >data/demo-evaluator.log 2>&1 &
EVPID=$!
for _ in $(seq 1 300); do
	if curl -fsS "http://127.0.0.1:8081/-/ready" >/dev/null 2>&1; then break; fi
	if ! kill -0 "$EVPID" 2>/dev/null; then cat data/demo-evaluator.log; exit 1; fi
	sleep 0.1
done

NOW=$(date +%s)
echo "==> an incident now: 60 throughput errors (130429) on number 106540352242922, and template promo_bf paused"
{
	printf '{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages","value":{"metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"statuses":['
	for i in $(seq 1 60); do
		[ "$i" -gt 1 ] && printf ','
		printf '{"id":"wamid.DEMO%04d","status":"failed","timestamp":"%s","recipient_id":"55119%08d","biz_opaque_callback_data":"t=promo_bf;u=sales","errors":[{"code":130429,"title":"Rate limit hit"}]}' "$i" "$NOW" "$i"
	done
	printf ']}}]},{"id":"102290129340398","time":%s,"changes":[{"field":"message_template_status_update","value":{"event":"PAUSED","message_template_id":594425479261596,"message_template_name":"promo_bf","message_template_language":"pt_BR","reason":"NONE","other_info":{"title":"FIRST_PAUSE"}}}]}]}' "$NOW"
} >data/demo-incident.json
printf '    '
curl -sS -w ' (HTTP %{http_code})' -H "X-Hub-Signature-256: $(sign data/demo-incident.json)" \
	--data-binary @data/demo-incident.json "http://$ADDR/webhooks/whatsapp" | tr -d '\n'
echo

echo "==> waiting for the evaluator (rule groups run every 10 s)"
for _ in $(seq 1 40); do
	n=$(curl -fsS http://127.0.0.1:8081/api/v1/alerts | grep -o '"state":"firing"' | wc -l || true)
	[ "$n" -ge 2 ] && break
	sleep 0.5
done
echo "==> firing alerts (GET /api/v1/alerts), as published on vigia.alerts"
bin/vigia-tail -brokers "$BROKER" -topic vigia.alerts | python3 -c '
import json, sys
for line in sys.stdin:
    a = json.loads(line)
    print("    %-8s %-22s %s" % (a["state"], a["alertname"], a.get("annotations", {}).get("summary", "")))
    for x in a.get("actions") or []:
        print("             action: %s %s" % (x["type"], x.get("params", {})))
'
echo "==> starting the notifier (logs: data/demo-notifier.log)"
# A stand-in for a Slack incoming webhook on 127.0.0.1:8099: it keeps
# what it is sent, one JSON message per line.
rm -f data/demo-slack.jsonl
python3 -c '
import http.server, sys
class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(sys.argv[1], "ab") as f:
            f.write(body.replace(b"\n", b" ") + b"\n")
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *args): pass
http.server.HTTPServer(("127.0.0.1", 8099), Sink).serve_forever()
' data/demo-slack.jsonl &
MORE="$!"
AMFLAG=
if command -v prometheus-alertmanager >/dev/null; then
	rm -rf data/demo-am && mkdir -p data/demo-am
	printf 'route: {receiver: none}\nreceivers: [{name: none}]\n' >data/demo-am/alertmanager.yml
	prometheus-alertmanager --config.file=data/demo-am/alertmanager.yml --storage.path=data/demo-am \
		--web.listen-address=127.0.0.1:9093 --cluster.listen-address= >data/demo-am.log 2>&1 &
	MORE="$MORE $!"
	AMFLAG=--notifier.alertmanager.urls=http://127.0.0.1:9093
	for _ in $(seq 1 50); do curl -fsS http://127.0.0.1:9093/-/ready >/dev/null 2>&1 && break; sleep 0.1; done
	echo "    with a local Alertmanager on 127.0.0.1:9093"
else
	echo "    (prometheus-alertmanager is not installed: Slack only; make test installs it)"
fi
bin/notifier --config.file deploy/demo.yaml --notifier.slack.webhook_url=http://127.0.0.1:8099/slack \
	--notifier.external_url=http://127.0.0.1:8081 $AMFLAG >data/demo-notifier.log 2>&1 &
MORE="$MORE $!"
for _ in $(seq 1 100); do
	[ -s data/demo-slack.jsonl ] && [ "$(wc -l <data/demo-slack.jsonl)" -ge 2 ] && break
	sleep 0.2
done
echo "==> Slack messages the notifier posted (Block Kit; header and values shown)"
python3 -c '
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    for b in m.get("blocks", []):
        if b["type"] == "header":
            print("    " + b["text"]["text"])
        elif b["type"] == "section" and "Values" in (b.get("text") or {}).get("text", ""):
            for v in b["text"]["text"].splitlines():
                print("      " + v)
' data/demo-slack.jsonl
if [ -n "$AMFLAG" ]; then
	echo "==> alerts in Alertmanager (GET /api/v2/alerts)"
	sleep 1
	curl -fsS http://127.0.0.1:9093/api/v2/alerts | python3 -c '
import json, sys
for a in json.load(sys.stdin):
    l = a["labels"]
    print("    %-22s %-8s endsAt %s  %s" % (l["alertname"], a["status"]["state"], a["endsAt"], {k: v for k, v in l.items() if k != "alertname"}))
'
fi
echo "==> notifier metrics"
curl -fsS http://127.0.0.1:8082/metrics | grep -E '^vigia_notifier_notifications_total' | sed 's/^/    /'
echo "==> starting the control API with deploy/routes.example.yaml (logs: data/demo-control.log)"
# A stand-in sender on 127.0.0.1:8098: it checks the signature of every
# route-change webhook (docs/webhooks.md) and keeps the verdict and body.
rm -f data/demo-sender.jsonl
python3 -c '
import hashlib, hmac, http.server, json, sys, time
class Sender(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        sig = dict(p.split("=", 1) for p in self.headers.get("Vigia-Signature", "").split(","))
        want = hmac.new(b"demo-webhook-secret", sig.get("t", "").encode() + b"." + body, hashlib.sha256).hexdigest()
        ok = hmac.compare_digest(want, sig.get("v1", "")) and abs(time.time() - int(sig.get("t", "0"))) < 300
        with open(sys.argv[1], "a") as f:
            f.write(json.dumps({"signature_ok": ok, "change": json.loads(body)}) + "\n")
        self.send_response(204 if ok else 401); self.end_headers()
    def log_message(self, *args): pass
http.server.HTTPServer(("127.0.0.1", 8098), Sender).serve_forever()
' data/demo-sender.jsonl &
MORE="$MORE $!"
bin/control check deploy/routes.example.yaml | sed 's/^/    /'
bin/control --config.file deploy/demo.yaml >data/demo-control.log 2>&1 &
MORE="$MORE $!"
CTL=http://127.0.0.1:8084
for _ in $(seq 1 100); do curl -fsS "$CTL/-/ready" >/dev/null 2>&1 && break; sleep 0.1; done
OPS='Authorization: Bearer demo-operator-token-0123456789'
SENDER='Authorization: Bearer demo-sender-token-0123456789'
for _ in $(seq 1 50); do
	curl -fsS -H "$OPS" "$CTL/api/v1/audit" | grep -q '"outcome"' && break
	sleep 0.2
done
echo "==> what the automation did with the alerts' actions (GET /api/v1/audit)"
curl -fsS -H "$OPS" "$CTL/api/v1/audit" | python3 -c '
import json, sys
for e in reversed(json.load(sys.stdin)["entries"]):
    print("    %-8s %-22s %-26s %s" % (e["outcome"], e["action"], e["target"], e.get("reason", "")[:70]))
'
showpick() {
	curl -fsS -X POST -H "$SENDER" "$CTL/api/v1/routes/sales/pick" | python3 -c '
import json, sys
a = json.load(sys.stdin)
b = a.get("budget") or {}
print("    %s %s rate %s/s %s" % (a["channel"], a.get("phone_number_id", ""), b.get("rate", "-"), a.get("reason", "")))'
}
echo "==> four picks for use case sales (weighted 1:3; number 922 throttled to 40/s by the rule)"
for _ in 1 2 3 4; do showpick; done
echo "==> an operator switches sales to the reserve number, with a reason"
curl -fsS -H "$OPS" -d '{"to":"106540352242924","reason":"demo: INC-1 number 922 throttled"}' "$CTL/api/v1/routes/sales/switch" |
	python3 -c 'import json,sys; r=json.load(sys.stdin); print("    %s, %d change(s), route version %d" % (r["outcome"], len(r["changes"]), r["seq"]))'
showpick
echo "==> a switch to a number outside the use case is refused (a JSON problem), and nothing changes"
printf '    '
curl -sS -w ' (HTTP %{http_code})' -H "$OPS" -d '{"to":"999"}' "$CTL/api/v1/routes/sales/switch" | tr -d '\n'
echo
for _ in $(seq 1 50); do [ -s data/demo-sender.jsonl ] && [ "$(wc -l <data/demo-sender.jsonl)" -ge 3 ] && break; sleep 0.2; done
echo "==> webhooks the stand-in sender received (signature checked)"
python3 -c '
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line); c = m["change"]
    route = c.get("route") or {}
    print("    signature %-3s %-15s %-18s use case %-8s preferred %s" % ("ok" if m["signature_ok"] else "BAD", c["type"], c["action"], c.get("use_case", "-"), route.get("preferred", "-")))
' data/demo-sender.jsonl
echo "==> starting the ClickHouse sink on embedded chDB (logs: data/demo-sink.log)"
bin/sink --config.file deploy/demo.yaml --clickhouse.path=data/demo-chdb >data/demo-sink.log 2>&1 &
MORE="$MORE $!"
Q=http://127.0.0.1:8083/api/v1/query
for _ in $(seq 1 100); do
	n=$(curl -fsS "$Q" --data-binary 'SELECT count() FROM vigia.alerts' 2>/dev/null || echo 0)
	[ "${n:-0}" -ge 3 ] && break
	sleep 0.2
done
echo "==> history in ClickHouse (POST /api/v1/query on the sink; docs/queries.md has more)"
echo "    events by kind (the sample payloads carry 2025 timestamps, beyond the 90-day retention: ClickHouse drops them on insert):"
curl -fsS "$Q" --data-binary 'SELECT kind, count() FROM vigia.events GROUP BY kind ORDER BY kind' | sed 's/^/      /'
echo "    failures per number and error code, from the per-minute rollups:"
curl -fsS "$Q" --data-binary "SELECT phone_number_id, error_code, sum(failed) FROM vigia.rollup_minute WHERE failed > 0 GROUP BY phone_number_id, error_code ORDER BY 3 DESC LIMIT 3" | sed 's/^/      /'
echo "    alert state changes:"
curl -fsS "$Q" --data-binary "SELECT alertname, state, eval_time FROM vigia.alerts ORDER BY eval_time, alertname" | sed 's/^/      /'
for _ in $(seq 1 50); do
	n=$(curl -fsS "$Q" --data-binary 'SELECT count() FROM vigia.actions' 2>/dev/null || echo 0)
	[ "${n:-0}" -ge 2 ] && break
	sleep 0.2
done
echo "    route changes (the control API's audit, copied to ClickHouse):"
curl -fsS "$Q" --data-binary "SELECT action, actor_kind, target, dry_run FROM vigia.actions ORDER BY time, id" | sed 's/^/      /'
echo "==> stopping ingest, evaluator, notifier, control and sink (their data stays in $DATA and data/demo-chdb)"
kill $MORE $EVPID "$PID" 2>/dev/null || true
wait $MORE $EVPID "$PID" 2>/dev/null || true
MORE= EVPID= PID=

echo "==> the quickstart drill: all of Vigia in one process (bin/vigia), an incident played through it"
echo "    (deploy/drills/quickstart.yaml: a sender asks pick for every message; its primary number gets"
echo "    blocked; Vigia detects it and fails the use case over; the report says how fast)"
bin/vigia simulate -start -fresh --config.file deploy/drills/vigia.yaml -json data/quickstart-report.json \
	deploy/drills/quickstart.yaml | sed 's/^/    /'
echo "==> done; the quickstart report as JSON is in data/quickstart-report.json (docs/simulator.md)"

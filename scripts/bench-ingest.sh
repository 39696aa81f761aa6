#!/usr/bin/env bash
# Ingest end to end: one ingest process publishing with acks=all to a real
# Apache Kafka broker on this machine, loaded by vigia-load from a second
# process. Each scenario runs RUNS times (default 3); the report gives every
# run and the median. Figures go to docs/BENCHMARKS.md with this command.
#
#   scripts/bench-ingest.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
PORT=19492
HTTP=127.0.0.1:18480
DIR=$(mktemp -d /tmp/vigia-bench-XXXXXX)

go build -o bin/ ./cmd/ingest ./cmd/vigia-load
scripts/kafka.sh start --port "$PORT" --dir "$DIR/kafka" >/dev/null
cat >"$DIR/ingest.yaml" <<YAML
http: {listen: "$HTTP"}
kafka: {brokers: ["127.0.0.1:$PORT"], partitions: 6}
meta: {verify_token: bench, app_secrets: [bench-secret]}
privacy: {pseudonym_key: bench-pseudonym-key-0123456789abcdef0123}
log: {level: warn}
YAML
bin/ingest --config.file "$DIR/ingest.yaml" 2>"$DIR/ingest.log" &
INGEST=$!
cleanup() {
	kill "$INGEST" 2>/dev/null || true
	wait "$INGEST" 2>/dev/null || true
	scripts/kafka.sh stop --port "$PORT" --dir "$DIR/kafka" >/dev/null || true
	rm -rf "$DIR"
}
trap cleanup EXIT
for _ in $(seq 1 100); do curl -fsS "http://$HTTP/-/ready" >/dev/null 2>&1 && break; sleep 0.2; done

scenario() { # name, vigia-load flags...
	local name=$1
	shift
	for i in $(seq 1 "$RUNS"); do
		bin/vigia-load -url "http://$HTTP/webhooks/whatsapp" -secret bench-secret -json "$@" >"$DIR/$name.$i.json" || true
	done
	python3 - "$name" "$DIR/$name" "$RUNS" <<'PY'
import json, statistics, sys
name, prefix, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
rs = [json.load(open(f"{prefix}.{i}.json")) for i in range(1, runs + 1)]
def med(f): return statistics.median(f(r) for r in rs)
print(f"{name}: median of {runs}: {med(lambda r: r['events_per_s']):.0f} events/s, "
      f"p50 {med(lambda r: r['latency']['p50_ms']):.1f} ms, p99 {med(lambda r: r['latency']['p99_ms']):.1f} ms, "
      f"non-200 {sum(r['requests'] - r['ok'] for r in rs)}")
for i, r in enumerate(rs, 1):
    print(f"  run {i}: {r['events_per_s']:.0f} events/s, p50 {r['latency']['p50_ms']:.1f} ms, "
          f"p99 {r['latency']['p99_ms']:.1f} ms, max {r['latency']['max_ms']:.1f} ms, {r['ok']}/{r['requests']} ok")
PY
}

scenario max-batch1000 -batch 1000 -concurrency 8 -duration 15s -warmup 3s
scenario max-batch100 -batch 100 -concurrency 32 -duration 15s -warmup 3s
scenario rate10k-batch100 -rate 10000 -batch 100 -concurrency 32 -duration 20s -warmup 3s
scenario rate10k-batch1000 -rate 10000 -batch 1000 -concurrency 32 -duration 20s -warmup 3s

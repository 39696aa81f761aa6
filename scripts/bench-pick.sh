#!/usr/bin/env bash
# Load test of the control API's pick (docs/BENCHMARKS.md, "Control API"):
# starts ingest (for its embedded broker) and control with the demo
# configuration in a scratch data directory, then drives
# POST /api/v1/routes/sales/pick with wrk (Debian package wrk) from a
# second process and prints wrk's report with its latency percentiles.
#
#   scripts/bench-pick.sh [duration] [connections] [recipients]
#
# recipients > 0 sends a recipient id per request (daily unique-recipient
# budgets on; the routes file's portfolio limit applies); 0 sends none.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-20s}
CONNS=${2:-32}
RECIPIENTS=${3:-0}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }

mkdir -p bin
go build -o bin/ ./cmd/ingest ./cmd/control
DATA=$(mktemp -d)
trap 'kill $PIDS 2>/dev/null || true; wait $PIDS 2>/dev/null || true; rm -rf "$DATA"' EXIT
PIDS=
# A routes file without portfolio limits and with rates far above the
# load, so that every pick is a WhatsApp number (the budget code still
# runs: token buckets per number).
sed -e 's|rate: [0-9]*/s|rate: 1000000/s|' -e 's|messaging_limit: 10000|messaging_limit: unlimited|' \
	deploy/routes.example.yaml >"$DATA/routes.yaml"
bin/ingest --config.file deploy/demo.yaml --kafka.embedded.data_dir="$DATA/kafka" --kafka.embedded.port=19193 \
	--http.listen=127.0.0.1:18080 >"$DATA/ingest.log" 2>&1 &
PIDS="$PIDS $!"
for _ in $(seq 1 100); do curl -fsS http://127.0.0.1:18080/-/ready >/dev/null 2>&1 && break; sleep 0.1; done
bin/control --config.file deploy/demo.yaml --kafka.embedded.port=19193 --control.listen=127.0.0.1:18084 \
	--control.routes_file="$DATA/routes.yaml" --log.level=warn >"$DATA/control.log" 2>&1 &
PIDS="$PIDS $!"
for _ in $(seq 1 100); do curl -fsS http://127.0.0.1:18084/-/ready >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS http://127.0.0.1:18084/-/ready >/dev/null || { cat "$DATA/control.log"; exit 1; }

cat >"$DATA/pick.lua" <<LUA
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer demo-sender-token-0123456789"
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
  if $RECIPIENTS > 0 then
    n = n + 1
    return wrk.format(nil, nil, nil, string.format('{"recipient":"user-%d"}', n % $RECIPIENTS))
  end
  return wrk.format()
end
done = function(summary, latency, requests)
  io.write(string.format("requests/s %.0f  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  non-2xx %d  errors %d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency:percentile(99.9) / 1000, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
# A first short run warms up the connections and the Go runtime.
wrk -t1 -c"$CONNS" -d2s -s "$DATA/pick.lua" http://127.0.0.1:18084/api/v1/routes/sales/pick >/dev/null
wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s "$DATA/pick.lua" http://127.0.0.1:18084/api/v1/routes/sales/pick

#!/usr/bin/env bash
# The README's test command (make test): formatting and vet, then every test,
# with the integration tests against a real Apache Kafka broker, embedded
# ClickHouse (chDB, whose library scripts/chdb.sh fetches) and a real
# Alertmanager enabled. The broker jars are fetched once into the cache
# (scripts/kafka.sh fetch); Alertmanager is Debian's prometheus-alertmanager,
# installed here when missing; Schemathesis (PyPI) goes into a cached venv
# for the control API's property-based test. The tests start and stop their own servers on
# 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> gofmt and go vet"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "not gofmt-ed:"; echo "$unformatted"; exit 1
fi
go vet ./...

echo "==> shipped rules: check and unit tests; the example routes file"
go run ./cmd/evaluator check rules/
go run ./cmd/evaluator test rules/tests/*.yaml
go run ./cmd/control check deploy/routes.example.yaml

echo "==> fetching the Kafka broker (cached)"
scripts/kafka.sh fetch

echo "==> embedded ClickHouse library (chDB, cached)"
CHDB_LIB_PATH="$(scripts/chdb.sh fetch)"
export CHDB_LIB_PATH

echo "==> Alertmanager (Debian package prometheus-alertmanager)"
if ! command -v prometheus-alertmanager >/dev/null; then
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
		echo "prometheus-alertmanager is missing: install the Debian package (apt-get install prometheus-alertmanager)" >&2
		exit 1
	fi
	# The package would start its own service on every interface; the
	# tests start Alertmanager themselves on 127.0.0.1. Forbid service
	# starts during the install (policy-rc.d), unless a policy exists.
	policy=
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		policy=/usr/sbin/policy-rc.d
		trap 'rm -f "$policy"' EXIT
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy"
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus-alertmanager ||
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus-alertmanager; }
	[ -z "$policy" ] || { rm -f "$policy"; trap - EXIT; }
fi
prometheus-alertmanager --version 2>&1 | head -1

echo "==> Schemathesis (PyPI, cached venv in ~/.cache/vigia/schemathesis), for the control API"
scripts/schemathesis.sh install

echo "==> go test (race detector on; real Kafka, Alertmanager and Schemathesis tests on)"
export VIGIA_TEST_REAL_KAFKA=1 VIGIA_TEST_REAL_ALERTMANAGER=1 VIGIA_TEST_SCHEMATHESIS=1
go test -race -count=1 -timeout 20m ./...

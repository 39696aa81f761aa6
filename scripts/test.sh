#!/usr/bin/env bash
# The README's test command (make test): formatting and vet, then every test,
# with the integration tests against a real Apache Kafka broker enabled. The
# broker jars are fetched once into the cache (scripts/kafka.sh fetch); the
# tests start and stop their own broker on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> gofmt and go vet"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "not gofmt-ed:"; echo "$unformatted"; exit 1
fi
go vet ./...

echo "==> shipped rules: check and unit tests"
go run ./cmd/evaluator check rules/
go run ./cmd/evaluator test rules/tests/*.yaml

echo "==> fetching the Kafka broker (cached)"
scripts/kafka.sh fetch

echo "==> go test (race detector on, real-broker integration tests on)"
export VIGIA_TEST_REAL_KAFKA=1
go test -race -count=1 -timeout 20m ./...

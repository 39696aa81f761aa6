# Vigia: the two commands of the README, and a few helpers.
#   make demo   builds Vigia and shows it working on the embedded defaults
#   make test   runs the whole test suite, real Kafka broker included

GO ?= go

.PHONY: demo test unit build vet fmt bench clean

demo:
	scripts/demo.sh

test:
	scripts/test.sh

# unit tests only: no real broker (integration tests are skipped and say so)
unit:
	CHDB_LIB_PATH="$$(scripts/chdb.sh fetch)" $(GO) test ./...

build:
	mkdir -p bin && $(GO) build -o bin/ ./cmd/...

vet:
	test -z "$$(gofmt -l .)" || (gofmt -l . && exit 1)
	$(GO) vet ./...

bench:
	$(GO) test -run XXX -bench . -benchtime 2s ./internal/...

clean:
	rm -rf bin data

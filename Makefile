# authex: `make run` builds and serves on config.example.yaml's defaults;
# `make test` runs every Go test (race detector on).
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
CONFIG    ?= config.example.yaml

.PHONY: build run test e2e vet lint fmt clean bench bench-go fuzz

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/authex ./cmd/authex

# --dev mounts the authex emulator (sign in with any email, no Google
# credentials); it is refused unless authex listens on loopback.
run: build
	AUTHEX_LISTEN=$${AUTHEX_LISTEN:-127.0.0.1:8080} ./bin/authex serve -config $(CONFIG) --dev

test: vet
	$(GO) test -race -count=1 ./...

# `make fuzz`: every Go fuzz target for FUZZTIME each (default 10s), as CI
# runs them after `make test`; a crasher fails it (see .ci/fuzz).
FUZZTIME  ?= 10s
fuzz:
	FUZZTIME=$(FUZZTIME) .ci/fuzz

# The browser end-to-end tests of the Next-Auth path, on @authex/next
# (sdk/next): Auth.js v5 (examples/nextjs), then next-auth v4
# (examples/nextjs-v4). Needs Node, npm and Debian's chromium; see
# docs/nextjs.md. Not part of make test.
e2e: build
	examples/nextjs/e2e/run.sh examples/nextjs
	examples/nextjs/e2e/run.sh examples/nextjs-v4

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...

# `make bench`: the load run against the real binary (docs/performance.md):
# bbolt, PostgreSQL (one instance, and two on one database) at 1, 16 and 64
# connections, one table at the end, also written to bench-results.txt.
# BENCH_QUICK=1 runs a small store, one run per row and PostgreSQL at 64
# connections only, in under a minute; the full run adds a 1,000,000-user
# store and takes several minutes. PostgreSQL: AUTHEX_BENCH_PG_DSN (default
# the server .ci/run uses); BENCH_FLAGS="-pg-dsn ''" leaves it out.
# BENCH_COMPARE=<git ref> also runs the bbolt rows with that commit's
# authex, in the same run (before/after). BENCH_FLAGS passes flags to
# cmd/authex-bench (e.g. BENCH_FLAGS='-profile bench-profiles'). Never part
# of `make test`.
bench: build
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/authex-bench ./cmd/authex-bench
	$(if $(BENCH_COMPARE),src=$$(mktemp -d) && git archive $(BENCH_COMPARE) | tar -x -C $$src && \
		(cd $$src && CGO_ENABLED=0 $(GO) build -trimpath -o $(CURDIR)/bin/authex-compare ./cmd/authex); \
		status=$$?; rm -rf $$src; exit $$status)
	./bin/authex-bench -bin bin/authex $(if $(BENCH_COMPARE),-compare bin/authex-compare) $(BENCH_FLAGS)

# `make bench-go`: the testing.B benchmarks of the hot paths. The
# PostgreSQL store's run against AUTHEX_TEST_POSTGRES_DSN and skip without it.
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./providers/ ./exchange/ ./storage/bolt/ ./storage/postgres/ ./web/

lint: vet
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

fmt:
	gofmt -w $$(find . -name '*.go' -not -path './examples/*')

clean:
	rm -rf bin

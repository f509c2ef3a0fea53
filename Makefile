# dynamerge build and test entry points. `make test` is what CI runs
# (.ci/run); it works from a fresh clone, as root or not, with network access
# to the Go proxy, Debian apt and npm only. Nothing is written outside the
# repository except tool caches (Go's build cache; npm's cache is kept in
# .cache/, which git ignores).

SHELL       := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS   += --no-print-directory

GO          ?= go
NPM         ?= npm
PKGS        ?= ./...
# Whole-run bound of `go test`: generous, so that a hang fails loudly
# instead of eating the CI job's time.
TEST_TIMEOUT ?= 20m
LONG_TIMEOUT ?= 60m
BENCH       ?= .
BENCHTIME   ?= 1s
FUZZTIME    ?= 10s
# Each fuzz target's share of `make test` (0 skips the step).
FUZZTIME_TEST ?= 5s
# Jobs `make test` runs at once (the builds, one go test per package, vet,
# fuzzing, the browser suites); empty means one per core.
TEST_JOBS   ?=
ARGS        ?=
# make soak: seeded convergence sessions and SIGKILLs of the crash test
# (SOAK_SEED=0 picks a seed and prints it), each test bounded by its timeout.
SOAK_SESSIONS ?= 10000
SOAK_KILLS    ?= 100
SOAK_SEED     ?= 0
SOAK_CONVERGE_TIMEOUT ?= 75m
SOAK_CRASH_TIMEOUT    ?= 20m

CACHE       := $(CURDIR)/.cache
export npm_config_cache := $(CACHE)/npm
export npm_config_update_notifier := false
export npm_config_fund := false
export npm_config_audit := false

# DynamoDB Local ships inside this npm package (see DESIGN.md).
DDB_PKG     := amplify-dynamodb-simulator@2.9.30
DDB_DIR     := $(CACHE)/dynamodb-local

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | sort | \
		awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

## ---- dependencies -------------------------------------------------------

.PHONY: deps deps-node deps-browser deps-chromium deps-dynamodb deps-bench
deps: deps-node deps-browser deps-dynamodb ## install everything the tests need (idempotent)
	@$(GO) mod download

deps-node: ## npm ci in tools/node (Automerge JS: golden data and the Go tests' oracle, internal/amjs)
	@scripts/npm-install.sh tools/node

deps-browser: ## npm ci in browser/, browser/e2e/ (playwright-core) and the React example, and Chromium
	@scripts/npm-install.sh browser
	@scripts/npm-install.sh browser/e2e
	@scripts/npm-install.sh browser/examples/react-todos
	@$(MAKE) deps-chromium

deps-chromium: ## install Debian's chromium for the browser tests (apt-get, needs root)
	@scripts/install-chromium.sh

deps-dynamodb: ## fetch DynamoDB Local into .cache/ (and a Java runtime when missing)
	@scripts/dynamodb-local.sh fetch "$(DDB_PKG)" "$(DDB_DIR)"

deps-bench: deps-dynamodb ## npm ci in benchmarks/peer (automerge-repo, the peer comparison)
	@scripts/npm-install.sh benchmarks/peer

## ---- build and run ------------------------------------------------------

.PHONY: build run
build: ## build bin/dynamerge
	$(GO) build -o bin/dynamerge ./cmd/dynamerge

run: ## run the server on the embedded store (ARGS="--addr 127.0.0.1:9090" for flags)
	$(GO) run ./cmd/dynamerge $(ARGS)

## ---- checks -------------------------------------------------------------

.PHONY: test test-short test-long soak vet fmt-check bench bench-full bench-go fuzz
# test.sh runs `make deps` itself, so that .cache/test.log holds its output too.
test: ## what CI runs: deps, gofmt, vet, go test -race, short fuzzing, browser unit and Chromium tests
	@DEPS="$(MAKE) deps" GO_TEST_FLAGS="-race -count=1" FUZZTIME_TEST="$(FUZZTIME_TEST)" BROWSER_TESTS=1 TEST_JOBS="$(TEST_JOBS)" \
		scripts/test.sh "$(GO)" "$(TEST_TIMEOUT)" "$(DDB_DIR)" $(PKGS)

test-short: ## fast inner loop: go test -short, no -race, no deps
	$(GO) test -short -count=1 $(PKGS)

test-long: ## the long variants of the end-to-end tests (go test ./e2e/ -long)
	@DEPS="$(MAKE) deps" GO_TEST_FLAGS="-race -count=1" TEST_ARGS=-long TEST_JOBS="$(TEST_JOBS)" \
		scripts/test.sh "$(GO)" "$(LONG_TIMEOUT)" "$(DDB_DIR)" ./e2e/

# Not part of make test: about 20 minutes on 2 cores, bounded by the two
# timeouts. No -race (it would multiply the time by five); make test runs
# both tests with -race at their small default sizes.
soak: ## convergence x10,000 seeded sessions, crash test x100 SIGKILLs (~20 min, at most 95)
	$(GO) test -count=1 -v -timeout=$(SOAK_CONVERGE_TIMEOUT) -run='^TestConvergence$$' ./e2e/ -args -sessions=$(SOAK_SESSIONS) -seed=$(SOAK_SEED)
	$(GO) test -count=1 -v -timeout=$(SOAK_CRASH_TIMEOUT) -run='^TestCrashRecovery$$' ./e2e/ -args -kills=$(SOAK_KILLS) -seed=$(SOAK_SEED)

vet: ## go vet
	$(GO) vet $(PKGS)

fmt-check: ## fail when a Go file is not gofmt'd
	@out="$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go'))"; \
	if [[ -n "$$out" ]]; then echo "not gofmt'd:"; echo "$$out"; exit 1; fi

# The benchmark suite (benchmarks/cmd/dynabench): real servers over HTTP,
# dynamerge and the last-writer-wins baseline, on bbolt and DynamoDB Local;
# writes results.json and report.html into benchmarks/results/<profile>/.
# BENCH_ARGS passes flags, e.g. BENCH_ARGS="-stores bolt -scenarios breadth".
bench: deps-bench ## the quick benchmark suite (a few minutes): benchmarks/results/quick/report.html
	$(GO) run ./benchmarks/cmd/dynabench -profile quick -out benchmarks/results/quick $(BENCH_ARGS)

bench-full: deps-bench ## the full benchmark suite (long): benchmarks/results/full/report.html
	$(GO) run ./benchmarks/cmd/dynabench -profile full -out benchmarks/results/full $(BENCH_ARGS)

bench-go: ## every Go benchmark of go test (BENCH=regexp, BENCHTIME=1s)
	$(GO) test -run='^$$' -bench='$(BENCH)' -benchtime=$(BENCHTIME) -benchmem $(PKGS)

fuzz: ## run every Fuzz target for FUZZTIME (10s) each
	@scripts/fuzz.sh "$(GO)" "$(FUZZTIME)" $(PKGS)

## ---- housekeeping -------------------------------------------------------

.PHONY: clean
clean: ## remove build outputs (keeps .cache/ and dynamerge-data/)
	rm -rf bin

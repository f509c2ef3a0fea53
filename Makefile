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
ARGS        ?=

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

.PHONY: deps deps-node deps-browser deps-chromium deps-dynamodb
deps: deps-node deps-browser deps-dynamodb ## install everything the tests need (idempotent)
	@$(GO) mod download

deps-node: ## npm ci in tools/node (Automerge JS for golden data and the differential tests)
	@scripts/npm-install.sh tools/node

# Hook for the browser library: installs its npm dependencies and Chromium
# once browser/package.json exists; a no-op before.
deps-browser:
	@if [[ -f browser/package.json ]]; then \
		scripts/npm-install.sh browser && $(MAKE) deps-chromium; \
	fi

deps-chromium: ## install Debian's chromium for the browser tests (apt-get, needs root)
	@scripts/install-chromium.sh

# Hook for store/dynamo: fetches DynamoDB Local into .cache/ once the
# DynamoDB store exists (or when DYNAMODB=1 asks for it); a no-op before.
deps-dynamodb:
	@if [[ -d store/dynamo || "$${DYNAMODB:-}" == 1 ]]; then \
		scripts/dynamodb-local.sh fetch "$(DDB_PKG)" "$(DDB_DIR)"; \
	fi

## ---- build and run ------------------------------------------------------

.PHONY: build run
build: ## build bin/dynamerge
	$(GO) build -o bin/dynamerge ./cmd/dynamerge

run: ## run the server on the embedded store (ARGS="--addr 127.0.0.1:9090" for flags)
	$(GO) run ./cmd/dynamerge $(ARGS)

## ---- checks -------------------------------------------------------------

.PHONY: test test-short test-long vet fmt-check bench fuzz
test: deps ## what CI runs: deps, gofmt, go vet, go test -race on every package, with a summary
	@scripts/test.sh "$(GO)" "$(TEST_TIMEOUT)" "$(DDB_DIR)" -race -count=1 $(PKGS)

test-short: ## fast inner loop: go test -short, no -race, no deps
	$(GO) test -short -count=1 $(PKGS)

test-long: deps ## the long variants of the end-to-end tests (go test ./e2e/ -long)
	@scripts/test.sh "$(GO)" "$(LONG_TIMEOUT)" "$(DDB_DIR)" -race -count=1 ./e2e/ -args -long

vet: ## go vet
	$(GO) vet $(PKGS)

fmt-check: ## fail when a Go file is not gofmt'd
	@out="$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go'))"; \
	if [[ -n "$$out" ]]; then echo "not gofmt'd:"; echo "$$out"; exit 1; fi

bench: ## run every benchmark (BENCH=regexp, BENCHTIME=1s)
	$(GO) test -run='^$$' -bench='$(BENCH)' -benchtime=$(BENCHTIME) -benchmem $(PKGS)

fuzz: ## run every Fuzz target for FUZZTIME (10s) each
	@scripts/fuzz.sh "$(GO)" "$(FUZZTIME)" $(PKGS)

## ---- housekeeping -------------------------------------------------------

.PHONY: clean
clean: ## remove build outputs (keeps .cache/ and dynamerge-data/)
	rm -rf bin

# The two commands a fresh clone needs:
#   make run    serve the API on http://localhost:3000 from a local PostgreSQL with the default dump
#   make test   run every test against a throwaway PostgreSQL the tests start themselves
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
# Where go-installed tools are cached; .ci/run points this outside the clone so CI reuses them.
TOOLS_DIR ?= $(CURDIR)/.tools
export TOOLS_DIR

TFLINT_VERSION     := v0.64.0
TRIVY_VERSION      := v0.74.0
ACTIONLINT_VERSION := v1.7.12
GOLANGCI_VERSION   := v2.15.0
# Redocly CLI 1.34 runs on the Node.js 18 that Debian 12 and Ubuntu 24.04 install (2.x needs 20.19).
REDOCLY_VERSION    := 1.34.20

# make run settings: the data of the local database stays in .data/ between runs.
HTTP_ADDR ?= :3000
PG_PORT   ?= 0
SEED_FILE ?= db/seed/rates.sql

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

.PHONY: build
build: ## build bin/rates (static, as in the container image)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/rates ./cmd/rates

.PHONY: run
run: build ## serve the API on localhost:3000 with a local PostgreSQL and the default dump
	$(GO) build -o bin/devdb ./cmd/devdb
	HTTP_ADDR='$(HTTP_ADDR)' SEED_FILE='$(SEED_FILE)' MIGRATE_ON_START=true LOG_FORMAT=$${LOG_FORMAT:-text} \
		bin/devdb -data .data/postgres -port $(PG_PORT) -- bin/rates serve

.PHONY: test
test: ## run every test (starts its own throwaway PostgreSQL), then the checks of the non-Go files
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...
	@# Every Go benchmark once (the 1M-row load skipped), so that `make bench` cannot break unseen.
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 1x -short -timeout 10m ./...
	cd checks && $(GO) vet ./... && $(GO) test -count=1 -timeout 20m ./...

.PHONY: race
race: ## run the tests with the race detector
	$(GO) test -count=1 -race -timeout 30m ./...

FUZZTIME ?= 30s
.PHONY: fuzz
fuzz: ## run each fuzz target for FUZZTIME (default 30s)
	$(GO) test -run '^$$' -fuzz '^FuzzParseRatesQuery$$' -fuzztime $(FUZZTIME) ./internal/api
	$(GO) test -run '^$$' -fuzz '^FuzzSplitQuery$$' -fuzztime $(FUZZTIME) ./internal/api
	$(GO) test -run '^$$' -fuzz '^FuzzScanner$$' -fuzztime $(FUZZTIME) ./internal/pgdump
	$(GO) test -run '^$$' -fuzz '^FuzzParseCSV$$' -fuzztime $(FUZZTIME) ./internal/ingest/csvbatch
	$(GO) test -run '^$$' -fuzz '^FuzzParseManifest$$' -fuzztime $(FUZZTIME) ./internal/ingest
	$(GO) test -run '^$$' -fuzz '^FuzzParseReference$$' -fuzztime $(FUZZTIME) ./internal/ingest
	$(GO) test -run '^$$' -fuzz '^FuzzParseDay$$' -fuzztime $(FUZZTIME) ./internal/domain

BENCH_DURATION ?= 10s
.PHONY: bench
bench: build ## measure: Go benchmarks, then the service under wrk (start-up, seeding, load, 10M-price scale run)
	@command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk)
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./internal/api ./internal/store ./internal/ingest
	$(GO) run ./cmd/ratesbench -rates bin/rates -duration $(BENCH_DURATION) -scale -out .data/benchmarks-latest.md

# make bench-ingest BENCH_INGEST_ARGS='-batch-rows 200000 -batch-shape month' for a short run.
BENCH_INGEST_ARGS ?=
.PHONY: bench-ingest
bench-ingest: build ## measure 2M-row manifests of 8 parts (one month, two years, concentrated): staged by 1, 2 and 4 loaders, today's rates ingest --manifest, psql \copy, the database's floors
	$(GO) run ./cmd/ratesbench -rates bin/rates -sections batches -out .data/bench-ingest-latest.md $(BENCH_INGEST_ARGS)

.PHONY: dump
dump: ## regenerate the default dump db/seed/rates.sql
	$(GO) run ./cmd/gendump -out db/seed/rates.sql

.PHONY: tools
tools: $(TOOLS_DIR)/bin/tflint-$(TFLINT_VERSION) $(TOOLS_DIR)/bin/trivy-$(TRIVY_VERSION) $(TOOLS_DIR)/bin/actionlint-$(ACTIONLINT_VERSION) $(TOOLS_DIR)/bin/golangci-lint-$(GOLANGCI_VERSION) $(TOOLS_DIR)/bin/redocly-$(REDOCLY_VERSION) ## build or install the lint tools once into TOOLS_DIR

# Each tool is built once per version; the versioned marker file tells make it is there.
$(TOOLS_DIR)/bin/tflint-$(TFLINT_VERSION):
	GOBIN=$(TOOLS_DIR)/bin $(GO) install github.com/terraform-linters/tflint@$(TFLINT_VERSION)
	touch $@
$(TOOLS_DIR)/bin/trivy-$(TRIVY_VERSION):
	GOBIN=$(TOOLS_DIR)/bin GOEXPERIMENT=jsonv2 $(GO) install github.com/aquasecurity/trivy/cmd/trivy@$(TRIVY_VERSION)
	touch $@
$(TOOLS_DIR)/bin/actionlint-$(ACTIONLINT_VERSION):
	GOBIN=$(TOOLS_DIR)/bin $(GO) install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)
	touch $@
$(TOOLS_DIR)/bin/golangci-lint-$(GOLANGCI_VERSION):
	GOBIN=$(TOOLS_DIR)/bin $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION)
	touch $@
$(TOOLS_DIR)/bin/redocly-$(REDOCLY_VERSION):
	npm install --global --prefix $(TOOLS_DIR) --no-audit --no-fund @redocly/cli@$(REDOCLY_VERSION)
	touch $@

.PHONY: lint
lint: tools ## tracked file sizes, gofmt, golangci-lint (both modules), shellcheck, redocly on the OpenAPI file, trivy on the Dockerfile, the Terraform checks (fmt, validate, test, tflint, trivy), actionlint
	bash .ci/large-files.sh
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
		if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(TOOLS_DIR)/bin/golangci-lint run --allow-parallel-runners ./...
	cd checks && $(TOOLS_DIR)/bin/golangci-lint run --allow-parallel-runners --config ../.golangci.yml ./...
	shellcheck $$(git ls-files '*.sh' .ci/run)
	bash .ci/openapi-lint.sh
	$(TOOLS_DIR)/bin/trivy config --skip-check-update --skip-version-check --disable-telemetry \
		--misconfig-scanners dockerfile --severity HIGH,CRITICAL --exit-code 1 Dockerfile
	bash .ci/terraform-checks.sh
	$(TOOLS_DIR)/bin/actionlint -color

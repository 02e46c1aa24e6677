# Sentra: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
NPM ?= npm
CHROMIUM_PATH ?= /usr/bin/chromium
export CHROMIUM_PATH

.PHONY: run test test-rust test-web lint bench fuzz clean

## Build everything, start the mesh, the web apps and Envoy with demo data; Ctrl-C stops it all.
run:
	./scripts/run.sh

## The whole test suite: Rust against the local PostgreSQL, Redis, RabbitMQ and Envoy, then the
## web apps' unit tests and their browser tests in Chromium against the real mesh.
test: test-rust test-web

test-rust:
	$(CARGO) test --workspace --locked

test-web: web/node_modules/.package-lock.json
	@test -x "$(CHROMIUM_PATH)" || { echo "error: Chromium not found at $(CHROMIUM_PATH) (apt-get install chromium, or set CHROMIUM_PATH)" >&2; exit 1; }
	$(CARGO) build --locked -p sentra-mesh
	$(NPM) --prefix web run build
	$(NPM) --prefix web test
	$(NPM) --prefix web run e2e

## Node dependencies of the web apps, installed from the lock file when it changes.
web/node_modules/.package-lock.json: web/package-lock.json
	cd web && $(NPM) ci --no-fund --no-audit

## Contracts only grow: `buf breaking` (FILE rules) compares proto/ with the last commit, or with the
## one before it when proto/ has no uncommitted change (as in CI, where the tree is a clean clone).
BUF_BASE := $(shell git diff --quiet HEAD -- proto 2>/dev/null && echo HEAD~1 || echo HEAD)

## Formatting, clippy (warnings are errors), protobuf lint and breaking-change check, Envoy config
## validation, TypeScript.
lint: web/node_modules/.package-lock.json
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	buf lint
	buf breaking --against '.git#ref=$(BUF_BASE)'
	for f in deploy/envoy/envoy.yaml deploy/envoy/envoy.compose.yaml deploy/k8s/base/envoy.yaml; do \
	  envoy --mode validate -c $$f --log-level warn >/dev/null || exit 1; done
	$(NPM) --prefix web run typecheck
	./deploy/k8s/validate.sh

## Benchmarks (ratios against baselines measured in the same run); results under target/bench/.
bench: web/node_modules/.package-lock.json
	mkdir -p target/bench
	$(CARGO) bench --locked -p sentra-event-store
	$(CARGO) bench --locked -p sentra-sales
	$(CARGO) bench --locked -p sentra-gateway
	$(CARGO) bench --locked -p sentra-tenancy
	$(CARGO) bench --locked -p sentra-comm
	$(CARGO) build --locked -p sentra-mesh
	$(NPM) --prefix web run build
	$(NPM) --prefix web run bench
	@echo "Results: target/bench/*.md"

## Fuzzing (tools/fuzz): every target for FUZZ_SECONDS under libFuzzer, from the seeds and the
## corpus kept in target/fuzz; a failing input lands in tools/fuzz/fuzz/artifacts/<target>/ and
## belongs in tools/fuzz/regressions/<target>/ once fixed. cargo-fuzz wants nightly only for
## sanitizers; without them (-s none) stable works with RUSTC_BOOTSTRAP, and Sentra has no unsafe
## code of its own for a sanitizer to watch. Debug assertions (-a) make any integer overflow fail.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := guarded_call requests stored_events invoice_money
fuzz:
	command -v cargo-fuzz >/dev/null || $(CARGO) install --locked cargo-fuzz@0.13.2
	cp Cargo.lock tools/fuzz/fuzz/Cargo.lock
	$(CARGO) run --locked -q -p sentra-fuzz --bin sentra-fuzz-seeds target/fuzz/seeds
	for t in $(FUZZ_TARGETS); do mkdir -p target/fuzz/corpus/$$t; \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run --fuzz-dir tools/fuzz/fuzz --target-dir target/fuzz/build -s none -a \
	    $$t target/fuzz/corpus/$$t target/fuzz/seeds/$$t -- -max_total_time=$(FUZZ_SECONDS) || exit 1; done

## Remove build output and the local run directory.
clean:
	$(CARGO) clean
	rm -rf .run web/node_modules web/dashboard/dist web/portal/dist web/shared/src/gen

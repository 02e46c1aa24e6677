# Sentra: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: run test lint bench clean deps-check

## Build everything, start the five services and Envoy with demo data; Ctrl-C stops it all.
run:
	./scripts/run.sh

## The whole test suite, against the local PostgreSQL, Redis, RabbitMQ and Envoy.
test:
	$(CARGO) test --workspace --locked

## Formatting, clippy (warnings are errors), protobuf lint, Envoy config validation.
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	buf lint
	for f in deploy/envoy/envoy.yaml deploy/envoy/envoy.compose.yaml deploy/k8s/envoy.yaml; do \
	  envoy --mode validate -c $$f --log-level warn >/dev/null || exit 1; done

## Benchmarks (ratios against baselines measured in the same run); results under target/bench/.
bench:
	mkdir -p target/bench
	$(CARGO) bench --locked -p sentra-event-store
	$(CARGO) bench --locked -p sentra-sales
	$(CARGO) bench --locked -p sentra-gateway
	@echo "Results: target/bench/*.md"

## Remove build output and the local run directory.
clean:
	$(CARGO) clean
	rm -rf .run

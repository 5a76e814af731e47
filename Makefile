# cache-proxy — see README.md.
SWIFT ?= swift
CONFIG ?= config/flask-api.yaml
FLASK_DIR := examples/flask-api
VENV := $(FLASK_DIR)/.venv

.PHONY: test deps build release run bench bench-redis bench-redis-mixed bench-invalidation bench-stampede bench-eviction bench-coherence loadtest flask-venv clean

## Install missing system packages (libhiredis-dev, redis-server, …).
deps:
	@scripts/install-deps.sh

## Build (debug).
build: deps
	$(SWIFT) build

## Build the release binaries.
release: deps
	$(SWIFT) build -c release

## The example API's virtualenv (Flask, gunicorn, pytest…).
flask-venv: $(VENV)/.installed
$(VENV)/.installed: $(FLASK_DIR)/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r $(FLASK_DIR)/requirements.txt
	touch $@

## Every test: Swift unit, component and end-to-end tests (real redis-server, real HTTP),
## then the example API's pytest suite.
test: deps flask-venv
	$(SWIFT) test
	cd $(FLASK_DIR) && .venv/bin/python -m pytest -q

## Start Redis (if none answers), the example API and cache-proxy in front of it. Ctrl-C stops all.
run: release flask-venv
	@scripts/run.sh $(CONFIG)

## HTTP benchmark, one interleaved run (about 10 minutes): hits of cache-proxy (memory tier, Redis
## only) against nginx proxy_cache and Varnish, 2 KB/100 KB GET and body-keyed POST at 32 and 128
## connections; hits over 1,000 vs 1,000,000 keys; RSS at 1,000 connections; the MISS cost. Then
## the stampede scenario. BENCH_ARGS=--quick: a short run that checks the script works.
bench: deps
	@scripts/install-deps.sh wrk nginx-light varnish
	$(SWIFT) build -c release
	python3 scripts/bench.py $(BENCH_ARGS)
	.build/release/cache-proxy-bench coherence
	.build/release/cache-proxy-bench stampede

## The example API direct, with Flask-Caching, behind cache-proxy and behind nginx: one run,
## under 5 minutes; writes loadtest-results/{results.csv,correctness.csv,chart.png,summary.md}.
loadtest: release flask-venv
	@scripts/install-deps.sh wrk nginx-light curl
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r scripts/loadtest-requirements.txt
	$(VENV)/bin/python scripts/loadtest.py

## Redis client throughput next to redis-benchmark, in one run.
bench-redis: deps
	$(SWIFT) build -c release --product cache-proxy-bench
	.build/release/cache-proxy-bench redis

## GET latency while large SETs run: lookups and stores on one connection, or on two.
bench-redis-mixed: deps
	$(SWIFT) build -c release --product cache-proxy-bench
	.build/release/cache-proxy-bench redis-mixed --set-size 8388608 --seconds 3

## Purge latency (a tag on 1 and on 10,000 entries) and the tag index's memory after a
## million stores with a 1 s TTL.
bench-invalidation: deps
	$(SWIFT) build -c release --product cache-proxy-bench
	.build/release/cache-proxy-bench invalidation

## Request coalescing: origin requests per 1,000 concurrent cold requests, 1 and 3 instances.
bench-stampede: deps
	$(SWIFT) build -c release --product cache-proxy-bench
	.build/release/cache-proxy-bench stampede

## Memory-tier coherence: purge on one instance until the other stops serving the entry from
## memory (p50/p99, while 32 connections load it with memory hits).
bench-coherence: deps
	$(SWIFT) build -c release --product cache-proxy-bench
	.build/release/cache-proxy-bench coherence

## Memory-tier eviction policies (LRU, S3-FIFO) on Zipf traces: hit ratios (about a minute).
bench-eviction: deps
	$(SWIFT) build -c release --product cache-proxy-bench
	.build/release/cache-proxy-bench eviction

clean:
	rm -rf .build $(VENV)

# cache-proxy — see README.md.
SWIFT ?= swift

.PHONY: test deps build release bench-redis clean

## Install missing system packages (libhiredis-dev, redis-server, …).
deps:
	@scripts/install-deps.sh

## Build (debug).
build: deps
	$(SWIFT) build

## Build the release binaries.
release: deps
	$(SWIFT) build -c release

## Run every test: unit tests, and component/end-to-end tests against a real redis-server.
test: deps
	$(SWIFT) test

## Redis client throughput next to redis-benchmark, in one run.
bench-redis: deps
	$(SWIFT) build -c release --product cache-proxy-bench
	.build/release/cache-proxy-bench redis

clean:
	rm -rf .build

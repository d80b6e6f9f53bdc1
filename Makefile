# Two commands on a fresh Debian 12 machine: `make run` and `make test`.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CONFIG ?= config/sluice.yaml
# ccache: paths relative to the checkout (a fresh clone elsewhere hits the same cache) and the
# sloppiness precompiled headers need to be cacheable at all.
export CCACHE_BASEDIR ?= $(CURDIR)
export CCACHE_NOHASHDIR ?= 1
export CCACHE_SLOPPINESS ?= pch_defines,time_macros,include_file_mtime,include_file_ctime

.PHONY: deps build run test unit integration e2e fuzz bench clean

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release -Wno-dev >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	@echo "Try: curl -s http://127.0.0.1:8080/v1/chat/completions -H 'content-type: application/json' -d '{\"model\":\"demo\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}'"
	@exec ./$(BUILD_DIR)/sluice --config $(CONFIG)

unit: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

integration: build
	@/usr/bin/python3 -m pytest tests/integration -q

e2e: build
	@bash tests/e2e/run.sh

fuzz: deps
	@bash tests/fuzz/run.sh $(FUZZ_SECONDS)

test: build
	@bash scripts/test-all.sh

bench: build
	@bash bench/run.sh

clean:
	rm -rf $(BUILD_DIR) build-fuzz

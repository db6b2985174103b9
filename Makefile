# Thin wrapper around scripts/deps.sh, CMake presets and ctest.
#   make demo   install deps, release build, run `vigil demo` on the embedded stack
#   make test   install deps, ASan+UBSan build, run every ctest label but `compose` and `chaos`;
#               it also compiles the release build `make demo` runs (-O2 -Werror sees warnings
#               the debug build does not)
#               (the chaos suite runs there in its short form, test_chaos_short, label `chaos-short`)
#   make bench  install deps, release build, run bench/run.sh
#   make chaos  install deps, ASan+UBSan build, the chaos suite longer and bigger (docs/chaos.md):
#               CHAOS_EVENTS, CHAOS_RESOURCES, CHAOS_SECONDS, CHAOS_SEED, CHAOS_BROKER_DOWN,
#               CHAOS_REDIS (single; partitioned: one Redis, layout partitioned, commit lanes;
#               cluster: a 3-primary Redis Cluster whose primaries fail over)
#   make fuzz   install deps, build the clang libFuzzer targets, run each FUZZ_SECONDS on its corpus:
#               decoders, rule loader, templates, config loader, HTTP requests, sink answers
#               (`make test` runs each for 20-30 s; docs/security.md lists them)
#   make install PREFIX=/usr/local [DESTDIR=...]   release build, then cmake --install: binary,
#               vigil(1), etc/vigil (kept if present), bash completion, systemd unit (docs/deploy.md)
JOBS ?= $(shell nproc)

FUZZ_SECONDS ?= 300
PREFIX ?= /usr/local
CHAOS_EVENTS ?= 40000
CHAOS_RESOURCES ?= 4000
CHAOS_SECONDS ?= 300
CHAOS_SEED ?=
CHAOS_BROKER_DOWN ?= 1
CHAOS_REDIS ?= single

.PHONY: all deps dev release demo test chaos bench fuzz clean format install

all: release

deps:
	@scripts/deps.sh

dev: deps
	@cmake --preset dev >/dev/null
	@cmake --build build/dev -j $(JOBS)

release: deps
	@cmake --preset release >/dev/null
	@cmake --build build/release -j $(JOBS)

demo: release
	@build/release/cli/vigil demo

test: dev release
	@cd build/dev && ctest --output-on-failure -LE '^(compose|chaos)$$' -j $(JOBS)

chaos: deps
	@cmake --preset dev >/dev/null
	@cmake --build build/dev -j $(JOBS) --target vigil test_chaos
	@VIGIL_BIN=$(CURDIR)/build/dev/cli/vigil VIGIL_CHAOS_EVENTS=$(CHAOS_EVENTS) \
		VIGIL_CHAOS_RESOURCES=$(CHAOS_RESOURCES) VIGIL_CHAOS_SECONDS=$(CHAOS_SECONDS) \
		VIGIL_CHAOS_SEED=$(CHAOS_SEED) VIGIL_CHAOS_BROKER_DOWN=$(CHAOS_BROKER_DOWN) \
		VIGIL_CHAOS_REDIS=$(CHAOS_REDIS) \
		build/dev/tests/chaos/test_chaos

FUZZ_TARGETS = decode:corpus rules_load:corpus-rules rules_template:corpus-template \
	config_load:corpus-config-load http_request:corpus-http-request \
	sink_response:corpus-sink-response parsers:corpus-parsers

fuzz: dev
	@cmake --build build/dev -j $(JOBS) --target $(foreach t,$(FUZZ_TARGETS),fuzz_$(word 1,$(subst :, ,$(t))))
	@set -e; for t in $(FUZZ_TARGETS); do \
		name=$${t%%:*}; corpus=$${t#*:}; \
		echo "== fuzz_$$name: $(FUZZ_SECONDS) s"; \
		tests/fuzz/run.sh build/dev/tests/fuzz_$$name tests/fuzz/$$corpus $(FUZZ_SECONDS); \
	done

install: release
	@DESTDIR="$(DESTDIR)" cmake --install build/release --prefix $(PREFIX)

bench: release
	@bench/run.sh build/release

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	@rm -rf build

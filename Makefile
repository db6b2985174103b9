# Thin wrapper around scripts/deps.sh, CMake presets and ctest.
#   make demo   install deps, release build, run `vigil demo` on the embedded stack
#   make test   install deps, ASan+UBSan build, run every ctest label but `compose`
#   make bench  install deps, release build, run bench/run.sh
JOBS ?= $(shell nproc)

.PHONY: all deps dev release demo test bench clean format

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

test: dev
	@cd build/dev && ctest --output-on-failure -LE compose -j $(JOBS)

bench: release
	@bench/run.sh build/release

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	@rm -rf build

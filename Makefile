# KV Workbench — the two entry points of the README plus helpers.
#   make run   installs dependencies, builds (Release) and opens the workbench on the demo capture
#   make test  installs dependencies, builds, and runs the whole ctest suite (+ ASan/UBSan build,
#              + a 30 s libFuzzer smoke run per harness)
#   make fuzz  fuzzes every harness of tests/fuzz for FUZZ_SECONDS (default 300) each
SHELL := /bin/bash
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 300
FUZZ_SMOKE_SECONDS ?= 30
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
export PATH := /usr/local/cuda/bin:$(PATH)

.PHONY: all deps configure build build-app run test test-release test-asan fuzz-build fuzz test-fuzz-smoke bench bench-workbench clean

all: build

deps:
	bash scripts/install-deps.sh

configure: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD) -j $(JOBS)

# `make run` builds only what it runs: the CLI (which writes the demo capture) and the GUI.
build-app: configure
	cmake --build $(BUILD) -j $(JOBS) --target kvwb kvwb-gui

run: build-app
	bash scripts/run-workbench.sh $(BUILD)

test: build test-release test-asan test-fuzz-smoke

test-release:
	bash scripts/run-tests.sh $(BUILD)

# Sanitizer configuration: ASan + UBSan over the codec and io tests.
test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DKVWB_SANITIZE=ON -DKVWB_CUDA=OFF \
	      -DKVWB_GUI=OFF -DKVWB_BENCH=OFF $(CMAKE_FLAGS)
	cmake --build $(ASAN_BUILD) -j $(JOBS) --target test_codec test_io
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest -L sanitize --output-on-failure -j $(JOBS)

# libFuzzer harnesses (tests/fuzz, docs/reliability.md): clang-16, every library built with
# ASan + UBSan + coverage in its own folder.
fuzz-build: deps
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang-16 \
	      -DCMAKE_CXX_COMPILER=clang++-16 -DKVWB_FUZZ=ON -DKVWB_TESTS=OFF -DKVWB_CUDA=OFF -DKVWB_GUI=OFF \
	      -DKVWB_BENCH=OFF $(CMAKE_FLAGS)
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_harnesses

fuzz: fuzz-build
	bash scripts/run-fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

test-fuzz-smoke: fuzz-build
	bash scripts/run-fuzz.sh $(FUZZ_BUILD) $(FUZZ_SMOKE_SECONDS)

bench: build
	bash scripts/run-bench.sh $(BUILD)

# The workbench's latencies and `kvwb run` on model-shaped captures (issue 13); needs Xvfb.
bench-workbench: build
	bash scripts/run-bench-workbench.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)

#!/usr/bin/env bash
# Runs the codec benchmark on one core and prints the summary table used in the README: each case
# warm (Google Benchmark after a warm-up, median of 5) and cold (median of 3 runs, each alone in a fresh process), ratios
# to the bf16 baseline of the same run, the targets, and the SIMD dispatch path in use.
# KVWB_SIMD=scalar|avx2|avx512 forces a lower path (e.g. to compare against the scalar code).
set -euo pipefail
BUILD=${1:-build}
exec taskset -c 0 "$BUILD/bench/bench_codecs" --benchmark_min_time=0.2

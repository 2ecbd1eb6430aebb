#!/usr/bin/env bash
# Runs the codec benchmark (one core) and prints the summary table used in the README.
set -euo pipefail
BUILD=${1:-build}
exec taskset -c 0 "$BUILD/bench/bench_codecs" --benchmark_min_time=0.2

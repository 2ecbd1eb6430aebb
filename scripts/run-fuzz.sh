#!/usr/bin/env bash
# Runs every libFuzzer harness of tests/fuzz for SECONDS each (two at a time), starting from the
# committed seed corpus (tests/fuzz/corpus/<harness>, never modified) plus what earlier runs found
# (BUILD/fuzz-corpus/<harness>). A crash, sanitizer report, leak or timeout fails the run and its
# input is kept in BUILD/fuzz-artifacts/<harness>/. Prints executions per harness.
# Usage: run-fuzz.sh BUILD SECONDS [HARNESS...]
set -uo pipefail
BUILD=${1:?usage: run-fuzz.sh BUILD SECONDS [HARNESS...]}
SECONDS_EACH=${2:?seconds per harness}
shift 2
HARNESSES=("$@")
[ ${#HARNESSES[@]} -eq 0 ] && HARNESSES=(safetensors capture container kktv json bundle)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PAR=${FUZZ_PARALLEL:-2}
LOGS="$BUILD/fuzz-logs"
mkdir -p "$LOGS"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
SYMBOLIZER=$(command -v llvm-symbolizer-16 || command -v llvm-symbolizer || ls /usr/lib/llvm-*/bin/llvm-symbolizer 2>/dev/null | head -1)
[ -n "$SYMBOLIZER" ] && export ASAN_SYMBOLIZER_PATH=$SYMBOLIZER
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run_one() {
  local h=$1 bin="$BUILD/tests/fuzz/fuzz_$1"
  local work="$BUILD/fuzz-corpus/$h" art="$BUILD/fuzz-artifacts/$h/"
  mkdir -p "$work" "$art"
  "$bin" -max_total_time="$SECONDS_EACH" -timeout=20 -rss_limit_mb=2560 -max_len=262144 \
    -print_final_stats=1 -artifact_prefix="$art" "$work" "$ROOT/tests/fuzz/corpus/$h" >"$LOGS/$h.log" 2>&1
  echo $? >"$LOGS/$h.rc"
}
export -f run_one
export BUILD SECONDS_EACH ROOT LOGS
printf '%s\n' "${HARNESSES[@]}" | xargs -P "$PAR" -I{} bash -c 'run_one {}'

rc=0
printf '%-12s %8s %12s %10s %8s  %s\n' harness seconds executions exec/s corpus result
for h in "${HARNESSES[@]}"; do
  log="$LOGS/$h.log"
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  corpus=$(ls "$BUILD/fuzz-corpus/$h" 2>/dev/null | wc -l)
  r=$(cat "$LOGS/$h.rc" 2>/dev/null || echo 1)
  res=ok
  if [ "$r" != 0 ]; then
    res="FAILED (exit $r; see $log and $BUILD/fuzz-artifacts/$h/)"
    rc=1
  fi
  printf '%-12s %8s %12s %10s %8s  %s\n' "$h" "$SECONDS_EACH" "${execs:--}" "${rate:--}" "$corpus" "$res"
  if [ "$r" != 0 ]; then grep -E 'ERROR|SUMMARY|==[0-9]+==|deadly signal|Test unit written' "$log" | head -20; fi
done
exit $rc

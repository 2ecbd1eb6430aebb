#!/usr/bin/env bash
# KVWB_SIMD at the CLI: the path kvwb backends reports follows it; an unknown value is a usage error
# (exit 2) and a path the CPU lacks an UNSUPPORTED data error (exit 1), both before any work.
set -u
KVWB=$1
fail() { echo "FAIL: $*"; exit 1; }
out=$(KVWB_SIMD=scalar "$KVWB" backends --json) || fail "KVWB_SIMD=scalar: exit $?"
grep -q '"simd_path": "scalar"' <<<"$out" || fail "KVWB_SIMD=scalar not reported: $out"
out=$("$KVWB" backends --json) || fail "default: exit $?"
grep -qE '"simd_path": "(scalar|avx2|avx512)"' <<<"$out" || fail "no simd_path: $out"
err=$(KVWB_SIMD=bogus "$KVWB" backends 2>&1 >/dev/null); rc=$?
[ "$rc" -eq 2 ] || fail "KVWB_SIMD=bogus: exit $rc, expected 2"
grep -q "INVALID_ARGUMENT.*KVWB_SIMD='bogus'" <<<"$err" || fail "bad message: $err"
if ! grep -q avx512bw /proc/cpuinfo; then
  err=$(KVWB_SIMD=avx512 "$KVWB" backends 2>&1 >/dev/null); rc=$?
  [ "$rc" -eq 1 ] || fail "KVWB_SIMD=avx512 on a CPU without it: exit $rc, expected 1"
  grep -q "UNSUPPORTED" <<<"$err" || fail "bad message: $err"
fi
echo "simd env ok"

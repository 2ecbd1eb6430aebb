#!/usr/bin/env bash
# The workbench benchmark of issue 13: the GUI latencies (bench/bench_workbench under Xvfb, real
# tiny1m capture + a DeepSeek-R1-Distill-1.5B-shaped synthetic capture) and `kvwb run` wall / CPU
# time on model-shaped synthetic captures, before (exact attention metrics, --attn-sample all) and
# after (the default sample) in the same run. Prints one markdown table (the README's).
#   scripts/run-bench-workbench.sh [BUILD] [--8b] [--no-before]
#   --8b         also a Llama-3-8B shape (32 layers, 8 kv / 32 q heads, 4096 tokens; a 1.9 GB file)
#   --no-before  skip the exact-attention runs (about 270 s of CPU on the 1.5B shape)
#   --no-gui     only the kvwb run timings
set -euo pipefail
BUILD=build
EIGHT_B=0
BEFORE=1
GUI=1
for a in "$@"; do
  case "$a" in
    --8b) EIGHT_B=1 ;;
    --no-before) BEFORE=0 ;;
    --no-gui) GUI=0 ;;
    -*) echo "unknown option $a" >&2; exit 2 ;;
    *) BUILD=$a ;;
  esac
done
KVWB=$BUILD/app/cli/kvwb
BENCH=$BUILD/bench/bench_workbench
for f in "$KVWB" "$BENCH"; do [[ -x $f ]] || { echo "missing $f (cmake --build $BUILD --target kvwb bench_workbench)" >&2; exit 1; }; done
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kvwb-bench-wb.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export KVWB_CACHE_DIR=off  # CLI timings compute every layer (the GUI bench uses its own cache folder)

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
"$KVWB" synth --layers 28 --kv-heads 2 --q-heads 12 --head-dim 128 --seqs 2 --tokens 2048 "$WORK/r1_1p5b.kvc.h5" >/dev/null
if ((EIGHT_B)); then
  "$KVWB" synth --layers 32 --kv-heads 8 --q-heads 32 --head-dim 128 --seqs 1 --tokens 4096 "$WORK/llama3_8b.kvc.h5" >/dev/null
fi

# GUI latencies (medians of 5).
if ((GUI)); then
  xvfb-run -a -s "-screen 0 1600x1000x24" "$BENCH" --reps 5 --large "$WORK/r1_1p5b.kvc.h5" --json "$WORK/gui.json" |
    grep -v XDG_RUNTIME_DIR
fi

# kvwb run, default configuration, attention metrics on, 2 threads: wall and CPU seconds.
timed_run() {  # label capture extra-flags...
  local label=$1 cap=$2
  shift 2
  local TIMEFORMAT='%R %U %S'
  { time "$KVWB" run "$cap" --threads 2 --no-cache "$@" --json "$WORK/run.json" >/dev/null; } 2>"$WORK/time"
  read -r wall user sys <"$WORK/time"
  printf '| %-58s | %8.1f | %8.1f |\n' "$label" "$wall" "$(awk "BEGIN{print $user + $sys}")"
}
echo
echo "| kvwb run (default configuration, attention metrics, 2 threads) | wall s | CPU s |"
echo "|---|---:|---:|"
if ((BEFORE)); then timed_run "1.5B shape, exact attention (--attn-sample all): before" "$WORK/r1_1p5b.kvc.h5" --attn-sample all; fi
timed_run "1.5B shape, sampled attention (default 256): after" "$WORK/r1_1p5b.kvc.h5"
timed_run "1.5B shape, --no-attention (digest hashed: KVWB_CACHE_DIR=off)" "$WORK/r1_1p5b.kvc.h5" --no-attention
# Issue 16's figure: the same run with the capture digest remembered (--no-cache still computes every
# layer; a first, untimed run stores the digest in a scratch cache folder).
mkdir -p "$WORK/digest-cache"
KVWB_CACHE_DIR="$WORK/digest-cache" "$KVWB" run "$WORK/r1_1p5b.kvc.h5" --threads 2 --no-cache --no-attention --json "$WORK/run.json" >/dev/null
KVWB_CACHE_DIR="$WORK/digest-cache" timed_run "1.5B shape, --no-attention (digest remembered)" "$WORK/r1_1p5b.kvc.h5" --no-attention
if ((EIGHT_B)); then
  if ((BEFORE)); then timed_run "8B shape, exact attention: before" "$WORK/llama3_8b.kvc.h5" --attn-sample all; fi
  timed_run "8B shape, sampled attention (default): after" "$WORK/llama3_8b.kvc.h5"
fi
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

#!/usr/bin/env bash
# End-to-end checks of the kvwb binary. Args: KVWB_BINARY REAL_DATA_DIR
# Prints a final line "N passed, M failed" and exits non-zero when anything failed.
set -u
KVWB=$1
REAL=${2:-}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
PASS=0
FAIL=0
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

ok() { PASS=$((PASS + 1)); echo "ok:   $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL: $1"; }
# expect_rc NAME WANT_RC CMD...  (stdout -> $TMP/out, stderr -> $TMP/err)
expect_rc() {
  local name=$1 want=$2
  shift 2
  "$@" >"$TMP/out" 2>"$TMP/err"
  local rc=$?
  if [ "$rc" -eq "$want" ]; then ok "$name"; else
    bad "$name (exit $rc, expected $want)"; sed 's/^/    /' "$TMP/err" | head -5; fi
}
# json_check NAME FILE PYTHON_EXPR  (j = the parsed JSON; the expression must be true)
json_check() {
  if "$PY" -c "import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if ($3) else 1)" "$2" \
      2>"$TMP/pyerr"; then ok "$1"; else bad "$1"; head -3 "$TMP/pyerr" | sed 's/^/    /'; fi
}

echo "kvwb: $KVWB"
expect_rc "kvwb --help" 0 "$KVWB" --help
grep -q "info" "$TMP/out" && grep -q "synth" "$TMP/out" && ok "--help lists info and synth" ||
  bad "--help lists info and synth"
expect_rc "kvwb info --help" 0 "$KVWB" info --help
expect_rc "kvwb synth --help" 0 "$KVWB" synth --help
grep -q -- "--kv-heads" "$TMP/out" && ok "synth --help lists --kv-heads" || bad "synth --help lists --kv-heads"
expect_rc "no subcommand is a usage error" 2 "$KVWB"
expect_rc "unknown option is a usage error" 2 "$KVWB" info --bogus x
expect_rc "info without FILE is a usage error" 2 "$KVWB" info
expect_rc "synth q_heads % kv_heads is a usage error" 2 \
  "$KVWB" synth "$TMP/x.kvc.h5" --q-heads 3 --kv-heads 2
grep -q "error\[INVALID_ARGUMENT\]" "$TMP/err" && ok "usage error prints error[INVALID_ARGUMENT]" ||
  bad "usage error prints error[INVALID_ARGUMENT]"
expect_rc "synth odd head_dim is a usage error" 2 "$KVWB" synth "$TMP/x.kvc.h5" --head-dim 33
expect_rc "synth non-numeric option is a usage error" 2 "$KVWB" synth "$TMP/x.kvc.h5" --layers many
[ ! -e "$TMP/x.kvc.h5" ] && ok "refused synth wrote nothing" || bad "refused synth wrote nothing"

SMALL="$TMP/small.kvc.h5"
expect_rc "synth a small capture" 0 "$KVWB" synth "$SMALL" --layers 2 --kv-heads 2 --q-heads 4 \
  --head-dim 32 --seqs 2 --tokens 64 --seed 7
[ -s "$SMALL" ] && ok "synth wrote the file" || bad "synth wrote the file"
expect_rc "info on the synthetic capture" 0 "$KVWB" info "$SMALL"
grep -q "SYNTHETIC" "$TMP/out" && ok "info marks SYNTHETIC" || bad "info marks SYNTHETIC"
expect_rc "info --json on the synthetic capture" 0 "$KVWB" info "$SMALL" --json
cp "$TMP/out" "$TMP/small.json"
json_check "synthetic JSON fields" "$TMP/small.json" \
  "j['synthetic'] is True and j['num_layers']==2 and j['num_kv_heads']==2 and j['num_query_heads']==4 and j['head_dim']==32 and j['sequences']==2 and j['tokens']==64 and j['rope_style']=='half_split' and j['rope_theta']==10000 and j['rotary_dim']==32 and len(j['layers'])==2 and all(l['has_k_pre'] and l['has_k'] and l['has_v'] and l['has_q_pre'] for l in j['layers']) and all(l['non_finite']['k']==0 for l in j['layers']) and j['layers'][0]['norms']['k_pre']['max_row_l2'] > j['layers'][0]['norms']['k_pre']['mean_row_l2'] > 0"
# The capture digest is remembered beside the result cache (by path, inode, size, mtime, ctime):
# a second command reads it instead of hashing the file; any write to the file makes it stale.
WANT_SHA=$(sha256sum "$SMALL" | cut -d' ' -f1)
expect_rc "run fills the digest memo" 0 env KVWB_CACHE_DIR="$TMP/cache" "$KVWB" run "$SMALL" --block-size 32 --json "$TMP/m1.json" -q
MEMO=$(ls "$TMP"/cache/capture-sha256/*.txt 2>/dev/null | head -1)
[ -n "$MEMO" ] && [ "$(cat "$MEMO")" = "$WANT_SHA" ] && ok "digest memo holds the file's sha256" || bad "digest memo holds the file's sha256"
json_check "run reports the file's sha256" "$TMP/m1.json" "j['capture']['sha256'] == '$WANT_SHA'"
if [ -n "$MEMO" ]; then
  printf '%064d\n' 0 >"$MEMO"  # planted: proves the next command reads the memo, not the file
  expect_rc "run with the memo" 0 env KVWB_CACHE_DIR="$TMP/cache" "$KVWB" run "$SMALL" --block-size 32 --json "$TMP/m2.json" -q
  json_check "the memo was used" "$TMP/m2.json" "j['capture']['sha256'] == '0'*64"
  sleep 0.01; touch "$SMALL"
  expect_rc "run after the file changed" 0 env KVWB_CACHE_DIR="$TMP/cache" "$KVWB" run "$SMALL" --block-size 32 --json "$TMP/m3.json" -q
  json_check "a changed file is hashed again" "$TMP/m3.json" "j['capture']['sha256'] == '$WANT_SHA'"
fi
expect_rc "run --no-cache hashes beside the run" 0 env KVWB_CACHE_DIR="$TMP/cache" "$KVWB" run "$SMALL" --block-size 32 --no-cache --json "$TMP/m4.json" -q
json_check "--no-cache reports the file's sha256" "$TMP/m4.json" "j['capture']['sha256'] == '$WANT_SHA'"
# --no-cache skips results, not the digest memo (a digest is not a result): a planted digest is
# read; with KVWB_CACHE_DIR=off (no cache folder at all) the file is hashed. The newest memo file
# is the current identity's (the one planted above went stale with the touch).
MEMO=$(ls -t "$TMP"/cache/capture-sha256/*.txt 2>/dev/null | head -1)
if [ -n "$MEMO" ]; then
  printf '%064d\n' 1 >"$MEMO"
  expect_rc "run --no-cache with the memo" 0 env KVWB_CACHE_DIR="$TMP/cache" "$KVWB" run "$SMALL" --block-size 32 --no-cache --json "$TMP/m5.json" -q
  json_check "--no-cache used the digest memo" "$TMP/m5.json" "j['capture']['sha256'] == '0'*63 + '1'"
  expect_rc "run --no-cache without a cache folder" 0 env KVWB_CACHE_DIR=off "$KVWB" run "$SMALL" --block-size 32 --no-cache --json "$TMP/m6.json" -q
  json_check "KVWB_CACHE_DIR=off hashes the file" "$TMP/m6.json" "j['capture']['sha256'] == '$WANT_SHA'"
  rm -f "$TMP"/cache/capture-sha256/*.txt
fi
expect_rc "run --no-cache fills the digest memo" 0 env KVWB_CACHE_DIR="$TMP/cache" "$KVWB" run "$SMALL" --block-size 32 --no-cache --json "$TMP/m7.json" -q
MEMO=$(ls "$TMP"/cache/capture-sha256/*.txt 2>/dev/null | head -1)
[ -n "$MEMO" ] && [ "$(cat "$MEMO")" = "$WANT_SHA" ] && ok "--no-cache remembers the digest" || bad "--no-cache remembers the digest"
# Backends: the CUDA kernels' codec list, and the typed UNAVAILABLE error without a device.
expect_rc "backends --json" 0 "$KVWB" backends --json
cp "$TMP/out" "$TMP/backends.json"
json_check "backends: cpu runs every codec; cuda lists its device codecs only when compiled" \
  "$TMP/backends.json" \
  "(lambda b: 'kakeya_pca' in b['cpu']['codecs'] and b['cpu']['runs_codecs'] and ((not b['cuda']['compiled'] and not b['cuda']['runs_codecs'] and b['cuda']['codecs']==[]) or (b['cuda']['compiled'] and b['cuda']['runs_codecs'] and 'turbo3' in b['cuda']['codecs'] and 'kakeya_pca' in b['cuda']['codecs'])))({x['name']: x for x in j['backends']})"
if "$PY" -c "import json,sys; b={x['name']: x for x in json.load(open(sys.argv[1]))['backends']}; sys.exit(0 if not b['cuda']['available'] else 1)" "$TMP/backends.json"; then
  for sub in run sweep; do
    if [ $sub = run ]; then args=(run "$SMALL" --k-codec turbo3 --v-codec turbo3 -q)
    else
      echo '{"k_codec": ["turbo3"], "v_codec": ["turbo3"]}' >"$TMP/gcuda.json"
      args=(sweep "$SMALL" --grid "$TMP/gcuda.json" --out "$TMP/cuda-sweep")
    fi
    expect_rc "$sub --backend cuda without a device exits 1" 1 "$KVWB" "${args[@]}" --backend cuda
    grep -q "error\[UNAVAILABLE\]" "$TMP/err" && ok "$sub --backend cuda prints error[UNAVAILABLE]" ||
      { bad "$sub --backend cuda prints error[UNAVAILABLE]"; head -3 "$TMP/err" | sed 's/^/    /'; }
  done
  expect_rc "run --backend auto without a device falls back to cpu" 0 "$KVWB" run "$SMALL" \
    --k-codec turbo3 --v-codec turbo3 --backend auto --json "$TMP/auto.json" -q
  json_check "auto run records backend cpu" "$TMP/auto.json" "j['backend']=='cpu'"
fi
if command -v h5dump >/dev/null; then
  expect_rc "h5dump -H opens the synthetic capture" 0 h5dump -H "$SMALL"
  grep -q 'DATASET "q_pre"' "$TMP/out" && ok "h5dump sees q_pre" || bad "h5dump sees q_pre"
else
  echo "skip: h5dump not installed"
fi
expect_rc "synth is deterministic (second run)" 0 "$KVWB" synth "$TMP/small2.kvc.h5" --layers 2 \
  --kv-heads 2 --q-heads 4 --head-dim 32 --seqs 2 --tokens 64 --seed 7
"$KVWB" info "$TMP/small2.kvc.h5" --json >"$TMP/small2.json" 2>/dev/null
json_check "same seed, same norms" "$TMP/small2.json" \
  "j['layers'] == json.load(open('$TMP/small.json'))['layers']"
expect_rc "info on a missing file is a data error" 1 "$KVWB" info "$TMP/absent.kvc.h5"
grep -q "absent.kvc.h5" "$TMP/err" && grep -q "error\[IO_ERROR\]" "$TMP/err" &&
  ok "missing-file error names the file" || bad "missing-file error names the file"
head -c $(($(stat -c %s "$SMALL") / 2)) "$SMALL" >"$TMP/half.kvc.h5"
expect_rc "info on a truncated synthetic capture exits 1" 1 "$KVWB" info "$TMP/half.kvc.h5"
grep -q "half.kvc.h5" "$TMP/err" && ok "truncated-file error names the file" ||
  bad "truncated-file error names the file"

# Sweeps beyond one machine (docs/cluster.md) on the small synthetic capture; the real Slurm runs
# in tests/cluster/test_slurm.py.
G3="$TMP/grid3.json"
echo '{"k_codec": ["q8_0", "q4_0", "turbo3"], "v_codec": ["q8_0"], "fixed": {"block_size": 64}}' >"$G3"
expect_rc "sweep the whole 3-cell grid" 0 "$KVWB" sweep "$SMALL" --grid "$G3" --out "$TMP/whole"
expect_rc "sweep --shard 0/2" 0 "$KVWB" sweep "$SMALL" --grid "$G3" --out "$TMP/sh0" --shard 0/2
grep -q "shard 0/2 of a grid of 3 cells" "$TMP/out" && ok "a shard says which" || bad "a shard says which"
expect_rc "sweep --shard auto from SLURM_ARRAY_TASK_ID" 0 env SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=1 \
  "$KVWB" sweep "$SMALL" --grid "$G3" --out "$TMP/sh1" --shard auto --shards 2
grep -q "shard 1/2" "$TMP/out" && ok "--shards wins over SLURM_ARRAY_TASK_COUNT" || bad "--shards wins over SLURM_ARRAY_TASK_COUNT"
expect_rc "--shard 2/2 is a usage error" 2 "$KVWB" sweep "$SMALL" --grid "$G3" --out "$TMP/bad" --shard 2/2
expect_rc "--shard auto outside an array is a usage error" 2 env -u SLURM_ARRAY_TASK_ID -u JOB_COMPLETION_INDEX \
  "$KVWB" sweep "$SMALL" --grid "$G3" --out "$TMP/bad" --shard auto --shards 2
expect_rc "--shards without --shard is a usage error" 2 "$KVWB" sweep "$SMALL" --grid "$G3" --out "$TMP/bad" --shards 2
expect_rc "store merge of one shard with --require-complete exits 1" 1 \
  "$KVWB" store merge "$TMP/m1" "$TMP/sh0" --grid "$G3" --require-complete
grep -q "STORE_INCOMPLETE" "$TMP/err" && [ ! -e "$TMP/m1" ] && ok "incomplete merge writes nothing" ||
  bad "incomplete merge writes nothing"
expect_rc "store merge reports missing cells" 0 "$KVWB" store merge "$TMP/m1" "$TMP/sh0" --grid "$G3"
grep -q "^missing: cell" "$TMP/out" && ok "missing cells listed" || bad "missing cells listed"
expect_rc "store merge of both shards" 0 "$KVWB" store merge "$TMP/m2" "$TMP/sh1" "$TMP/sh0" --grid "$G3" \
  --require-complete
expect_rc "store diff: merged shards == whole sweep" 0 "$KVWB" store diff "$TMP/m2" "$TMP/whole"
expect_rc "store diff: one shard != whole sweep (exit 1)" 1 "$KVWB" store diff "$TMP/sh0" "$TMP/whole"
expect_rc "store merge into an input exits 2" 2 "$KVWB" store merge "$TMP/sh0" "$TMP/sh0" "$TMP/sh1"
echo '{"k_codec": ["kakeya_pca"], "k_param": ["bit_width=2", "bit_width=9"], "fixed": {"block_size": 64}}' >"$TMP/gf.json"
expect_rc "sweep --fail-on-error with an impossible cell exits 1" 1 "$KVWB" sweep "$SMALL" --grid "$TMP/gf.json" \
  --out "$TMP/sf" --fail-on-error
grep -q "CELLS_FAILED" "$TMP/err" && grep -q "bit_width=9" "$TMP/err" && ok "CELLS_FAILED names the cell" ||
  bad "CELLS_FAILED names the cell"
expect_rc "slurm submit --dry-run" 0 "$KVWB" slurm submit "$SMALL" --grid "$G3" --out "$TMP/slurm run" --shards 2 \
  --partition debug --time 00:05:00 --sbatch-arg=--qos=low --dry-run
grep -q -- "--array=0-1" "$TMP/out" && grep -q -- "--dependency=afterok:" "$TMP/out" &&
  grep -q -- "--kill-on-invalid-dep=yes" "$TMP/out" && grep -q "'$TMP/slurm run/shards/shard-'" "$TMP/out" &&
  [ ! -e "$TMP/slurm run" ] && ok "dry run prints quoted scripts and sbatch lines, writes nothing" ||
  bad "dry run prints quoted scripts and sbatch lines, writes nothing"
expect_rc "slurm submit --shards > cells is a usage error" 2 "$KVWB" slurm submit "$SMALL" --grid "$G3" \
  --out "$TMP/s4" --shards 4 --dry-run
expect_rc "slurm submit --no-submit writes the folder" 0 "$KVWB" slurm submit "$SMALL" --grid "$G3" \
  --out "$TMP/slurm run" --shards 2 --no-submit
[ -x "$TMP/slurm run/sweep-array.sbatch" ] && [ -x "$TMP/slurm run/merge.sbatch" ] &&
  bash -n "$TMP/slurm run/sweep-array.sbatch" && ok "scripts written, executable, valid bash" ||
  bad "scripts written, executable, valid bash"
expect_rc "slurm status of an unsubmitted folder" 0 "$KVWB" slurm status "$TMP/slurm run" --json "$TMP/st.json"
json_check "status: 3 pending, not submitted" "$TMP/st.json" \
  "j['pending']==3 and all(s['state']=='NOT_SUBMITTED' for s in j['shards']) and 'not submitted' in j['next']"
expect_rc "slurm submit into a non-empty folder is a usage error" 2 "$KVWB" slurm submit "$SMALL" --grid "$G3" \
  --out "$TMP/slurm run" --shards 2 --dry-run

W="$REAL/tiny1m_wikitext2.kvc.h5"
if [ -n "$REAL" ] && [ -f "$W" ]; then
  expect_rc "info --json on tiny1m_wikitext2" 0 "$KVWB" info "$W" --json
  cp "$TMP/out" "$TMP/real.json"
  json_check "tiny1m_wikitext2 shapes" "$TMP/real.json" \
    "j['num_layers']==4 and j['num_kv_heads']==2 and j['num_query_heads']==2 and j['head_dim']==64 and j['sequences']==16 and j['tokens']==256 and j['synthetic'] is False and j['model_name']=='shibatch/tiny1m' and len(j['layers'])==4 and all(l['dtype']['k']=='float16' and sum(l['non_finite'].values())==0 for l in j['layers'])"
  expect_rc "info (text) on tiny1m_wikitext2" 0 "$KVWB" info "$W"
  grep -q "SYNTHETIC" "$TMP/out" && bad "real capture not marked SYNTHETIC" ||
    ok "real capture not marked SYNTHETIC"
  head -c $(($(stat -c %s "$W") / 2)) "$W" >"$TMP/real_half.kvc.h5"
  expect_rc "info on a truncated real capture exits 1" 1 "$KVWB" info "$TMP/real_half.kvc.h5"
  grep -q "real_half.kvc.h5" "$TMP/err" && grep -q "^error\[" "$TMP/err" &&
    ok "truncated real error names the file" || bad "truncated real error names the file"
  # kvwb run: the ratio equals bf16 bytes over the summed layer-stream bytes; sessions round-trip.
  expect_rc "run kakeya K b3 / V b2 on tiny1m" 0 "$KVWB" run "$W" --k-codec kakeya_pca --bits-k 3 \
    --v-codec kakeya_pca --bits-v 2 --block-size 256 --json "$TMP/run.json" --save-session "$TMP/s.kvwb.json" -q
  json_check "run ratio = bf16 / sum of container bytes" "$TMP/run.json" \
    "abs(j['ratio_vs_bf16'] - j['bf16_bytes']/sum(l['k']['bytes']+l['v']['bytes'] for l in j['layers'])) < 1e-12 and j['total_bytes']==sum(l['k']['bytes']+l['v']['bytes'] for l in j['layers']) and j['bf16_bytes']==8388608"
  expect_rc "run --session reuses capture and configuration" 0 "$KVWB" run --session "$TMP/s.kvwb.json" \
    --json "$TMP/run2.json" -q
  /usr/bin/python3 -c "import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2])); sys.exit(0 if a['total_bytes']==b['total_bytes'] and a['config_hash']==b['config_hash'] else 1)" \
    "$TMP/run.json" "$TMP/run2.json" && ok "session run has the same bytes and config hash" ||
    bad "session run has the same bytes and config hash"
  expect_rc "run with a flag that fits no codec exits 2" 2 "$KVWB" run "$W" --k-codec q8_0 --v-codec q8_0 --bits-k 3
else
  echo "skip: real data not found at '$REAL' (tiny1m_wikitext2.kvc.h5); real-data checks skipped"
fi

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]

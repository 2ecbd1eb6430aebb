#!/usr/bin/env bash
# tools/capture_hf.py on a tiny randomly initialised Llama (no download): capture it, open it with
# `kvwb info`, and check that forward RoPE (capture-format.md) of the stored k_pre equals the
# stored k (the model's own cache) to float16 precision. Skips (77) without torch/transformers.
# Args: KVWB_BINARY SOURCE_DIR
set -u
KVWB=$1
SRC=$2
PY=${KVWB_PYTHON:-python3}
if ! "$PY" -c "import torch, transformers, h5py, numpy" 2>/dev/null; then
  if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import torch, transformers, h5py, numpy" 2>/dev/null; then
    PY=/usr/bin/python3
  else
    echo "SKIP: torch, transformers, h5py or numpy missing for $PY"
    exit 77
  fi
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/cfg.json" <<'JSON'
{"model_type": "llama", "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
 "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100, "max_position_embeddings": 128,
 "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "bos_token_id": 1, "eos_token_id": 2,
 "tie_word_embeddings": false}
JSON
"$PY" -c "print(' '.join(str((i * 37 + 11) % 97 + 3) for i in range(200)))" > "$tmp/ids.txt"
"$PY" "$SRC/tools/capture_hf.py" --random-config "$tmp/cfg.json" --ids "$tmp/ids.txt" --seqs 2 --tokens 32 \
  --out "$tmp/tiny.kvc.h5" || { echo "FAIL: capture_hf.py"; exit 1; }
"$KVWB" info "$tmp/tiny.kvc.h5" --json > "$tmp/info.json" || { echo "FAIL: kvwb info"; exit 1; }
"$PY" - "$tmp/tiny.kvc.h5" "$tmp/info.json" <<'PYEOF' || exit 1
import json, sys
import h5py, numpy as np
info = json.load(open(sys.argv[2]))
assert info["num_layers"] == 2 and info["num_query_heads"] == 4 and info["num_kv_heads"] == 2, info
f = h5py.File(sys.argv[1], "r")
D = int(f.attrs["head_dim"]); R = int(f.attrs["rotary_dim"]); theta = float(f.attrs["rope_theta"])
pos = f["positions"][()]
worst = 0.0
for l in range(2):
    kp = f[f"layers/{l}/k_pre"][()].astype(np.float64)
    k = f[f"layers/{l}/k"][()].astype(np.float64)
    j = np.arange(R // 2)
    a = pos[:, None, :, None] * theta ** (-2.0 * j / R)
    c = np.cos(a).astype(np.float32).astype(np.float64); s = np.sin(a).astype(np.float32).astype(np.float64)
    x1, x2 = kp[..., :R // 2], kp[..., R // 2:R]
    rot = np.concatenate([x1 * c - x2 * s, x1 * s + x2 * c, kp[..., R:]], axis=-1)
    err = np.abs(rot - k).max() / max(np.abs(k).max(), 1e-12)
    worst = max(worst, err)
print(f"max |RoPE(k_pre) - k| / max|k| = {worst:.3e}")
assert worst < 2e-3, "forward RoPE of k_pre does not equal k"
PYEOF
echo "capture_hf: 1 passed"

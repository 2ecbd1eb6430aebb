#!/usr/bin/env python3
"""Capture k_pre, k, v and q_pre from a Hugging Face causal LM into a KV Workbench capture.

Writes the capture format of shared/spec/capture-format.md (version 1) with h5py: root attributes,
/tokens and /positions [S, T] int32, and per layer /layers/<l>/{k_pre,k,v,q_pre} as [S, H, T, D]
float16 (or float32 with --float32), chunked [1, 1, T', D], gzip 4 + shuffle.

Supported: Llama / Mistral / Qwen2 (half_split RoPE), Qwen3 (q/k RMSNorm: q_pre and k_pre are taken
after q_norm / k_norm, as the format requires), GLM / GLM-4 (interleaved, partial rotary via
partial_rotary_factor), and any model whose attention modules expose q_proj / k_proj / v_proj.
  * q_pre, k_pre: outputs of q_proj / k_proj (or of q_norm / k_norm when the model has them),
    reshaped to heads: the vectors before RoPE.
  * k, v: the model's own KV cache after the forward pass (post-RoPE keys, as inference holds them).
Sequences are cut as kvwb capture cuts them: sequence s = BOS + text tokens s*(T-1) ... s*(T-1)+T-2
(pass --no-bos to use T text tokens per sequence instead).

Requirements: torch, transformers, numpy, h5py.

Examples:
  python3 tools/capture_hf.py --model Qwen/Qwen2.5-0.5B-Instruct --text wiki.txt \\
      --seqs 4 --tokens 1024 --out qwen.kvc.h5
  # a tiny randomly initialised model from a config (no download; what the test does):
  python3 tools/capture_hf.py --random-config tiny_llama.json --ids ids.txt \\
      --seqs 2 --tokens 32 --out tiny.kvc.h5
Then: kvwb info tiny.kvc.h5
"""
import argparse
import json
import sys

import numpy as np


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="HF model id or local folder")
    src.add_argument("--random-config", help="config.json of a model to initialise randomly (no weights)")
    txt = p.add_mutually_exclusive_group(required=True)
    txt.add_argument("--text", help="UTF-8 text file (CRLF read as LF), tokenised with the model's tokenizer")
    txt.add_argument("--ids", help="pre-tokenised ids: decimal integers separated by spaces, commas or newlines")
    p.add_argument("--seqs", type=int, default=4, help="sequences S (default 4)")
    p.add_argument("--tokens", type=int, default=256, help="tokens per sequence T (default 256)")
    p.add_argument("--out", required=True, help="output .kvc.h5")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                   help="dtype to run the model in (default float32)")
    p.add_argument("--float32", action="store_true", help="store float32 instead of float16")
    p.add_argument("--no-bos", action="store_true", help="do not prepend BOS to each sequence")
    p.add_argument("--seed", type=int, default=0, help="seed of --random-config initialisation")
    p.add_argument("--device", default="cpu")
    return p.parse_args()


def rope_layout(cfg):
    """(rope_style, theta, rotary_dim) from a transformers config."""
    mt = getattr(cfg, "model_type", "")
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    factor = getattr(cfg, "partial_rotary_factor", 1.0) or 1.0
    rotary_dim = int(head_dim * factor)
    style = "interleaved" if mt in ("glm", "glm4", "chatglm") else "half_split"
    theta = getattr(cfg, "rope_theta", None)
    if theta is None:
        rp = getattr(cfg, "rope_parameters", None) or {}
        theta = rp.get("rope_theta", 10000.0)
    scaling = getattr(cfg, "rope_scaling", None)
    if scaling and (scaling.get("rope_type") or scaling.get("type")) not in (None, "default"):
        print(f"warning: rope_scaling {scaling} is recorded nowhere in the capture format; k is the model's "
              "own cache, but readers that derive k from k_pre will not match", file=sys.stderr)
    return style, float(theta), rotary_dim, head_dim


def cache_kv(pkv, layer):
    if hasattr(pkv, "layers"):
        return pkv.layers[layer].keys, pkv.layers[layer].values
    if hasattr(pkv, "key_cache"):
        return pkv.key_cache[layer], pkv.value_cache[layer]
    return pkv[layer][0], pkv[layer][1]


def main():
    args = parse_args()
    try:
        import torch
        import transformers
        from transformers import AutoConfig, AutoModelForCausalLM
    except ImportError as e:
        print(f"capture_hf.py needs torch and transformers: {e}", file=sys.stderr)
        return 77
    import h5py

    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[args.dtype]
    tokenizer = None
    if args.model:
        model = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=dtype)
        name = args.model
        if args.text:
            from transformers import AutoTokenizer
            tokenizer = AutoTokenizer.from_pretrained(args.model)
    else:
        with open(args.random_config) as f:
            cfg_dict = json.load(f)
        cfg = AutoConfig.for_model(**cfg_dict)
        torch.manual_seed(args.seed)
        model = AutoModelForCausalLM.from_config(cfg).to(dtype)
        name = "random:" + cfg_dict.get("model_type", "llama")
    model.eval().to(args.device)
    cfg = model.config
    if getattr(cfg, "_attn_implementation", None) is not None:
        cfg._attn_implementation = "eager"

    if args.ids:
        with open(args.ids) as f:
            ids = [int(t) for t in f.read().replace(",", " ").split()]
    else:
        if tokenizer is None:
            print("--text needs --model with a tokenizer; use --ids with --random-config", file=sys.stderr)
            return 2
        with open(args.text, encoding="utf-8", newline="") as f:
            text = f.read().replace("\r\n", "\n")
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    S, T = args.seqs, args.tokens
    bos = getattr(cfg, "bos_token_id", None)
    use_bos = not args.no_bos and bos is not None
    per = T - 1 if use_bos else T
    if len(ids) < S * per:
        print(f"the text holds {len(ids)} tokens; {S} sequences need {S * per}", file=sys.stderr)
        return 1
    grid = np.zeros((S, T), dtype=np.int32)
    for s in range(S):
        row = ids[s * per:(s + 1) * per]
        grid[s] = ([bos] if use_bos else []) + row

    style, theta, rotary_dim, D = rope_layout(cfg)
    L = cfg.num_hidden_layers
    Hq = cfg.num_attention_heads
    Hkv = getattr(cfg, "num_key_value_heads", None) or Hq
    layer_types = getattr(cfg, "layer_types", None)
    window = getattr(cfg, "sliding_window", None)

    # Hooks: pre-RoPE q and k (after q_norm / k_norm when present).
    attn_modules = []
    for mod_name, mod in model.named_modules():
        if hasattr(mod, "q_proj") and hasattr(mod, "k_proj") and hasattr(mod, "v_proj"):
            attn_modules.append(mod)
    if len(attn_modules) != L:
        print(f"found {len(attn_modules)} attention modules with q_proj/k_proj/v_proj, expected {L}", file=sys.stderr)
        return 1
    taps = {}
    hooks = []

    def tap(layer, key, heads):
        def fn(_m, _inp, out):
            x = out[0] if isinstance(out, tuple) else out
            x = x.detach().float().cpu().numpy()[0]  # [T, H*D] or [T, H, D]
            taps[(layer, key)] = x.reshape(x.shape[0], heads, D).transpose(1, 0, 2)
        return fn

    for l, m in enumerate(attn_modules):
        qsrc = m.q_norm if hasattr(m, "q_norm") and m.q_norm is not None else m.q_proj
        ksrc = m.k_norm if hasattr(m, "k_norm") and m.k_norm is not None else m.k_proj
        hooks.append(qsrc.register_forward_hook(tap(l, "q_pre", Hq)))
        hooks.append(ksrc.register_forward_hook(tap(l, "k_pre", Hkv)))
    qk_norm = int(any(hasattr(m, "q_norm") and m.q_norm is not None for m in attn_modules))

    out = {(l, k): np.zeros((S, Hkv if k != "q_pre" else Hq, T, D), np.float32)
           for l in range(L) for k in ("k_pre", "k", "v", "q_pre")}
    with torch.no_grad():
        for s in range(S):
            inp = torch.tensor(grid[s:s + 1].astype(np.int64), device=args.device)
            res = model(input_ids=inp, use_cache=True)
            for l in range(L):
                k, v = cache_kv(res.past_key_values, l)
                out[(l, "k")][s] = k[0].float().cpu().numpy()
                out[(l, "v")][s] = v[0].float().cpu().numpy()
                out[(l, "k_pre")][s] = taps[(l, "k_pre")]
                out[(l, "q_pre")][s] = taps[(l, "q_pre")]
    for h in hooks:
        h.remove()

    store = np.float32 if args.float32 else np.float16
    with h5py.File(args.out, "w") as f:
        f.attrs["kvcapture_version"] = np.int32(1)
        f.attrs["model_name"] = name
        f.attrs["num_layers"] = np.int32(L)
        f.attrs["num_query_heads"] = np.int32(Hq)
        f.attrs["num_kv_heads"] = np.int32(Hkv)
        f.attrs["head_dim"] = np.int32(D)
        f.attrs["rope_style"] = style
        f.attrs["rope_theta"] = np.float64(theta)
        f.attrs["rotary_dim"] = np.int32(rotary_dim)
        f.attrs["qk_norm"] = np.int32(qk_norm)
        f.attrs["source_dtype"] = args.dtype
        f.attrs["text_source"] = (f"{args.text or args.ids}: {S} sequences of "
                                  f"{'BOS + ' if use_bos else ''}{per} consecutive tokens; tools/capture_hf.py, "
                                  f"transformers {transformers.__version__}")
        f.create_dataset("tokens", data=grid)
        f.create_dataset("positions", data=np.tile(np.arange(T, dtype=np.int32), (S, 1)))
        for l in range(L):
            g = f.create_group(f"layers/{l}")
            sliding = layer_types is not None and "sliding" in str(layer_types[l])
            g.attrs["attention"] = "sliding" if sliding else "full"
            if sliding:
                g.attrs["sliding_window"] = np.int32(window)
            for k in ("k_pre", "k", "v", "q_pre"):
                x = out[(l, k)]
                if store == np.float16 and np.abs(x).max() > 65504:
                    print(f"layer {l} {k}: values beyond the float16 range; use --float32", file=sys.stderr)
                    return 1
                g.create_dataset(k, data=x.astype(store), chunks=(1, 1, min(T, 4096), D),
                                 compression="gzip", compression_opts=4, shuffle=True)
    print(f"wrote {args.out}: {S} x {T} tokens, {L} layers, {Hq}/{Hkv} heads, head_dim {D}, "
          f"rope {style} theta {theta} rotary_dim {rotary_dim}, qk_norm {qk_norm}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

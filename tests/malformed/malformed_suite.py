#!/usr/bin/python3
"""Malformed-input suite (issue 14, docs/reliability.md).

Generates malformed inputs of every defect class (zero or absurd sizes, unbounded layer lists and
grids, corrupt sidecars, failures that must not look like success, silently ignored inputs,
outputs over inputs, path tricks) and their neighbours, runs every `kvwb` command that reads each,
and checks the outcome:
  - no signal, no hang (<= 20 s), no more than 1.5 GiB of memory (RLIMIT_AS and peak RSS);
  - an "error" case exits 1 or 2 (never 0), prints `error[CODE]` with a typed code (never
    INTERNAL) and names the file (or the flag) at fault;
  - an "any" case (a neighbour that may be valid) may succeed, but must not crash, hang or print
    error[INTERNAL], and an error must name the file;
  - inputs are never modified (sha256 before and after).

Usage: malformed_suite.py KVWB [--jobs N] [--keep DIR] [--only SUBSTRING] [--list]
Exit 0 when every case passes; prints one line per failure and a summary.
"""
import argparse
import concurrent.futures as cf
import hashlib
import json
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

try:
    import h5py
    import numpy as np
except ImportError:  # pragma: no cover
    print("skip: the malformed-input suite needs /usr/bin/python3 with numpy and h5py")
    sys.exit(77)

TIME_LIMIT_S = 20.0
MEM_LIMIT = int(1.5 * (1 << 30))

# Base capture geometry: small, with q_pre, enough tokens for block_size 32.
L, HQ, HKV, D, S, T = 3, 4, 2, 32, 2, 96
BLOCK = ["--block-size", "32"]
PLAN = ["--target-ratio", "2", "--k-codec", "q4_0", "--v-codec", "q4_0"]


# ---------------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------------

def rng(seed=1):
    return np.random.default_rng(seed)


def write_capture(path, *, layers=None, attrs=None, drop_attrs=(), tensors=None, q=True,
                  dtype="f2", tokens=True, positions=False, edit=None):
    """A valid small capture, then edits. `edit(f)` gets the open h5py File."""
    r = rng(len(path))
    with h5py.File(path, "w") as f:
        a = {"kvcapture_version": np.int32(1), "model_name": "malformed/base", "num_layers": np.int32(L),
             "num_query_heads": np.int32(HQ), "num_kv_heads": np.int32(HKV), "head_dim": np.int32(D),
             "rope_style": "half_split", "rope_theta": np.float64(10000.0), "rotary_dim": np.int32(D),
             "qk_norm": np.int32(0)}
        a.update(attrs or {})
        for k, v in a.items():
            if k not in drop_attrs:
                f.attrs[k] = v
        g = f.create_group("layers")
        for l in (range(L) if layers is None else layers):
            lg = g.create_group(str(l))
            lg.attrs["attention"] = "full"
            for name, h in (("k_pre", HKV), ("k", HKV), ("v", HKV)) + ((("q_pre", HQ),) if q else ()):
                data = (r.standard_normal((S, h, T, D)) * (1.0 + 0.1 * l)).astype(dtype)
                lg.create_dataset(name, data=data, chunks=(1, 1, T, D))
        if tokens:
            f.create_dataset("tokens", data=np.arange(S * T, dtype=np.int32).reshape(S, T) % 50)
        if positions:
            f.create_dataset("positions", data=np.tile(np.arange(T, dtype=np.int32), (S, 1)))
        if edit:
            edit(f)


def st_bytes(tensors, metadata=None, raw_header=None, pad=True):
    """safetensors bytes of [(name, dtype, shape, bytes)] (data back to back in the given order)."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    off = 0
    blobs = []
    for name, dt, shape, data in tensors:
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(data)]}
        off += len(data)
        blobs.append(data)
    text = raw_header if raw_header is not None else json.dumps(header)
    hb = text.encode() if isinstance(text, str) else text
    if pad:
        while (8 + len(hb)) % 8:
            hb += b" "
    return struct.pack("<Q", len(hb)) + hb + b"".join(blobs)


def sigma_factors(H=HKV, Dd=D, seed=3):
    r = rng(seed)
    out = []
    for _ in range(H):
        a = r.standard_normal((4 * Dd, Dd))
        sigma = a.T @ a / (4 * Dd)
        reg = sigma + 1e-3 * np.mean(np.diag(sigma)) * np.eye(Dd)
        lo = np.linalg.cholesky(reg)
        inv = np.linalg.inv(lo)
        inv = np.tril(inv)
        out.append((lo.astype(np.float32), inv.astype(np.float32), sigma.astype(np.float32)))
    return out


def sigma_tensors(layers=range(L), H=HKV, Dd=D, mutate=None):
    ts = []
    for l in layers:
        f = sigma_factors(H, Dd, seed=10 + l)
        chol = np.stack([x[0] for x in f])
        inv = np.stack([x[1] for x in f])
        sig = np.stack([x[2] for x in f])
        parts = {"chol": chol, "inv_chol": inv, "sigma": sig}
        if mutate:
            mutate(l, parts)
        for k in ("chol", "inv_chol", "sigma"):
            v = parts.get(k)
            if v is None:
                continue
            ts.append((f"layer_{l}_{k}", "F32", v.shape, np.ascontiguousarray(v, dtype=np.float32).tobytes()))
    ts.sort(key=lambda t: t[0])
    return ts


def write_bytes(path, b):
    with open(path, "wb") as fh:
        fh.write(b)


def write_json(path, obj):
    with open(path, "w") as fh:
        fh.write(obj if isinstance(obj, str) else json.dumps(obj))


def write_model(folder, *, cfg_over=None, manifest_edit=None, weights_edit=None, tokens_json=True):
    """A tiny Llama model in the raw-folder layout (config.json + manifest.json + .bin tensors)."""
    os.makedirs(folder, exist_ok=True)
    cfg = {"architecture": "LlamaForCausalLM", "hidden_size": 32, "num_layers": 2, "num_heads": 2,
           "num_kv_heads": 2, "head_dim": 16, "intermediate_size": 64, "vocab_size": 64,
           "max_position": 256, "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "rope_enabled": True,
           "tie_embeddings": False, "bos_token_id": 1, "eos_token_id": 2}
    cfg.update(cfg_over or {})
    write_json(os.path.join(folder, "config.json"), cfg)
    r = rng(5)
    h, qd, kd, inter, voc = 32, 32, 32, 64, 64
    shapes = {"lm_head.weight": (voc, h), "model.embed_tokens.weight": (voc, h), "model.norm.weight": (h,)}
    for l in range(2):
        p = f"model.layers.{l}."
        shapes.update({p + "self_attn.q_proj.weight": (qd, h), p + "self_attn.k_proj.weight": (kd, h),
                       p + "self_attn.v_proj.weight": (kd, h), p + "self_attn.o_proj.weight": (h, qd),
                       p + "mlp.gate_proj.weight": (inter, h), p + "mlp.up_proj.weight": (inter, h),
                       p + "mlp.down_proj.weight": (h, inter), p + "input_layernorm.weight": (h,),
                       p + "post_attention_layernorm.weight": (h,)})
    entries = []
    for name, shape in sorted(shapes.items()):
        fn = name.replace(".", "_") + ".bin"
        data = (r.standard_normal(shape) * 0.1).astype(np.float32)
        if name.endswith("norm.weight"):
            data = np.ones(shape, np.float32)
        if weights_edit:
            data = weights_edit(name, data)
        data.tofile(os.path.join(folder, fn))
        entries.append({"name": name, "shape": list(shape), "dtype": "float32", "filename": fn,
                        "nbytes": int(data.nbytes), "byte_offset": 0})
    man = {"tensors": entries}
    if manifest_edit:
        manifest_edit(man)
    write_json(os.path.join(folder, "manifest.json"), man)
    if tokens_json:
        pieces = [{"id": 0, "piece": "<unk>", "score": 0.0, "type": 1},
                  {"id": 1, "piece": "<s>", "score": 0.0, "type": 2},
                  {"id": 2, "piece": "</s>", "score": 0.0, "type": 2}]
        for i in range(3, 64):
            pieces.append({"id": i, "piece": chr(ord("a") + (i - 3) % 26) * (1 + (i - 3) // 26), "score": -i,
                           "type": 0})
        write_json(os.path.join(folder, "tokens.json"), pieces)


def rehash_manifest(bundle):
    mp = os.path.join(bundle, "MANIFEST.json")
    m = json.load(open(mp))
    for e in m.get("files", []):
        p = os.path.join(bundle, e["path"])
        if os.path.isfile(p):
            b = open(p, "rb").read()
            e["sha256"] = hashlib.sha256(b).hexdigest()
            e["size_bytes"] = len(b)
    write_json(mp, json.dumps(m, indent=2))


# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------

class Suite:
    def __init__(self, kvwb, root):
        self.kvwb = kvwb
        self.root = root
        self.cases = []
        self.n = 0

    def path(self, name):
        p = os.path.join(self.root, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    def out(self, name):
        """A fresh output path for one case (never pre-created)."""
        self.n += 1
        return os.path.join(self.root, "out", f"{self.n:04d}-{name}")

    def add(self, cls, name, args, names, expect="error", unchanged=(), stdin=None):
        """names: substrings one of which the error message must contain."""
        self.cases.append({"class": cls, "name": name, "args": [str(a) for a in args],
                           "names": [os.path.basename(str(n)) if os.sep in str(n) else str(n) for n in names],
                           "expect": expect, "unchanged": [str(u) for u in unchanged]})

    # -- capture readers --
    def capture_commands(self, cls, name, cap, expect="error", info_expect=None):
        """info_expect: the expectation of `info`, which describes a capture (non-finite counts
        included) rather than using it; defaults to `expect`."""
        o = lambda tag: self.out(f"{name}-{tag}")
        grid = self.base_grid
        cmds = [
            ("info", ["info", cap]),
            ("info-json", ["info", cap, "--json"]),
            ("run", ["run", cap, "-q", *BLOCK]),
            ("analyze", ["analyze", cap, "-q"]),
            ("calibrate", ["calibrate", cap, "--out", o("cal"), "-q", *BLOCK]),
            ("export-bundle", ["export-bundle", cap, "--out", o("bundle"), "-q", *BLOCK]),
            ("sweep", ["sweep", cap, "--grid", grid, "--out", o("store")]),
            ("recommend-boundary", ["recommend-boundary", cap, *BLOCK]),
            ("plan", ["plan", cap, *PLAN]),
        ]
        for tag, args in cmds:
            e = info_expect if (tag.startswith("info") and info_expect) else expect
            self.add(cls, f"{name} [{tag}]", args, [cap], e, unchanged=[cap])

    def build(self):
        k = self.kvwb
        base = self.path("base.kvc.h5")
        write_capture(base)
        self.base = base
        grid = self.path("grid-ok.json")
        write_json(grid, {"bits_k": [3, 4], "fixed": {"block_size": 32}})
        self.base_grid = grid

        # ===== class 1: zero or absurd sizes from a capture =====
        C = "1-capture-sizes"
        I32MAX = 2**31 - 1
        attr_cases = {
            "num_layers-0": {"num_layers": np.int32(0)},
            "num_layers-neg": {"num_layers": np.int32(-1)},
            "num_layers-int32max": {"num_layers": np.int32(I32MAX)},
            "num_layers-5000": {"num_layers": np.int32(5000)},
            "num_layers-int64": {"num_layers": np.int64(2**40)},
            "num_layers-float": {"num_layers": np.float64(3.5)},
            "num_layers-string": {"num_layers": "3"},
            "num_layers-array": {"num_layers": np.array([3, 3], np.int32)},
            "head_dim-0": {"head_dim": np.int32(0)},
            "head_dim-2^20": {"head_dim": np.int32(2**20)},
            "head_dim-int32max": {"head_dim": np.int32(I32MAX)},
            "head_dim-mismatch": {"head_dim": np.int32(16), "rotary_dim": np.int32(16)},
            "heads-zero": {"num_kv_heads": np.int32(0)},
            "heads-not-multiple": {"num_query_heads": np.int32(3)},
            "heads-int32max": {"num_query_heads": np.int32(I32MAX), "num_kv_heads": np.int32(I32MAX)},
            "heads-mismatch": {"num_kv_heads": np.int32(4), "num_query_heads": np.int32(8)},
            "version-2": {"kvcapture_version": np.int32(2)},
            "version-0": {"kvcapture_version": np.int32(0)},
            "version-2^32+1": {"kvcapture_version": np.int64(2**32 + 1)},
            "rope-style-bogus": {"rope_style": "spiral"},
            "rope-theta-0": {"rope_theta": np.float64(0.0)},
            "rope-theta-nan": {"rope_theta": np.float64("nan")},
            "rope-theta-inf": {"rope_theta": np.float64("inf")},
            "rotary-odd": {"rotary_dim": np.int32(3)},
            "rotary-too-big": {"rotary_dim": np.int32(64)},
            "qk_norm-7": {"qk_norm": np.int32(7)},
        }
        for n, a in attr_cases.items():
            p = self.path(f"cap/{n}.kvc.h5")
            write_capture(p, attrs=a)
            self.capture_commands(C, n, p)
        for attr in ("kvcapture_version", "model_name", "num_layers", "num_query_heads", "num_kv_heads",
                     "head_dim", "rope_style", "rope_theta"):
            p = self.path(f"cap/missing-{attr}.kvc.h5")
            write_capture(p, drop_attrs=(attr,))
            self.capture_commands(C, f"missing-{attr}", p)

        def huge_name(f):
            f["layers"].move("2", "999999999")
        for n, layers, attrs, edit in [
            ("layer-name-huge", None, {}, huge_name),
            ("layer-name-int32max", [0, 1], {"num_layers": np.int32(I32MAX)},
             lambda f: f["layers"].copy("1", str(I32MAX - 1))),
            ("layer-name-padded", None, {}, lambda f: f["layers"].move("2", "02")),
            ("layer-name-text", None, {}, lambda f: f["layers"].move("2", "two")),
            ("layer-name-negative", None, {}, lambda f: f["layers"].move("2", "-2")),
            ("layers-empty", [], {}, None),
            ("layers-missing", [], {}, lambda f: f.__delitem__("layers")),
            ("layers-is-dataset", [], {}, lambda f: (f.__delitem__("layers"), f.create_dataset("layers", data=[1]))),
            ("layer-is-dataset", None, {}, lambda f: (f["layers"].__delitem__("2"),
                                                      f["layers"].create_dataset("2", data=[1.0]))),
        ]:
            p = self.path(f"cap/{n}.kvc.h5")
            write_capture(p, layers=layers, attrs=attrs, edit=edit)
            self.capture_commands(C, n, p)

        def ds_edit(name, fn):
            def e(f):
                fn(f["layers/1"], name)
            return e

        def replace(shape=None, dtype="f2", data=None, chunks=True, fill=True):
            def fn(g, name):
                del g[name]
                if data is not None:
                    g.create_dataset(name, data=data)
                    return
                sh = shape
                ch = (1, 1, min(sh[2], 4096) or 1, sh[3] or 1) if (chunks and len(sh) == 4 and all(sh)) else None
                ds = g.create_dataset(name, shape=sh, dtype=dtype, chunks=ch)
                if fill and all(sh) and np.prod(sh) < 10**6:
                    ds[...] = 0.5
            return fn

        for n, kind, fn in [
            ("v-missing", "v", lambda g, nm: g.__delitem__(nm)),
            ("k-both-missing", "k", lambda g, nm: (g.__delitem__("k"), g.__delitem__("k_pre"))),
            ("v-rank3", "v", replace(data=np.zeros((S, HKV, T), np.float16))),
            ("v-rank5", "v", replace(data=np.zeros((S, HKV, T, D, 1), np.float16))),
            ("v-heads", "v", replace(shape=(S, HKV + 1, T, D))),
            ("v-dim", "v", replace(shape=(S, HKV, T, D + 2))),
            ("v-tokens", "v", replace(shape=(S, HKV, T - 1, D))),
            ("q-heads", "q_pre", replace(shape=(S, HKV, T, D))),
            ("v-int32", "v", replace(data=np.zeros((S, HKV, T, D), np.int32))),
            ("v-float64", "v", replace(data=np.zeros((S, HKV, T, D), np.float64))),
            ("v-string", "v", replace(data=np.array([b"x"] * 4))),
            ("v-sparse", "v", replace(shape=(S, HKV, T, D), fill=False)),
            ("v-scalar", "v", replace(data=np.float16(1.0))),
        ]:
            p = self.path(f"cap/{n}.kvc.h5")
            write_capture(p, edit=ds_edit(kind, fn))
            self.capture_commands(C, n, p)

        # Whole-file empty dims and sparse (declared, never written) huge datasets.
        def sparse_all(shape_fn, attrs):
            def e(f):
                for k2, v2 in attrs.items():
                    f.attrs[k2] = v2
                for l in f["layers"]:
                    g = f["layers"][l]
                    for nm in list(g.keys()):
                        h = HQ if nm == "q_pre" else int(f.attrs["num_kv_heads"])
                        sh = shape_fn(h)
                        del g[nm]
                        g.create_dataset(nm, shape=sh, dtype="f2",
                                         chunks=(1, 1, min(sh[2], 4096) or 1, min(sh[3], 65536) or 1)
                                         if all(sh) else None)
                if "tokens" in f:
                    del f["tokens"]
            return e
        for n, fn, attrs in [
            ("sparse-head_dim-2^20", lambda h: (1, h, 8, 2**20), {"head_dim": np.int32(2**20), "rotary_dim": np.int32(64)}),
            ("sparse-head_dim-4096", lambda h: (1, h, 8, 4096), {"head_dim": np.int32(4096), "rotary_dim": np.int32(64)}),
            ("sparse-tokens-2^30", lambda h: (1, h, 2**30, D), {}),
            ("sparse-seqs-2^24", lambda h: (2**24, h, 8, D), {}),
            ("empty-tokens", lambda h: (1, h, 0, D), {}),
            ("empty-seqs", lambda h: (0, h, 8, D), {}),
        ]:
            p = self.path(f"cap/{n}.kvc.h5")
            write_capture(p, q=False, edit=sparse_all(fn, attrs))
            self.capture_commands(C, n, p)

        # Partially written: one chunk of a layer never written.
        def partial(f):
            g = f["layers/2"]
            del g["v"]
            ds = g.create_dataset("v", shape=(S, HKV, T, D), dtype="f2", chunks=(1, 1, T, D))
            ds[0, 0] = 1.0
        p = self.path("cap/v-partial.kvc.h5")
        write_capture(p, edit=partial)
        self.capture_commands(C, "v-partial", p)

        # Non-finite values, index datasets, sliding attributes.
        def put(name, val, layer="1"):
            def e(f):
                ds = f[f"layers/{layer}/{name}"]
                a = ds[...]
                a.flat[7] = val
                ds[...] = a
            return e
        for n, edit, expect in [
            ("v-nan", put("v", np.nan), "error"),
            ("k_pre-inf", put("k_pre", np.inf), "error"),
            ("q-nan", put("q_pre", np.nan), "error"),
            ("tokens-shape", lambda f: (f.__delitem__("tokens"), f.create_dataset("tokens", data=np.zeros((S, T + 1), np.int32))), "error"),
            ("tokens-float", lambda f: (f.__delitem__("tokens"), f.create_dataset("tokens", data=np.zeros((S, T), np.float32))), "error"),
            ("tokens-rank1", lambda f: (f.__delitem__("tokens"), f.create_dataset("tokens", data=np.zeros((S * T,), np.int32))), "error"),
            ("positions-shape", lambda f: f.create_dataset("positions", data=np.zeros((1, 3), np.int32)), "error"),
            ("positions-huge", lambda f: f.create_dataset("positions", data=np.full((S, T), 2**31 - 1, np.int32)), "any"),
            ("positions-negative", lambda f: f.create_dataset("positions", data=np.full((S, T), -5, np.int32)), "any"),
            ("sliding-no-window", lambda f: f["layers/1"].attrs.__setitem__("attention", "sliding"), "error"),
            ("sliding-window-0", lambda f: (f["layers/1"].attrs.__setitem__("attention", "sliding"),
                                            f["layers/1"].attrs.__setitem__("sliding_window", np.int32(0))), "error"),
            ("attention-bogus", lambda f: f["layers/1"].attrs.__setitem__("attention", "local"), "error"),
            ("model-name-1MB", lambda f: f.attrs.__setitem__("model_name", "m" * (1 << 20)), "any"),
            ("extra-attr", lambda f: f.attrs.__setitem__("note", "hello"), "any"),
        ]:
            p = self.path(f"cap/{n}.kvc.h5")
            write_capture(p, edit=edit)
            self.capture_commands(C, n, p, expect, info_expect="any" if n in ("v-nan", "k_pre-inf", "q-nan") else None)

        # File-level damage.
        raw = open(base, "rb").read()
        for n, b in [("empty", b""), ("truncated-half", raw[: len(raw) // 2]), ("truncated-1k", raw[:1024]),
                     ("truncated-10", raw[:10]), ("zeros", b"\0" * 4096), ("text", b"not an hdf5 file\n" * 10),
                     ("superblock-flip", raw[:40] + bytes([raw[40] ^ 0xFF]) + raw[41:]),
                     ("tail-garbage", raw + b"\xff" * 333)]:
            p = self.path(f"cap/{n}.kvc.h5")
            write_bytes(p, b)
            self.capture_commands(C, n, p, "any" if n in ("tail-garbage", "superblock-flip") else "error")
        # Byte-flipped copies (a structural byte in the middle of the file).
        for i, off in enumerate([200, 700, 1500, 3000, 6000]):
            if off < len(raw):
                b = bytearray(raw)
                b[off] ^= 0x5A
                p = self.path(f"cap/flip-{off}.kvc.h5")
                write_bytes(p, bytes(b))
                for tag, args in (("info", ["info", p]), ("run", ["run", p, "-q", *BLOCK])):
                    self.add(C, f"flip-{off} [{tag}]", args, [p], "any", unchanged=[p])
        d = self.path("cap/a-folder.kvc.h5")
        os.makedirs(d, exist_ok=True)
        self.capture_commands("8-path-tricks", "folder-as-capture", d)
        fifo = self.path("cap/fifo.kvc.h5")
        if not os.path.exists(fifo):
            os.mkfifo(fifo)
        self.capture_commands("8-path-tricks", "fifo-as-capture", fifo)
        self.capture_commands("8-path-tricks", "missing-capture", self.path("cap/absent.kvc.h5"))

        # ===== class 1/5: Σ_q safetensors =====
        C = "1-sigma-q"
        good_sq = self.path("sq/good.safetensors")
        write_bytes(good_sq, st_bytes(sigma_tensors()))
        self.good_sq = good_sq

        def sq_cmds(name, f, expect="error", alone="error"):
            """alone: the expectation of sigma-q-info, which checks the file without a capture."""
            o = lambda tag: self.out(f"{name}-{tag}")
            for tag, args in [
                ("sigma-q-info", ["sigma-q-info", f]),
                ("run", ["run", base, "-q", "--q-precond", f, *BLOCK]),
                ("analyze", ["analyze", base, "-q", "--q-precond", f]),
                ("export-bundle", ["export-bundle", base, "--q-precond", f, "--out", o("b"), "-q", *BLOCK,
                                   "--gaussian-centroids"]),
                ("recommend-boundary", ["recommend-boundary", base, "--q-precond", f, *BLOCK]),
            ]:
                self.add(C, f"{name} [{tag}]", args, [f], alone if tag == "sigma-q-info" else expect,
                         unchanged=[f, base])

        def mut(fn):
            return lambda l, parts: fn(l, parts)

        def setp(key, val):
            return mut(lambda l, p: p.__setitem__(key, val))
        sq_cases = [
            ("zero-dims", sigma_tensors(mutate=lambda l, p: p.update(
                chol=np.zeros((HKV, 0, 0), np.float32), inv_chol=np.zeros((HKV, 0, 0), np.float32),
                sigma=np.zeros((HKV, 0, 0), np.float32)))),
            ("zero-heads", sigma_tensors(mutate=lambda l, p: p.update(
                chol=np.zeros((0, D, D), np.float32), inv_chol=np.zeros((0, D, D), np.float32),
                sigma=np.zeros((0, D, D), np.float32)))),
            ("non-square", sigma_tensors(mutate=setp("chol", np.zeros((HKV, D, D + 1), np.float32)))),
            ("rank2", sigma_tensors(mutate=setp("inv_chol", np.eye(D, dtype=np.float32)))),
            ("heads-differ", sigma_tensors(mutate=lambda l, p: p.__setitem__("inv_chol", p["inv_chol"][:1]) if l == 1 else None)),
            ("dim-differ", sigma_tensors(mutate=lambda l, p: p.update(
                chol=np.stack([np.eye(16, dtype=np.float32)] * HKV),
                inv_chol=np.stack([np.eye(16, dtype=np.float32)] * HKV), sigma=None) if l == 2 else None)),
            ("inv-missing", sigma_tensors(mutate=setp("inv_chol", None))),
            ("not-lower", sigma_tensors(mutate=lambda l, p: p["chol"].__setitem__((0, 0, 5), 1.0))),
            ("diag-negative", sigma_tensors(mutate=lambda l, p: p["chol"].__setitem__((0, 3, 3), -1.0))),
            ("diag-zero", sigma_tensors(mutate=lambda l, p: p["chol"].__setitem__((1, 0, 0), 0.0))),
            ("nan", sigma_tensors(mutate=lambda l, p: p["chol"].__setitem__((0, 4, 2), np.nan))),
            ("inv-not-inverse", sigma_tensors(mutate=lambda l, p: p.__setitem__("inv_chol", np.tril(p["inv_chol"] * 1.5)))),
            ("inv-identity", sigma_tensors(mutate=lambda l, p: p.__setitem__(
                "inv_chol", np.stack([np.eye(D, dtype=np.float32)] * HKV)))),
            ("sigma-inconsistent", sigma_tensors(mutate=lambda l, p: p.__setitem__("sigma", p["sigma"] * 3.0))),
            ("sigma-shape", sigma_tensors(mutate=setp("sigma", np.zeros((HKV, D), np.float32)))),
            ("layer-index-huge", [(n.replace("layer_1_", "layer_99999999999999_"), *r) for n, *r in sigma_tensors()]),
            ("layer-index-4096", [(n.replace("layer_1_", "layer_4096_"), *r) for n, *r in sigma_tensors()]),
            ("layer-index-not-in-capture", [(n.replace("layer_2_", "layer_7_"), *r) for n, *r in sigma_tensors()]),
            ("heads-vs-capture", sigma_tensors(H=HKV + 1)),
            ("dim-vs-capture", sigma_tensors(Dd=16)),
            ("no-layers", [("other", "F32", (2,), b"\0" * 8)]),
        ]
        fits_alone = ("heads-vs-capture", "dim-vs-capture")
        # A calibration may hold more layers than the capture (they are not used): valid.
        valid = ("layer-index-not-in-capture",)
        for n, ts in sq_cases:
            p = self.path(f"sq/{n}.safetensors")
            write_bytes(p, st_bytes(ts))
            sq_cmds(n, p, "any" if n in valid else "error", alone="any" if n in fits_alone + valid else "error")
        f16 = [(n, "F16", s, np.frombuffer(b, np.float32).astype(np.float16).tobytes()) for n, _, s, b in sigma_tensors()]
        p = self.path("sq/dtype-f16.safetensors")
        write_bytes(p, st_bytes(f16))
        sq_cmds("dtype-f16", p, "any")
        i32 = [(n, "I32", s, b) for n, _, s, b in sigma_tensors()]
        p = self.path("sq/dtype-i32.safetensors")
        write_bytes(p, st_bytes(i32))
        sq_cmds("dtype-i32", p)
        good = open(good_sq, "rb").read()
        for n, b in [
            ("empty", b""), ("short", b"\x10\0\0"), ("len-huge", struct.pack("<Q", 2**63) + b"{}"),
            ("len-past-end", struct.pack("<Q", 10**6) + b"{}"),
            ("header-not-json", st_bytes([], raw_header="{nope")), ("header-array", st_bytes([], raw_header="[]")),
            ("header-deep", st_bytes([], raw_header="[" * 100000 + "]" * 100000)),
            ("dup-key", st_bytes([], raw_header='{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},'
                                                '"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}')),
            ("offsets-overlap", st_bytes([], raw_header=json.dumps({
                "layer_0_chol": {"dtype": "F32", "shape": [1, 1, 1], "data_offsets": [0, 4]},
                "layer_0_inv_chol": {"dtype": "F32", "shape": [1, 1, 1], "data_offsets": [0, 4]}})) + b"\0" * 4),
            ("shape-overflow", st_bytes([], raw_header=json.dumps({
                "layer_0_chol": {"dtype": "F32", "shape": [2**40, 2**40, 2**40], "data_offsets": [0, 4]}})) + b"\0" * 4),
            ("truncated", good[: len(good) // 2]),
            ("header-garbage-bytes", good[:8] + bytes(range(256)) * 4),
        ]:
            p = self.path(f"sq/raw-{n}.safetensors")
            write_bytes(p, b)
            sq_cmds(f"raw-{n}", p)
        d = self.path("sq/folder.safetensors")
        os.makedirs(d, exist_ok=True)
        sq_cmds("folder", d)
        # Class 5: analyze --q-precond FILE must open FILE even without --outliers.
        self.add("5-ignored", "analyze --q-precond missing file", ["analyze", base, "-q", "--q-precond",
                 self.path("sq/absent.safetensors")], ["absent.safetensors"])

        # ===== class 3: bundle sidecars (manifest re-hashed so the checks go deep) =====
        C = "3-bundle"
        good_bundle = self.path("bundle/good")
        shutil.rmtree(good_bundle, ignore_errors=True)
        rc = subprocess.run([k, "export-bundle", base, "--out", good_bundle, "-q", *BLOCK, "--q-precond", "capture",
                             "--gaussian-centroids"], capture_output=True, text=True)
        if rc.returncode != 0:
            raise SystemExit("cannot export the base bundle: " + rc.stderr)

        def bundle_case(n, edit, expect="error", names=None):
            dst = self.path(f"bundle/{n}")
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(good_bundle, dst)
            edit(dst)
            for tag, args in (("check", ["bundle-check", dst]), ("check-json", ["bundle-check", dst, "--json"]),
                              ("check-partial", ["bundle-check", dst, "--partial"])):
                self.add(C, f"{n} [{tag}]", args, names or [dst], expect, unchanged=[dst])

        def edit_json(name, edit_fn, indent=None, rehash=True):
            """An edit of the bundle's JSON file `name` by edit_fn (in place), then the manifest re-hashed."""
            def e(dst):
                p = os.path.join(dst, name)
                j = json.load(open(p))
                edit_fn(j)
                write_json(p, json.dumps(j, indent=indent))
                if rehash:
                    rehash_manifest(dst)
            return e

        def side(key, val):
            return edit_json("sigma_q.json", lambda j: j.__setitem__(key, val), indent=2)
        for key, vals in {"num_kv_heads": [-1, 0, 2**31 - 1, 2**40, 1.5, "2", None],
                          "head_dim": [-1, 0, 2**20, 2**31 - 1, 2**40, "32"],
                          "num_q_heads": [-4, 0, 2**40, 3],
                          "num_layers": [-1, 0, 2**31 - 1, 2**40, 1],
                          "ridge": [-1, "x", 1e308],
                          "layer_types": ["full_attention", [], ["x"] * 100000, [1, 2, 3]],
                          "diagnostics": [[{"layer": 2**40, "kv_head": -1}], "x", [[]]],
                          "layers_written": [[-1], [2**40], "0-2147483647"],
                          "skip_layers": [[2**40], [-5]],
                          "regularisation": [{"target_cond": -5}, {"target_cond": 1.0}, {"target_cond": 1e308}]}.items():
            for i, v in enumerate(vals):
                bundle_case(f"sidecar-{key}-{i}", side(key, v), "error" if key not in ("regularisation",) else "any")

        def manifest(edit_fn):
            return edit_json("MANIFEST.json", edit_fn, rehash=False)
        for n, fn in [
            ("version-huge", lambda m: m.__setitem__("bundle_format_version", 2**40)),
            ("version-neg", lambda m: m.__setitem__("bundle_format_version", -(2**40))),
            ("version-string", lambda m: m.__setitem__("bundle_format_version", "1")),
            ("files-traversal", lambda m: m["files"].append({"path": "../../../etc/passwd", "sha256": "0" * 64, "size_bytes": 1})),
            ("files-absolute", lambda m: m["files"].append({"path": "/etc/passwd", "sha256": "0" * 64, "size_bytes": 1})),
            ("files-size-huge", lambda m: m["files"][0].__setitem__("size_bytes", 2**63)),
            ("files-not-list", lambda m: m.__setitem__("files", {"a": 1})),
            ("files-entry-junk", lambda m: m["files"].append([1, 2])),
            ("not-object", lambda m: m.clear()),
        ]:
            bundle_case(f"manifest-{n}", manifest(fn))
        bundle_case("manifest-not-json", lambda d: write_bytes(os.path.join(d, "MANIFEST.json"), b"{\x00\xff"))
        bundle_case("manifest-deep", lambda d: write_bytes(os.path.join(d, "MANIFEST.json"), b"[" * 200000))

        def cc(edit_fn):
            return edit_json("codec_config.json", edit_fn)
        for n, fn in [
            ("block-size-huge", lambda j: j.__setitem__("block_size", 2**40)),
            ("block-size-string", lambda j: j.__setitem__("block_size", "x")),
            ("boundary-huge", lambda j: j.__setitem__("boundary_skip_layers", [2**40])),
            ("boundary-range", lambda j: j.__setitem__("boundary_skip_layers", "0-2147483647")),
            ("k-not-object", lambda j: j["streams"].__setitem__("K", 5)),
            ("empty", lambda j: j.clear()),
        ]:
            bundle_case(f"codec-config-{n}", cc(fn))

        def centroid(edit_bytes):
            def e(dst):
                for fn in os.listdir(dst):
                    if fn.endswith("_centroids.f32"):
                        p = os.path.join(dst, fn)
                        write_bytes(p, edit_bytes(open(p, "rb").read()))
                rehash_manifest(dst)
            return e
        bundle_case("centroids-short", centroid(lambda b: b[:-4]))
        bundle_case("centroids-nan", centroid(lambda b: struct.pack("<f", float("nan")) + b[4:]))
        bundle_case("centroids-descending", centroid(lambda b: b[::-1]))
        bundle_case("sigma-st-truncated", lambda d: (write_bytes(os.path.join(d, "sigma_q.safetensors"),
                                                                 open(os.path.join(d, "sigma_q.safetensors"), "rb").read()[:100]),
                                                     rehash_manifest(d)))
        bundle_case("sigma-st-zero-dims", lambda d: (write_bytes(os.path.join(d, "sigma_q.safetensors"), st_bytes(
            sigma_tensors(mutate=lambda l, p: p.update(chol=np.zeros((HKV, 0, 0), np.float32),
                                                        inv_chol=np.zeros((HKV, 0, 0), np.float32),
                                                        sigma=np.zeros((HKV, 0, 0), np.float32))))), rehash_manifest(d)))
        bundle_case("deploy-env-binary", lambda d: (write_bytes(os.path.join(d, "deploy.env"), bytes(range(256)) * 64),
                                                    rehash_manifest(d)))
        bundle_case("subfolder", lambda d: os.makedirs(os.path.join(d, "extra")))
        bundle_case("fifo-file", lambda d: (os.remove(os.path.join(d, "deploy.env")), os.mkfifo(os.path.join(d, "deploy.env"))))
        bundle_case("symlink-file", lambda d: (os.remove(os.path.join(d, "deploy.env")),
                                               os.symlink("/etc/passwd", os.path.join(d, "deploy.env"))))
        p = self.path("bundle/a-file")
        write_bytes(p, b"x")
        self.add(C, "bundle-check on a file", ["bundle-check", p], [p])
        self.add(C, "bundle-check on a missing folder", ["bundle-check", self.path("bundle/absent")], ["absent"])

        # ===== class 2/4/5: run configurations and flags =====
        C = "2-config"

        def cfg_cmds(n, f, expect="error"):
            o = lambda tag: self.out(f"{n}-{tag}")
            for tag, args in [("run", ["run", base, "-q", "--config", f]),
                              ("analyze", ["analyze", base, "-q", "--config", f]),
                              ("export-bundle", ["export-bundle", base, "--config", f, "--out", o("b"), "-q"]),
                              ("calibrate", ["calibrate", base, "--config", f, "--out", o("c"), "-q"]),
                              ("plan", ["plan", base, "--config", f, *PLAN])]:
                self.add(C, f"config {n} [{tag}]", args, [f], expect, unchanged=[f])
        for n, obj in [
            ("not-json", "{block_size: 32"), ("array", "[1,2]"), ("deep", "[" * 100000 + "]" * 100000),
            ("block-size-huge", {"block_size": 2**40}), ("block-size-neg", {"block_size": -1}),
            ("block-size-string", {"block_size": "32"}), ("block-size-float", {"block_size": 32.5}),
            ("layers-range-int32", {"layers": "0-2147483647"}), ("layers-range-1e8", {"layers": "0-100000000"}),
            ("layers-2^40", {"layers": [2**40]}), ("layers-neg", {"layers": [-1]}), ("layers-float", {"layers": [1.5]}),
            ("layers-not-in-capture", {"layers": [7]}), ("layers-overflow-text", {"layers": "99999999999"}),
            ("boundary-range-int32", {"boundary": "0-2147483647"}), ("boundary-2^40", {"boundary": [2**40]}),
            ("boundary-reversed", {"boundary": "5-3"}), ("boundary-junk", {"boundary": "0,,x"}),
            ("overrides-layer-2^40", {"overrides": [{"layer": 2**40, "k": {"codec": "q8_0"}}]}),
            ("overrides-layer-neg", {"overrides": [{"layer": -1, "k": {"codec": "q8_0"}}]}),
            ("overrides-not-objects", {"overrides": [5]}),
            ("codec-unknown", {"k": {"codec": "zip"}}), ("codec-int", {"k": {"codec": 5}}),
            ("param-out-of-range", {"k": {"codec": "kakeya_pca", "params": {"bit_width": 99}}}),
            ("param-unknown", {"k": {"codec": "kakeya_pca", "params": {"colour": "red"}}}),
            ("param-huge", {"k": {"codec": "kakeya_pca", "params": {"k": 2**62}}}),
            ("target-cond-string", {"target_cond": "x"}), ("target-cond-1", {"target_cond": 1.0}),
            ("threads-2^40", {"threads": 2**40}), ("threads-neg", {"threads": -3}),
            ("q-skip-range", {"q_precond_skip_layers": "0-2147483647"}),
            ("unknown-key", {"colour": "red"}), ("centroids-missing", {"k": {"codec": "kakeya_pca", "centroids_file": "/nonexistent.f32"}}),
            ("q-precond-missing", {"q_precond": "/nonexistent.safetensors"}),
            ("attn-scale-nan", {"attn_scale": "nan"}), ("attn-scale-neg", {"attn_scale": -1.0}),
        ]:
            p = self.path(f"cfg/{n}.json")
            write_json(p, obj)
            names = [p]
            if n == "centroids-missing":
                names = ["nonexistent.f32"]
            if n == "q-precond-missing":
                names = ["nonexistent.safetensors"]
            if n == "layers-not-in-capture":
                names = [base]  # the capture is named: the layer is missing from it
            for tag, args in [("run", ["run", base, "-q", "--config", p]),
                              ("analyze", ["analyze", base, "-q", "--config", p]),
                              ("export-bundle", ["export-bundle", base, "--config", p, "--out", self.out(f"{n}-b"), "-q"]),
                              ("calibrate", ["calibrate", base, "--config", p, "--out", self.out(f"{n}-c"), "-q"]),
                              ("plan", ["plan", base, "--config", p, "--target-ratio", "2"])]:
                self.add(C, f"config {n} [{tag}]", args, names + ([p] if names[0] != p else []), "error", unchanged=[p])

        C = "2-flags"
        for flag, val in [("--boundary", "0-2147483647"), ("--boundary", "0-100000000"), ("--layers", "0-2147483647"),
                          ("--boundary", "99999999999"), ("--layers", "-1"), ("--layers", "7"), ("--boundary", "9"),
                          ("--q-precond-skip", "0-2147483647"), ("--block-size", "0"), ("--block-size", "1099511627776"),
                          ("--threads", "1099511627776"), ("--bits-k", "99"), ("--target-cond", "nan"),
                          ("--k-param", "bit_width=1e400"), ("--seed", "x"), ("--centroids-k", self.path("cap/a-folder.kvc.h5")),
                          ("--centroids-k", fifo)]:
            for cmd in ("run", "analyze", "recommend-boundary"):
                extra = ["-q"] if cmd != "recommend-boundary" else []
                self.add(C, f"{cmd} {flag} {val}", [cmd, base, *extra, flag, val],
                         [flag, val, os.path.basename(val), "'" + val], "error")

        # ===== class 2: grids =====
        C = "2-grid"

        def grid_cmds(n, g, expect="error"):
            self.add(C, f"grid {n} [sweep]", ["sweep", base, "--grid", g, "--out", self.out(f"{n}-s")], [g], expect,
                     unchanged=[g])
            self.add(C, f"grid {n} [proxy-truth]", ["proxy-truth", "--capture", base, "--model", self.model,
                                                     "--ids", self.ids, "--grid", g, "--context", "32",
                                                     "--continuation", "8", "--passages", "1"], [g], expect, unchanged=[g])
        self.model = self.path("model/good")
        write_model(self.model)
        self.ids = self.path("model/ids.txt")
        write_json(self.ids, " ".join(str(3 + i % 60) for i in range(400)))
        vals = list(range(1, 101))
        for n, g in [
            ("cells-1e6", {"bits_k": vals, "bits_v": vals, "seed": vals}),
            ("cells-over-cap-list", [{"seed": list(range(60000))}, {"seed": list(range(60000, 120000))}]),
            ("cells-over-cap-grids", {"grids": [{"seed": list(range(60000))}, {"seed": list(range(60000, 120000))}]}),
            ("cells-1e18", {f"k{i}": vals for i in range(9)}),
            ("empty-list", {"bits_k": []}), ("not-list", {"bits_k": 3}), ("empty-grids", {"grids": []}),
            ("unknown-option", {"colour": ["red"]}), ("bad-value", {"bits_k": [99]}),
            ("layers-range", {"layers": ["0-2147483647"]}), ("boundary-range", {"boundary": ["0-2147483647", "1"]}),
            ("base-bad", {"base": {"block_size": -1}, "bits_k": [3]}), ("fixed-not-object", {"fixed": 3, "bits_k": [3]}),
            ("not-json", "{"), ("scalar", "3"), ("deep", "[" * 100000 + "]" * 100000),
            ("grids-junk", {"grids": [3]}),
        ]:
            p = self.path(f"grid/{n}.json")
            write_json(p, g)
            grid_cmds(n, p)

        # ===== class 4: failure must not look like success =====
        C = "4-failure"
        for n in ("missing-head_dim", "v-nan", "truncated-half", "v-partial"):
            p = self.path(f"cap/{n}.kvc.h5")
            self.add(C, f"sweep on {n}", ["sweep", p, "--grid", grid, "--out", self.out(f"{n}-sweep")], [p], "error")
            self.add(C, f"proxy-truth on {n}", ["proxy-truth", "--capture", p, "--model", self.model, "--ids", self.ids,
                                                "--grid", grid, "--context", "32", "--continuation", "8",
                                                "--passages", "1"], [p], "error")
        nan_model = self.path("model/nan-weights")
        write_model(nan_model, weights_edit=lambda name, d: (d * np.nan) if "embed" in name else d)
        inf_model = self.path("model/inf-weights")
        write_model(inf_model, weights_edit=lambda name, d: (d * 1e38) if "lm_head" in name or "down" in name else d)
        for mdl in (nan_model, inf_model):
            self.add(C, f"eval on {os.path.basename(mdl)}", ["eval", "--model", mdl, "--ids", self.ids, "--context", "32",
                                                              "--continuation", "8", "--passages", "1"], [mdl], "error")

        # ===== class 8: model folders, text and id files =====
        C = "8-model"

        def model_cmds(n, m, expect="error", names=None):
            self.add(C, f"model {n} [eval]", ["eval", "--model", m, "--ids", self.ids, "--context", "32",
                                              "--continuation", "8", "--passages", "1"], names or [m], expect)
            self.add(C, f"model {n} [capture]", ["capture", "--model", m, "--ids", self.ids, "--seqs", "1",
                                                 "--tokens", "32", "--out", self.out(f"{n}-cap.kvc.h5")], names or [m], expect)
        def fresh_model(n, **kw):
            """A new model folder model/<n> (any earlier one removed) written by write_model."""
            m = self.path(f"model/{n}")
            shutil.rmtree(m, ignore_errors=True)
            write_model(m, **kw)
            return m

        for n, kw, names in [
            ("traversal", {"manifest_edit": lambda m: m["tensors"][0].__setitem__("filename", "../../../../../../etc/passwd")}, None),
            ("absolute", {"manifest_edit": lambda m: m["tensors"][0].__setitem__("filename", "/etc/passwd")}, None),
            ("shape-overflow", {"manifest_edit": lambda m: m["tensors"][0].__setitem__("shape", [2**40, 2**40])}, None),
            ("offset-huge", {"manifest_edit": lambda m: m["tensors"][0].__setitem__("byte_offset", 2**63)}, None),
            ("offset-neg", {"manifest_edit": lambda m: m["tensors"][0].__setitem__("byte_offset", -4)}, None),
            ("dtype-bogus", {"manifest_edit": lambda m: m["tensors"][0].__setitem__("dtype", "int4")}, None),
            ("tensors-not-list", {"manifest_edit": lambda m: m.__setitem__("tensors", 5)}, None),
            ("vocab-int32max", {"cfg_over": {"vocab_size": 2**31 - 1}}, None),
            ("vocab-2^40", {"cfg_over": {"vocab_size": 2**40}}, None),
            ("layers-int32max", {"cfg_over": {"num_layers": 2**31 - 1}}, None),
            ("hidden-huge", {"cfg_over": {"hidden_size": 2**30}}, None),
            ("heads-zero", {"cfg_over": {"num_heads": 0}}, None),
            ("head-dim-mismatch", {"cfg_over": {"head_dim": 8}}, None),
            ("layers-string", {"cfg_over": {"num_layers": "2"}}, None),
            ("eps-zero", {"cfg_over": {"rms_norm_eps": 0}}, None),
            ("max-position-neg", {"cfg_over": {"max_position": -1}}, None),
        ]:
            model_cmds(n, fresh_model(n, **kw), names=names)
        for n, make in [("fifo-weight", os.mkfifo), ("folder-weight", os.makedirs)]:
            m = fresh_model(n)
            w = os.path.join(m, "model_norm_weight.bin")
            os.remove(w)
            make(w)
            model_cmds(n, m, names=["model_norm_weight.bin"])
        m = fresh_model("truncated-weight")
        w = os.path.join(m, "lm_head_weight.bin")
        write_bytes(w, open(w, "rb").read()[:100])
        model_cmds("truncated-weight", m, names=["lm_head_weight.bin"])
        m = fresh_model("tokens-junk")
        write_bytes(os.path.join(m, "tokens.json"), b"\xff\xfe{{")
        model_cmds("tokens-junk", m, "any", names=["tokens.json"])
        for n, b in [("llama2c-header-huge", struct.pack("<7i", 2**30, 2**30, 2**30, 2**30, 2**30, 2**30, 2**30)),
                     ("llama2c-header-neg", struct.pack("<7i", 32, 64, -2, 2, 2, 64, 256)),
                     ("llama2c-truncated", struct.pack("<7i", 32, 64, 2, 2, 2, 64, 256) + b"\0" * 100),
                     ("llama2c-empty", b"")]:
            p = self.path(f"model/{n}.bin")
            write_bytes(p, b)
            model_cmds(n, p)
        self.add(C, "model folder missing", ["eval", "--model", self.path("model/absent"), "--ids", self.ids], ["absent"])
        for n, b, expect in [("ids-out-of-vocab", b"1 2 3 64 65 9999", "error"), ("ids-negative", b"1 -2 3", "error"),
                             ("ids-huge", b"1 99999999999999999999", "error"), ("ids-empty", b"", "error"),
                             ("ids-binary", bytes(range(256)), "error"), ("ids-short", b"1 2 3", "error")]:
            p = self.path(f"model/{n}.txt")
            write_bytes(p, b)
            self.add(C, f"eval --ids {n}", ["eval", "--model", self.model, "--ids", p, "--context", "32",
                                            "--continuation", "8", "--passages", "1"], [p], expect)
        for n, b, expect in [("text-binary", bytes(range(256)) * 8, "any"), ("text-empty", b"", "error")]:
            p = self.path(f"model/{n}.txt")
            write_bytes(p, b)
            self.add(C, f"eval --text {n}", ["eval", "--model", self.model, "--text", p, "--context", "32",
                                             "--continuation", "8", "--passages", "1"], [p], expect)
        self.add(C, "eval --text folder", ["eval", "--model", self.model, "--text", self.path("cap/a-folder.kvc.h5")],
                 ["a-folder.kvc.h5"])
        self.add(C, "eval --text fifo", ["eval", "--model", self.model, "--text", fifo], ["fifo.kvc.h5"])
        self.add(C, "eval --ids fifo", ["eval", "--model", self.model, "--ids", fifo], ["fifo.kvc.h5"])

        # ===== class 5: sessions =====
        C = "5-session"
        sess_ok = {"format": "kvwb-session", "format_version": 1,
                   "capture": {"path": base, "sha256": None},
                   "configurations": [{"name": "a", "config": {"block_size": 32}}],
                   "current_configuration": "a", "boundary": [0], "sweeps": [], "view_state": {}}

        def sess(n, edit, expect="error", names=()):
            names = list(names)
            j = json.loads(json.dumps(sess_ok))
            if callable(edit):
                edit(j)
                text = json.dumps(j)
            else:
                text = edit
            p = self.path(f"session/{n}.kvwb.json")
            write_json(p, text)
            # The message may name the session or, for a problem of the capture it points to, the capture.
            self.add(C, f"session {n} [run]", ["run", "--session", p, "-q"], [p] + names, expect, unchanged=[p])
        for n, *e in [
            ("version-2^32+1", lambda j: j.__setitem__("format_version", 2**32 + 1)),
            ("version-2", lambda j: j.__setitem__("format_version", 2)),
            ("version-neg", lambda j: j.__setitem__("format_version", -1)),
            ("version-string", lambda j: j.__setitem__("format_version", "1")),
            ("version-float", lambda j: j.__setitem__("format_version", 1.5)),
            ("boundary-2^40", lambda j: j.__setitem__("boundary", [2**40])),
            ("boundary-neg", lambda j: j.__setitem__("boundary", [-1])),
            ("boundary-string", lambda j: j.__setitem__("boundary", "0-2147483647")),
            ("boundary-not-in-capture", lambda j: j.__setitem__("boundary", [9]), ["base.kvc.h5"]),
            ("capture-int", lambda j: j.__setitem__("capture", {"path": 5})),
            ("capture-folder", lambda j: j["capture"].__setitem__("path", self.path("cap/a-folder.kvc.h5")), ["a-folder.kvc.h5"]),
            ("capture-fifo", lambda j: j["capture"].__setitem__("path", fifo), ["fifo.kvc.h5"]),
            ("capture-missing", lambda j: j["capture"].__setitem__("path", "/nonexistent/x.kvc.h5")),
            ("capture-sha-wrong", lambda j: j["capture"].__setitem__("sha256", "0" * 64)),
            ("capture-sha-int", lambda j: j["capture"].__setitem__("sha256", 5)),
            ("configs-not-list", lambda j: j.__setitem__("configurations", 5)),
            ("config-bad", lambda j: j["configurations"][0].__setitem__("config", {"block_size": "x"})),
            ("config-layers-range", lambda j: j["configurations"][0].__setitem__("config", {"layers": "0-2147483647"})),
            ("current-int", lambda j: j.__setitem__("current_configuration", 5)),
            ("sweeps-junk", lambda j: j.__setitem__("sweeps", [{"store": 5}, 3])),
            ("format-other", lambda j: j.__setitem__("format", "something-else")),
            ("v0-boundary-range", lambda j: (j.clear(), j.update({"version": 0, "capture": base, "boundary": "0-2147483647"}))),
            ("v0-capture-int", lambda j: (j.clear(), j.update({"version": 0, "capture": 5}))),
            ("array", "[]"), ("not-json", "{"), ("deep", "[" * 100000 + "]" * 100000), ("empty", ""),
        ]:
            sess(n, e[0], names=e[1] if len(e) > 1 else ())

        # ===== class 4/5: result stores =====
        C = "5-store"
        good_store = self.path("store/good")
        shutil.rmtree(good_store, ignore_errors=True)
        rc = subprocess.run([k, "sweep", base, "--grid", grid, "--out", good_store], capture_output=True, text=True)
        if rc.returncode != 0:
            raise SystemExit("cannot make the base store: " + rc.stderr)

        def store_case(n, edit, expect="error"):
            dst = self.path(f"store/{n}")
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(good_store, dst)
            edit(dst)
            self.add(C, f"store {n} [pareto]", ["pareto", dst, "--metric", "k_rel_mse"], [dst], expect, unchanged=[dst])
            self.add(C, f"store {n} [sweep --resume]", ["sweep", base, "--grid", grid, "--out", dst, "--resume"], [dst],
                     expect)

        def results(text):
            return lambda d: write_bytes(os.path.join(d, "results.jsonl"), text)
        store_case("meta-not-json", lambda d: write_bytes(os.path.join(d, "store.json"), b"{"))
        store_case("meta-format", lambda d: write_json(os.path.join(d, "store.json"), {"format": "x"}))
        store_case("meta-array", lambda d: write_json(os.path.join(d, "store.json"), []))
        store_case("meta-missing", lambda d: os.remove(os.path.join(d, "store.json")))
        store_case("meta-capture-int", lambda d: write_json(os.path.join(d, "store.json"), {
            "format": "kvwb-result-store", "format_version": 1, "capture": 5, "grid_sha256": 7}))
        store_case("meta-version-huge", lambda d: write_json(os.path.join(d, "store.json"), {
            "format": "kvwb-result-store", "format_version": 2**40}))
        store_case("records-junk-types", results(b'{"key":"a","cell":"x","status":5,"result":"r"}\n'
                                                  b'{"key":"b","cell":-1,"status":"ok","result":{"totals":[],"ratio_vs_bf16":"x"}}\n'
                                                  b'{"key":"c","cell":2e300,"status":"ok","result":{"totals":{"k":{"rel_mse":"nan"}},"ratio_vs_bf16":1e400}}\n'),
                   "any")
        store_case("records-binary", results(bytes(range(256)) * 16 + b"\n"), "any")
        store_case("results-folder", lambda d: (os.remove(os.path.join(d, "results.jsonl")),
                                                os.makedirs(os.path.join(d, "results.jsonl"))))
        p = self.path("store/a-file")
        write_bytes(p, b"x")
        self.add(C, "pareto on a file", ["pareto", p, "--metric", "k_rel_mse"], [p])

        # ===== class 6: outputs over inputs (each case on its own copies) =====
        C = "6-own-data"
        specs = [
            ("run-dump-decoded-over-capture", lambda d: ["run", d["cap"], "-q", *BLOCK, "--dump-decoded", d["cap"]], "cap"),
            ("run-json-over-capture", lambda d: ["run", d["cap"], "-q", *BLOCK, "--json", d["cap"]], "cap"),
            ("run-csv-over-capture", lambda d: ["run", d["cap"], "-q", *BLOCK, "--csv", d["cap"]], "cap"),
            ("run-json-over-config", lambda d: ["run", d["cap"], "-q", "--config", d["cfg"], "--json", d["cfg"]], "cfg"),
            ("analyze-json-over-capture", lambda d: ["analyze", d["cap"], "-q", "--json", d["cap"]], "cap"),
            ("run-dump-decoded-via-dot-path", lambda d: ["run", d["cap"], "-q", *BLOCK, "--dump-decoded",
                                                          os.path.join(d["dir"], ".", "victim.kvc.h5")], "cap"),
            ("run-dump-decoded-via-symlink", lambda d: ["run", d["cap"], "-q", *BLOCK, "--dump-decoded", d["link"]], "cap"),
            ("run-dump-decoded-over-q-precond", lambda d: ["run", d["cap"], "-q", *BLOCK, "--q-precond", d["sq"],
                                                            "--dump-decoded", d["sq"]], "sq"),
            ("export-bundle-force-into-capture-folder", lambda d: ["export-bundle", d["cap"], "--out", d["dir"], "--force",
                                                                   "-q", *BLOCK], "cap"),
            ("calibrate-out-the-capture", lambda d: ["calibrate", d["cap"], "--out", d["cap"], "-q", *BLOCK], "cap"),
            ("calibrate-json-over-capture", lambda d: ["calibrate", d["cap"], "--out", os.path.join(d["dir"], "c"), "-q",
                                                       *BLOCK, "--json", d["cap"]], "cap"),
            ("sweep-out-capture-folder", lambda d: ["sweep", d["cap"], "--grid", d["grid"], "--out", d["dir"]], "dir"),
            ("sweep-csv-over-grid", lambda d: ["sweep", d["cap"], "--grid", d["grid"], "--out",
                                               os.path.join(d["dir"], "s"), "--csv", d["grid"]], "grid"),
            ("run-save-session-over-capture", lambda d: ["run", d["cap"], "-q", *BLOCK, "--save-session", d["cap"]], "cap"),
            ("sigma-q-info-json-over-file", lambda d: ["sigma-q-info", d["sq"], "--json", d["sq"]], "sq"),
            ("eval-json-over-model-config", lambda d: ["eval", "--model", d["model"], "--ids", d["ids"], "--context", "32",
                                                       "--continuation", "8", "--passages", "1", "--json",
                                                       os.path.join(d["model"], "config.json")], "model"),
            ("capture-out-over-ids", lambda d: ["capture", "--model", d["model"], "--ids", d["ids"], "--seqs", "1",
                                                "--tokens", "32", "--out", d["ids"]], "ids"),
            ("pareto-json-into-store", lambda d: ["pareto", d["store"], "--metric", "k_rel_mse", "--json",
                                                  os.path.join(d["store"], "results.jsonl")], "store"),
        ]
        for n, make, victim in specs:
            d = {"dir": self.path(f"own/{n}")}
            shutil.rmtree(d["dir"], ignore_errors=True)
            os.makedirs(d["dir"])
            d["cap"] = os.path.join(d["dir"], "victim.kvc.h5")
            shutil.copy(base, d["cap"])
            d["link"] = os.path.join(d["dir"], "link.kvc.h5")
            os.symlink(d["cap"], d["link"])
            d["cfg"] = os.path.join(d["dir"], "config.json")
            write_json(d["cfg"], {"block_size": 32})
            d["grid"] = os.path.join(d["dir"], "grid.json")
            shutil.copy(grid, d["grid"])
            d["sq"] = os.path.join(d["dir"], "sq.safetensors")
            shutil.copy(good_sq, d["sq"])
            d["model"] = os.path.join(d["dir"], "model")
            shutil.copytree(self.model, d["model"])
            d["ids"] = os.path.join(d["dir"], "ids.txt")
            shutil.copy(self.ids, d["ids"])
            d["store"] = os.path.join(d["dir"], "store")
            shutil.copytree(good_store, d["store"])
            self.add(C, n, make(d), [os.path.basename(d[victim])],
                     "error", unchanged=[d["cap"], d["cfg"], d["grid"], d["sq"], d["model"], d["ids"], d["store"]])


# ---------------------------------------------------------------------------------------------
# Runner
# ---------------------------------------------------------------------------------------------

def sha(path):
    if os.path.isdir(path):
        h = hashlib.sha256()
        for dp, dn, fn in sorted(os.walk(path)):
            dn.sort()
            for f in sorted(fn):
                p = os.path.join(dp, f)
                h.update(p.encode())
                if os.path.isfile(p) and not os.path.islink(p):
                    h.update(open(p, "rb").read())
        return h.hexdigest()
    if os.path.isfile(path):
        return hashlib.sha256(open(path, "rb").read()).hexdigest()
    return "absent" if not os.path.lexists(path) else "special"


def limits():
    resource.setrlimit(resource.RLIMIT_AS, (MEM_LIMIT, MEM_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.setsid()


def run_case(kvwb, case, workdir):
    before = {u: sha(u) for u in case["unchanged"]}
    t0 = time.monotonic()
    env = dict(os.environ, KVWB_NO_PROGRESS="1")
    proc = subprocess.Popen([kvwb, *case["args"]], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, preexec_fn=limits, cwd=workdir, env=env)
    timed_out = False
    try:
        _, err = proc.communicate(timeout=TIME_LIMIT_S)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
    wall = time.monotonic() - t0
    err = err.decode("utf-8", "replace")
    rc = proc.returncode
    problems = []
    if timed_out:
        problems.append(f"hang (> {TIME_LIMIT_S:.0f} s)")
    elif rc < 0:
        problems.append(f"killed by signal {-rc} ({signal.Signals(-rc).name})")
    elif rc >= 128:
        problems.append(f"exit {rc} (signal-like)")
    if not timed_out and rc >= 0:
        if "error[INTERNAL]" in err:
            problems.append("error[INTERNAL] on bad input")
        if case["expect"] == "error":
            if rc == 0:
                problems.append("exit 0 on bad input")
            elif rc not in (1, 2):
                problems.append(f"exit {rc}, expected 1 or 2")
            if "error[" not in err and rc != 0:
                problems.append("no error[CODE] line")
        if rc != 0 and case["names"] and not any(n in err for n in case["names"]):
            problems.append("the message does not name " + " or ".join(repr(n) for n in case["names"][:2]))
    for u, h in before.items():
        if sha(u) != h:
            problems.append(f"input {u} was modified")
    return {"case": case, "rc": rc, "wall": wall, "err": err, "problems": problems}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kvwb")
    ap.add_argument("--jobs", type=int, default=max(1, os.cpu_count() or 1))
    ap.add_argument("--keep", help="generate into this folder and keep it")
    ap.add_argument("--only", help="run only cases whose name contains this text")
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args()
    kvwb = os.path.abspath(a.kvwb)
    root = a.keep or tempfile.mkdtemp(prefix="kvwb-malformed-")
    os.makedirs(root, exist_ok=True)
    t0 = time.monotonic()
    s = Suite(kvwb, root)
    s.build()
    cases = [c for c in s.cases if not a.only or a.only in c["name"]]
    gen_s = time.monotonic() - t0
    if a.list:
        for c in cases:
            print(c["class"], "|", c["name"], "|", " ".join(c["args"]))
        return 0
    print(f"malformed-input suite: {len(cases)} runs over {len({c['args'][1] for c in cases})} inputs "
          f"(generated in {gen_s:.1f} s), {a.jobs} at a time")
    results = []
    with cf.ThreadPoolExecutor(a.jobs) as ex:
        for r in ex.map(lambda c: run_case(kvwb, c, root), cases):
            results.append(r)
    failed = [r for r in results if r["problems"]]
    by_class = {}
    for r in results:
        k = r["case"]["class"]
        ok, tot = by_class.get(k, (0, 0))
        by_class[k] = (ok + (0 if r["problems"] else 1), tot + 1)
    for r in failed:
        c = r["case"]
        first = next((ln for ln in r["err"].splitlines() if ln.strip()), "")
        print(f"FAIL [{c['class']}] {c['name']}: {'; '.join(r['problems'])}\n"
              f"     kvwb {' '.join(c['args'])}\n     rc={r['rc']} {r['wall']:.1f}s: {first[:300]}")
    slow = max(results, key=lambda r: r["wall"]) if results else None
    for k in sorted(by_class):
        print(f"  {k:18s} {by_class[k][0]:4d}/{by_class[k][1]} clean")
    errors = sum(1 for r in results if r["rc"] not in (0,))
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed ({errors} clean errors expected or not); "
          f"slowest {slow['wall']:.1f} s ({slow['case']['name']}); total {time.monotonic() - t0:.0f} s")
    if not a.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

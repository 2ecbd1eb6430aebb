#!/usr/bin/python3
"""Writes the committed seed corpora of tests/fuzz/corpus/<harness>/ from real files.

Usage: make_seeds.py KVWB MAKE_CONTAINER_SEEDS [REAL_DATA_DIR]
Real data (../shared/data/real) gives the seeds their substance: a two-layer slice of the tiny1m
capture, layer 0 of the Qwen2.5 Σ_q calibration, containers and a KKTV dump of real rows, a
bundle, a sweep store and a session exported from the real capture. Without it the same files
are made from a synthetic capture. Run it again only to refresh the corpus; the seeds are small
(tens of KB) so that the fuzzer mutates them quickly.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")


def clean(kind):
    d = os.path.join(OUT, kind)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def small_capture(src, dst, layers=(0, 1), T=16, gzip=False):
    with h5py.File(src, "r") as f, h5py.File(dst, "w") as g:
        for k, v in f.attrs.items():
            g.attrs[k] = v
        for name in ("tokens", "positions"):
            if name in f:
                g.create_dataset(name, data=f[name][:1, :T])
        lg = g.create_group("layers")
        for l in layers:
            src_l = f["layers"][str(l)]
            dl = lg.create_group(str(l))
            for k, v in src_l.attrs.items():
                dl.attrs[k] = v
            for name in src_l:
                a = src_l[name][:1, :, :T, :]
                dl.create_dataset(name, data=a, chunks=(1, 1, T, a.shape[3]),
                                  **({"compression": "gzip", "shuffle": True} if gzip else {}))


def st_read(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    return h, b[8 + n:]


def st_subset(src, dst, prefix):
    h, data = st_read(src)
    tensors = sorted((k, v) for k, v in h.items() if k.startswith(prefix))
    header, blobs, off = {}, [], 0
    for k, v in tensors:
        s, e = v["data_offsets"]
        header[k] = {"dtype": v["dtype"], "shape": v["shape"], "data_offsets": [off, off + e - s]}
        blobs.append(data[s:e])
        off += e - s
    text = json.dumps(header).encode()
    while (8 + len(text)) % 8:
        text += b" "
    open(dst, "wb").write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def pack_bundle(folder):
    names = ["MANIFEST.json", "sigma_q.safetensors", "sigma_q.json", "codec_config.json", "deploy.env",
             "K_b3_centroids.f32", "V_b2_centroids.f32", "extra.txt"]
    out = b""
    for i, n in enumerate(names):
        p = os.path.join(folder, n)
        if os.path.exists(p):
            b = open(p, "rb").read()
            out += bytes([i]) + struct.pack("<I", len(b)) + b
    return out


def main():
    kvwb, seeds_tool = sys.argv[1], sys.argv[2]
    real = sys.argv[3] if len(sys.argv) > 3 else os.path.join(HERE, "..", "..", "..", "shared", "data", "real")
    w = tempfile.mkdtemp(prefix="kvwb-seeds-")
    run = lambda *a: subprocess.run([kvwb, *a], check=True, capture_output=True)
    cap_real = os.path.join(real, "tiny1m_wikitext2.kvc.h5")
    if os.path.exists(cap_real):
        src = cap_real
    else:
        src = os.path.join(w, "synth.kvc.h5")
        run("synth", src, "--layers", "2", "--head-dim", "64", "--tokens", "64", "--seqs", "1")
    # capture
    d = clean("capture")
    small_capture(src, os.path.join(d, "two-layers.kvc.h5"))
    small_capture(src, os.path.join(d, "one-layer-gzip.kvc.h5"), layers=(1,), T=8, gzip=True)
    cap = os.path.join(w, "cap.kvc.h5")
    small_capture(src, cap, layers=(0, 1), T=64)
    # safetensors: layer 0 of the real Σ_q calibration, and the one a bundle export writes
    d = clean("safetensors")
    sq_real = os.path.join(real, "qwen2_5_0_5b_sigma_q.safetensors")
    if os.path.exists(sq_real):
        st_subset(sq_real, os.path.join(d, "qwen-layer0.safetensors"), "layer_0_")
    bundle = os.path.join(w, "bundle")
    run("export-bundle", cap, "--out", bundle, "--block-size", "16", "--q-precond", "capture", "--layers", "1", "-q")
    st_subset(os.path.join(bundle, "sigma_q.safetensors"), os.path.join(d, "bundle-layer1.safetensors"), "layer_")
    # bundle: the real one, and a small synthetic one (D = 16) that the fuzzer mutates fast
    d = clean("bundle")
    open(os.path.join(d, "tiny1m-layer1.bin"), "wb").write(pack_bundle(bundle))
    syn = os.path.join(w, "syn.kvc.h5")
    run("synth", syn, "--layers", "2", "--head-dim", "16", "--kv-heads", "1", "--q-heads", "2", "--seqs", "1",
        "--tokens", "64")
    sb = os.path.join(w, "syn-bundle")
    run("export-bundle", syn, "--out", sb, "--block-size", "16", "--q-precond", "capture", "--layers", "1", "-q")
    open(os.path.join(d, "synthetic-d16.bin"), "wb").write(pack_bundle(sb))
    # container and kktv
    clean("container")
    clean("kktv")
    subprocess.run([seeds_tool, OUT, cap], check=True)
    # json: run configuration, grid, session, store
    d = clean("json")
    r = os.path.join(w, "r.json")
    run("run", cap, "-q", "--block-size", "16", "--json", r)
    cfg = json.load(open(r))["config"]
    open(os.path.join(d, "config.json"), "wb").write(b"\x00" + json.dumps(cfg).encode())
    open(os.path.join(d, "config-small.json"), "wb").write(
        b"\x00" + b'{"block_size": 64, "boundary": "0-1", "k": {"codec": "q8_0"}, "overrides": [{"layer": 1, "v": {"codec": "turbo3"}}]}')
    grid = {"bits_k": [2, 3], "variance_ratio": [0.9, 1.0], "fixed": {"block_size": 16}}
    open(os.path.join(d, "grid.json"), "wb").write(b"\x01" + json.dumps(grid).encode())
    open(os.path.join(d, "grids.json"), "wb").write(
        b"\x01" + json.dumps({"fixed": {"block_size": 16}, "grids": [{"bits_k": [2]}, {"k_codec": ["q8_0"]}]}).encode())
    sess = os.path.join(w, "s.kvwb.json")
    run("run", cap, "-q", "--block-size", "16", "--boundary", "0", "--save-session", sess)
    open(os.path.join(d, "session.json"), "wb").write(b"\x02" + open(sess, "rb").read())
    open(os.path.join(d, "session-v0.json"), "wb").write(b"\x02" + b'{"version": 0, "capture": "x.kvc.h5", "boundary": "0-1"}')
    g = os.path.join(w, "grid.json")
    json.dump({"bits_k": [2, 3], "fixed": {"block_size": 16}}, open(g, "w"))
    store = os.path.join(w, "store")
    run("sweep", cap, "--grid", g, "--out", store)
    meta = open(os.path.join(store, "store.json"), "rb").read()
    lines = open(os.path.join(store, "results.jsonl"), "rb").read().splitlines(keepends=True)
    open(os.path.join(d, "store.json"), "wb").write(b"\x03" + meta + b"\x00" + lines[0])
    shutil.rmtree(w)
    for kind in sorted(os.listdir(OUT)):
        files = os.listdir(os.path.join(OUT, kind))
        total = sum(os.path.getsize(os.path.join(OUT, kind, f)) for f in files)
        print(f"{kind:12s} {len(files):2d} seeds, {total / 1024:.0f} KiB")


if __name__ == "__main__":
    main()

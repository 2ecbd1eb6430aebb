#!/usr/bin/python3
"""Independent check of an exported bundle (bundle-format.md §2, §4, §7).

Usage: check_bundle_numpy.py KVWB_BINARY REAL_DATA_DIR

Runs `kvwb export-bundle` on the real tiny1m capture into a temporary folder, then parses
sigma_q.safetensors by hand (struct + json + numpy, no safetensors library) and checks, for every
layer and kv head, L lower triangular with a positive diagonal, L·L⁻¹ = I and L⁻¹·L = I within
1e-4, and the centroid files (2^b finite, strictly ascending f32 values, the table recorded in
MANIFEST.json), plus the MANIFEST checksums. Exit 77 (skip) without numpy or the real data.
"""
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
except ImportError:
    print("numpy is not available; skipping")
    sys.exit(77)


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    if (8 + n) % 8:
        fail("header not padded to a multiple of 8")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    body = data[8 + n:]
    tensors = {}
    covered = 0
    for name, e in header.items():
        if name == "__metadata__":
            continue
        if e["dtype"] != "F32":
            fail(name + ": dtype " + e["dtype"])
        b, end = e["data_offsets"]
        arr = np.frombuffer(body[b:end], dtype="<f4").reshape(e["shape"])
        tensors[name] = arr
        covered += end - b
    if covered != len(body):
        fail("tensors do not cover the data section")
    names = sorted(tensors, key=lambda s: s.encode())
    offsets = [header[nm]["data_offsets"][0] for nm in names]
    if offsets != sorted(offsets):
        fail("data is not in byte-wise lexicographic name order")
    return header, tensors


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    kvwb, real = sys.argv[1], sys.argv[2]
    cap = os.path.join(real, "tiny1m_tinystories.kvc.h5")
    if not os.path.exists(cap):
        print("real data " + cap + " not found; skipping")
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "bundle")
        cmd = [kvwb, "export-bundle", cap, "--out", out, "--layers", "0-3", "--block-size", "256",
               "--q-precond", "capture", "--bits-k", "3", "--bits-v", "2", "--threads", "2"]
        p = subprocess.run(cmd, capture_output=True, text=True)
        print(p.stdout)
        if p.returncode != 0:
            fail("export-bundle exited %d: %s" % (p.returncode, p.stderr))
        p = subprocess.run([kvwb, "bundle-check", out], capture_output=True, text=True)
        print(p.stdout)
        if p.returncode != 0:
            fail("bundle-check exited %d" % p.returncode)

        man = json.load(open(os.path.join(out, "MANIFEST.json")))
        for f in man["files"]:
            blob = open(os.path.join(out, f["path"]), "rb").read()
            if len(blob) != f["size_bytes"] or hashlib.sha256(blob).hexdigest() != f["sha256"]:
                fail(f["path"] + ": size or sha256 differs from MANIFEST.json")

        side = json.load(open(os.path.join(out, "sigma_q.json")))
        H, D = side["num_kv_heads"], side["head_dim"]
        header, t = read_safetensors(os.path.join(out, "sigma_q.safetensors"))
        worst = 0.0
        for l in side["layers_written"]:
            L = t["layer_%d_chol" % l].astype(np.float64)
            Li = t["layer_%d_inv_chol" % l].astype(np.float64)
            S = t["layer_%d_sigma" % l].astype(np.float64)
            if L.shape != (H, D, D) or Li.shape != (H, D, D) or S.shape != (H, D, D):
                fail("layer %d: shapes" % l)
            for h in range(H):
                if np.any(np.triu(L[h], 1) != 0) or np.any(np.triu(Li[h], 1) != 0):
                    fail("layer %d head %d: strict upper triangle not 0" % (l, h))
                if np.any(np.diag(L[h]) <= 0):
                    fail("layer %d head %d: diagonal not positive" % (l, h))
                I = np.eye(D)
                fwd = np.max(np.abs(L[h] @ Li[h] - I))
                rev = np.max(np.abs(Li[h] @ L[h] - I))
                worst = max(worst, fwd, rev)
                if fwd > 1e-4 or rev > 1e-4:
                    fail("layer %d head %d: |L Linv - I| = %g, |Linv L - I| = %g" % (l, h, fwd, rev))
                reg = S[h] + side["ridge"] * np.mean(np.diag(S[h])) * I
                rel = np.max(np.abs(L[h] @ L[h].T - reg)) / np.max(np.abs(reg))
                if rel > 1e-4:
                    fail("layer %d head %d: L L^T differs from Sigma_reg by %g" % (l, h, rel))
        print("sigma_q: %d layers x %d heads, max round-trip error %.3g" % (len(side["layers_written"]), H, worst))

        for stream, bits in (("K", 3), ("V", 2)):
            path = os.path.join(out, "%s_b%d_centroids.f32" % (stream, bits))
            blob = open(path, "rb").read()
            if len(blob) != 4 * 2 ** bits:
                fail(path + ": %d bytes" % len(blob))
            v = np.frombuffer(blob, dtype="<f4")
            if not np.all(np.isfinite(v)) or not np.all(np.diff(v) > 0):
                fail(path + ": not finite and strictly ascending: %s" % v)
            want = np.array(man["centroids"][stream]["table"], dtype=np.float32)
            if not np.array_equal(want, v):
                fail(path + ": differs from the MANIFEST table")
            print("%s table: %s" % (stream, " ".join("%.6f" % x for x in v)))

        env = open(os.path.join(out, "deploy.env")).read()
        if "KAKEYA_SIGMA_Q_PATH=" + out + "/sigma_q.safetensors\n" not in env:
            fail("deploy.env lacks the Sigma_q path")
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())

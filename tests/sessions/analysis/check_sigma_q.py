#!/usr/bin/env python3
"""Independent float64 check of `kvwb analyze` (metrics.md §4, §5; codec-kakeya.md §8.1-8.2).

For tiny1m_wikitext2.kvc.h5 it recomputes with numpy, per (layer, kv head):
  - Σ_q from q_pre (GQA-pooled), cond(Σ_reg) with ridge 1e-3·mean(diag), cond(Σ) raw;
  - the centred covariance eigenvalues of pre-RoPE K and of V, and d_eff(0.95);
and compares them with `kvwb analyze --json` within 0.5 %.

Usage: check_sigma_q.py KVWB_BINARY [REAL_DATA_DIR]
Exit codes: 0 pass, 1 mismatch, 77 skipped (numpy/h5py or the real data missing).
"""
import json
import os
import subprocess
import sys
import tempfile

SKIP = 77
TOL = 0.005


def skip(msg):
    print("SKIP: " + msg)
    sys.exit(SKIP)


try:
    import numpy as np
    import h5py
except ImportError as e:  # pragma: no cover - depends on the machine
    skip("numpy/h5py not available for %s (%s); use Debian's /usr/bin/python3" % (sys.executable, e))


def d_eff(eig_desc, vr):
    lam = np.clip(eig_desc, 0.0, None)
    total = lam.sum()
    if total <= 0:
        return 1
    run = 0.0
    for k, v in enumerate(lam):
        run += v
        if run / total >= vr:
            return k + 1
    return len(lam)


def cond(eig):
    return eig.max() / max(eig.min(), 1e-30)


def main():
    if len(sys.argv) < 2:
        print("usage: check_sigma_q.py KVWB_BINARY [REAL_DATA_DIR]")
        return 2
    kvwb = sys.argv[1]
    real = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("KVWB_REAL_DATA", "")
    cap = os.path.join(real, "tiny1m_wikitext2.kvc.h5")
    if not real or not os.path.isfile(cap):
        skip("real capture %s not found" % cap)
    if not os.access(kvwb, os.X_OK):
        print("FAIL: kvwb binary %s is not executable" % kvwb)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "analysis.json")
        subprocess.run([kvwb, "analyze", cap, "--json", out, "--quiet", "--no-rotated"], check=True)
        with open(out, encoding="utf-8") as fh:
            res = json.load(fh)

    failures = []
    checked = 0

    def close(what, got, want, scale=None):
        nonlocal checked
        checked += 1
        tol = TOL * abs(want) + (1e-9 * scale if scale else 0.0)
        if got is None or not abs(got - want) <= tol:
            failures.append("%s: kvwb %r vs numpy %r" % (what, got, want))

    layers = {l["layer"]: l for l in res["layers"]}
    with h5py.File(cap, "r") as f:
        hq = int(f.attrs["num_query_heads"])
        hkv = int(f.attrs["num_kv_heads"])
        d = int(f.attrs["head_dim"])
        g = hq // hkv
        for name in sorted(f["layers"].keys(), key=int):
            l = int(name)
            grp = f["layers"][name]
            if l not in layers:
                failures.append("layer %d missing from the analysis" % l)
                continue
            heads = {h["kv_head"]: h for h in layers[l]["heads"]}
            q = grp["q_pre"][...].astype(np.float64)
            kp = grp["k_pre"][...].astype(np.float64)
            v = grp["v"][...].astype(np.float64)
            for h in range(hkv):
                hj = heads[h]
                where = "layer %d kv head %d" % (l, h)
                x = q[:, h * g:(h + 1) * g].reshape(-1, d)
                sig = x.T @ x / x.shape[0]
                sig = 0.5 * (sig + sig.T)
                reg = sig + 1e-3 * np.mean(np.diag(sig)) * np.eye(d)
                close(where + " cond(Σ_reg)", hj["sigma_q_cond"], cond(np.linalg.eigvalsh(reg)))
                close(where + " cond(Σ)", hj["sigma_q_cond_raw"], cond(np.linalg.eigvalsh(sig)))
                for key, t in (("k_pre", kp), ("v", v)):
                    rows = t[:, h].reshape(-1, d)
                    c = rows - rows.mean(axis=0)
                    cov = c.T @ c / rows.shape[0]
                    eig = np.sort(np.linalg.eigvalsh(cov))[::-1]
                    got = hj["detail"][key]["spectrum"]["eigenvalues"]
                    if len(got) != d:
                        failures.append("%s %s: %d eigenvalues, expected %d" % (where, key, len(got), d))
                        continue
                    for i in range(d):
                        close("%s %s eigenvalue %d" % (where, key, i), got[i], eig[i], scale=eig[0])
                    de = d_eff(eig, 0.95)
                    checked += 1
                    if hj[key + "_d_eff_95"] != de:
                        failures.append("%s %s d_eff(0.95): kvwb %r vs numpy %r" % (where, key, hj[key + "_d_eff_95"], de))
                print("%s: cond(Σ_reg) %.2f, cond(Σ) %.4g, d_eff95 K %d V %d" % (
                    where, cond(np.linalg.eigvalsh(reg)), cond(np.linalg.eigvalsh(sig)),
                    hj["k_pre_d_eff_95"], hj["v_d_eff_95"]))
    if failures:
        print("FAIL: %d of %d checks differ by more than %.1f %%:" % (len(failures), checked, 100 * TOL))
        for m in failures[:30]:
            print("  " + m)
        return 1
    print("PASS: %d checks within %.1f %%" % (checked, 100 * TOL))
    return 0


if __name__ == "__main__":
    sys.exit(main())

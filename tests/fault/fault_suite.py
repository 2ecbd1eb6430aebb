#!/usr/bin/python3
"""Fault suite (issue 14, docs/reliability.md): kill -9 during sweep / store creation /
export-bundle (new and --force replace) / run --json / session save / capture writing, SIGINT on
every long command, and a full disk (a small tmpfs, when this process may mount one). Each fault
must end with nothing lost, nothing half-written and a resumable state, and the next start must
clean the temporaries a killed writer left.

Usage: fault_suite.py KVWB [--seed N] [--kills N] [--keep DIR]
Exit 0 when every check passes (skipped parts say why), 1 otherwise.
"""
import argparse
import glob
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "malformed"))
try:
    from malformed_suite import write_model  # noqa: E402  (a tiny random Llama model folder)
except ImportError:  # pragma: no cover
    print("skip: the fault suite needs /usr/bin/python3 with numpy and h5py")
    sys.exit(77)

K = None
FAILS = []
PASSES = 0


def check(ok, what):
    global PASSES
    if ok:
        PASSES += 1
        print(f"ok:   {what}")
    else:
        FAILS.append(what)
        print(f"FAIL: {what}")
    return ok


def kvwb(*args, timeout=600, **kw):
    return subprocess.run([K, *map(str, args)], capture_output=True, text=True, timeout=timeout, **kw)


def start(*args):
    return subprocess.Popen([K, *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def kill_after(p, delay, sig=signal.SIGKILL):
    """Sends `sig` after `delay` s unless the process ended; returns (rc, seconds from signal to exit
    or None when it ended before the signal, stderr)."""
    try:
        p.wait(timeout=delay)
        return p.returncode, None, p.stderr.read()
    except subprocess.TimeoutExpired:
        pass
    # A process that has just exited is a zombie until reaped: kill() then succeeds but delivers
    # nothing. Look (without reaping) whether it already ended before signalling it.
    if os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
        p.wait()
        return p.returncode, None, p.stderr.read()
    t = time.monotonic()
    os.kill(p.pid, sig)
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        return None, None, "did not exit within 30 s of the signal"
    after = time.monotonic() - t
    if sig != signal.SIGKILL and p.returncode == 0 and after < 0.005:
        # Exit 0 within 5 ms of the signal: the process was already exiting (kvwb's handler turns a
        # delivered SIGINT into 130, and the default action would give -2), so it ended first.
        return p.returncode, None, p.stderr.read()
    return p.returncode, after, p.stderr.read()


def leftovers(folder):
    """Temporaries and asides of our durability policy left in `folder` (not recursive)."""
    return sorted(glob.glob(os.path.join(folder, ".*.kvwb-tmp.*")) + glob.glob(os.path.join(folder, ".*.kvwb-old.*")))


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest() if os.path.isfile(path) else None


def store_records(store):
    """{key: record without timing} of a store; raises when a line is not valid JSON."""
    out = {}
    with open(os.path.join(store, "results.jsonl"), "rb") as fh:
        data = fh.read()
    if data and not data.endswith(b"\n"):
        raise ValueError("torn last line")
    for line in data.splitlines():
        r = json.loads(line)
        r.pop("timing", None)
        r.get("result", {}).pop("seconds", None)  # wall time: the only field that differs between runs
        out.setdefault(r["key"], r)
    return out


def json_ok(path):
    try:
        json.load(open(path))
        return True
    except Exception:
        return False


# ---------------------------------------------------------------------------------------------

def sweep_kills(w, cap, grid, rng, kills):
    print("== kill -9 during sweep (and resume until complete)")
    ref = os.path.join(w, "ref-store")
    r = kvwb("sweep", cap, "--grid", grid, "--out", ref, "-j", "2")
    if not check(r.returncode == 0, "uninterrupted reference sweep"):
        print(r.stderr)
        return
    want = store_records(ref)
    store = os.path.join(w, "killed-store")
    n_killed = 0
    for attempt in range(kills + 20):
        resume = os.path.exists(os.path.join(store, "store.json"))
        args = ["sweep", cap, "--grid", grid, "--out", store, "-j", "2"] + (["--resume"] if resume else [])
        p = start(*args)
        if n_killed < kills:
            rc, _, err = kill_after(p, rng.uniform(0.0, 2.5))
            if rc == -signal.SIGKILL:
                n_killed += 1
                if os.path.exists(os.path.join(store, "results.jsonl")):
                    try:
                        got = store_records(store)  # a torn last line is allowed mid-crash
                    except ValueError:
                        got = None
                    if got is not None:
                        check(all(got[k] == want[k] for k in got), f"kill {n_killed}: every stored record is complete")
                continue
        else:
            p.wait()
            rc, err = p.returncode, p.stderr.read()
        if rc == 0:
            break
        check(False, f"sweep after {n_killed} kills exited {rc}: {err.strip()[:300]}")
        return
    got = store_records(store)
    check(set(got) == set(want), f"after {n_killed} kills the resumed store holds every cell ({len(got)}/{len(want)})")
    check(all(got[k]["result"] == want[k]["result"] for k in want if k in got),
          "the resumed store's results equal the uninterrupted sweep's")
    check(not leftovers(w) and not leftovers(store), "no temporaries left after the resume")


def store_creation_kills(w, cap, grid, rng):
    print("== kill -9 while the store is created")
    outcomes = {"absent": 0, "complete": 0}
    for i in range(6):
        store = os.path.join(w, f"create-{i}")
        p = start("sweep", cap, "--grid", grid, "--out", store)
        rc, _, _ = kill_after(p, rng.uniform(0.0, 0.4))
        if os.path.exists(store):
            ok = os.path.isfile(os.path.join(store, "store.json")) and json_ok(os.path.join(store, "store.json")) \
                and os.path.isfile(os.path.join(store, "results.jsonl"))
            check(ok, f"kill {i} (rc {rc}): the store folder is complete (store.json + results.jsonl), never half-made")
            outcomes["complete"] += 1
            r = kvwb("sweep", cap, "--grid", grid, "--out", store, "--resume")
        else:
            outcomes["absent"] += 1
            r = kvwb("sweep", cap, "--grid", grid, "--out", store)
        check(r.returncode == 0, f"kill {i}: the store can be {'resumed' if os.path.exists(store) else 'created'} "
                                 f"afterwards (rc {r.returncode} {r.stderr.strip()[:200]})")
        check(not leftovers(w), f"kill {i}: the next start removed the killed creation's temporary folder")
    print(f"   outcomes: {outcomes}")
    # What a kill in the middle of creation leaves, planted deterministically: a temporary store
    # folder of a process that is gone, holding a torn store.json.
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = os.uname().nodename.replace("/", "_").replace("@", "_")
    store = os.path.join(w, "planted")
    tmp = os.path.join(w, f".planted.kvwb-tmp.{dead.pid}@{host}.0")
    os.makedirs(tmp)
    open(os.path.join(tmp, "store.json"), "w").write('{"format": "kvwb-res')
    r = kvwb("sweep", cap, "--grid", grid, "--out", store)
    check(r.returncode == 0 and not os.path.exists(tmp),
          "a store killed mid-creation neither blocks a new sweep to the same folder nor stays behind")


def bundle_kills(w, cap, rng):
    print("== kill -9 during export-bundle (new folder and --force replace)")
    flags = ["--block-size", "64", "-q", "--threads", "1"]
    fresh = os.path.join(w, "bundle-new")
    for i in range(3):
        shutil.rmtree(fresh, ignore_errors=True)
        rc, _, _ = kill_after(start("export-bundle", cap, "--out", fresh, *flags), rng.uniform(0.05, 1.5))
        if os.path.exists(fresh):
            check(kvwb("bundle-check", fresh).returncode == 0, f"kill {i} (rc {rc}): the new bundle is complete")
        else:
            check(True, f"kill {i} (rc {rc}): no bundle folder (nothing half-written)")
    shutil.rmtree(fresh, ignore_errors=True)  # a kill that came after the export finished left a bundle
    r = kvwb("export-bundle", cap, "--out", fresh, *flags)
    check(r.returncode == 0 and not leftovers(w), "the next export succeeds and removes the killed ones' temporaries")
    old_manifest = sha(os.path.join(fresh, "MANIFEST.json"))
    for i in range(4):
        rc, _, _ = kill_after(start("export-bundle", cap, "--out", fresh, "--force", "--bits-k", str(2 + i % 2), *flags),
                              rng.uniform(0.05, 2.0))
        ok = os.path.isdir(fresh) and kvwb("bundle-check", fresh).returncode == 0
        check(ok, f"--force kill {i} (rc {rc}): the destination always holds a complete bundle (old or new)")
    r = kvwb("export-bundle", cap, "--out", fresh, "--force", *flags)
    check(r.returncode == 0 and not leftovers(w), "a --force export after the kills succeeds; no temporary or aside left")
    check(old_manifest is not None, "the first bundle existed before the replacements")


def file_kills(w, cap, rng):
    print("== kill -9 during run --json, session save and capture writing")
    out = os.path.join(w, "r.json")
    open(out, "w").write('{"old": true}\n')
    for i in range(4):
        rc, _, _ = kill_after(start("run", cap, "-q", "--block-size", "64", "--threads", "1", "--json", out),
                              rng.uniform(0.05, 1.5))
        check(json_ok(out), f"run --json kill {i} (rc {rc}): the JSON is the old or the new one, never torn")
    sess = os.path.join(w, "s.kvwb.json")
    r = kvwb("run", cap, "-q", "--block-size", "64", "--save-session", sess)
    check(r.returncode == 0, "a session is saved")
    for i in range(4):
        rc, _, _ = kill_after(start("run", cap, "-q", "--block-size", "128", "--threads", "1", "--save-session", sess),
                              rng.uniform(0.05, 1.5))
        check(json_ok(sess) and kvwb("run", "--session", sess, "-q", "--layers", "0").returncode == 0,
              f"session save kill {i} (rc {rc}): the session loads (old or new)")
    syn = os.path.join(w, "syn.kvc.h5")
    r = kvwb("synth", syn, "--layers", "1", "--tokens", "64", "--head-dim", "32")
    for i in range(3):
        rc, _, _ = kill_after(start("synth", syn, "--layers", "8", "--tokens", "2048"), rng.uniform(0.05, 1.0))
        check(kvwb("info", syn).returncode == 0, f"synth kill {i} (rc {rc}): the capture is the old or the new one")
    r = kvwb("run", cap, "-q", "--block-size", "64", "--json", out)
    r2 = kvwb("synth", syn, "--layers", "1", "--tokens", "64", "--head-dim", "32")
    check(r.returncode == 0 and r2.returncode == 0 and not leftovers(w),
          "the next writers of the same files remove the killed writers' temporaries")


def sigint_all(w, cap, grid, model, ids, rng):
    print("== SIGINT on every long command")
    store = os.path.join(w, "sig-store")
    bundle = os.path.join(w, "sig-bundle")
    kvwb("export-bundle", cap, "--out", bundle, "--block-size", "64", "-q")
    sq = os.path.join(bundle, "sigma_q.safetensors")
    pstore = os.path.join(w, "ref-store")
    cmds = [
        ("sweep", ["sweep", cap, "--grid", grid, "--out", store, "-j", "2"]),
        ("run", ["run", cap, "-q", "--threads", "1", "--json", os.path.join(w, "sig-run.json")]),
        ("analyze", ["analyze", cap, "-q", "--outliers", "--threads", "1"]),
        ("calibrate", ["calibrate", cap, "--out", os.path.join(w, "sig-cal"), "-q", "--threads", "1"]),
        ("export-bundle", ["export-bundle", cap, "--out", os.path.join(w, "sig-b2"), "-q", "--threads", "1"]),
        ("recommend-boundary", ["recommend-boundary", cap, "--threads", "1"]),
        ("plan", ["plan", cap, "--target-ratio", "3", "--k-codec", "q4_0", "--v-codec", "q4_0", "--threads", "1"]),
        ("synth", ["synth", os.path.join(w, "sig-syn.kvc.h5"), "--layers", "8", "--tokens", "2048"]),
        ("eval", ["eval", "--model", model, "--ids", ids, "--context", "128", "--continuation", "32",
                  "--passages", "4"]),
        ("capture", ["capture", "--model", model, "--ids", ids, "--seqs", "8", "--tokens", "256", "--out",
                     os.path.join(w, "sig-cap.kvc.h5")]),
        ("proxy-truth", ["proxy-truth", "--capture", cap, "--model", model, "--ids", ids, "--grid", grid,
                         "--context", "64", "--continuation", "16", "--passages", "2"]),
        ("info", ["info", cap]),
        ("sigma-q-info", ["sigma-q-info", sq]),
        ("bundle-check", ["bundle-check", bundle]),
        ("pareto", ["pareto", pstore, "--metric", "k_rel_mse"]),
    ]
    quick = ("info", "sigma-q-info", "bundle-check", "pareto")
    interrupted = 0
    for name, args in cmds:
        delay = 0.4 if name not in quick else 0.02
        rc, after, err = kill_after(start(*args), delay, signal.SIGINT)
        if after is None:
            check(rc == 0, f"{name}: finished before the signal (rc {rc}); nothing to interrupt")
            continue
        if name in quick and rc == 0 and after < 1.0 and "CANCELLED" not in err:
            # A quick command whose work was done when the signal came: on a loaded machine its exit
            # can take longer than kill_after's 5 ms; a complete answer to a late Ctrl-C is correct.
            continue
        interrupted += 1
        # 130 from kvwb's handler; killed by SIGINT itself (which a shell also reports as 130) only
        # when the signal came before main() installed the handler.
        check(rc in (130, -signal.SIGINT), f"{name}: SIGINT -> exit {rc} (expected 130) in {after:.2f} s")
        check(after < 10, f"{name}: stopped within 10 s of Ctrl-C ({after:.2f} s)")
        if rc == 130:
            check("error[CANCELLED]" in err, f"{name}: says it was cancelled")
    print(f"   {interrupted} of {len(cmds)} commands were still running when the signal came")
    if os.path.exists(os.path.join(store, "store.json")):
        r = kvwb("sweep", cap, "--grid", grid, "--out", store, "-j", "2", "--resume")
        check(r.returncode == 0, "the interrupted sweep resumes to completion")
    for name in ("sig-run.json", "sig-syn.kvc.h5", "sig-cap.kvc.h5"):
        p = os.path.join(w, name)
        check(not os.path.exists(p) or (json_ok(p) if p.endswith(".json") else kvwb("info", p).returncode == 0),
              f"{name}: absent or complete after the interrupt")
    for d in ("sig-b2",):
        p = os.path.join(w, d)
        check(not os.path.exists(p) or kvwb("bundle-check", p).returncode == 0, f"{d}: absent or a complete bundle")
    # A cancelled writer removes its temporary itself; one stopped at once leaves it to the next start.
    kvwb("synth", os.path.join(w, "sig-syn.kvc.h5"), "--layers", "1", "--tokens", "64", "--head-dim", "32")
    kvwb("run", cap, "-q", "--block-size", "64", "--json", os.path.join(w, "sig-run.json"))
    check(not leftovers(w), "no temporaries left once the commands ran again")


def full_disk(w, cap, grid):
    print("== full disk (a 3 MiB tmpfs)")
    mnt = os.path.join(w, "tmpfs")
    os.makedirs(mnt, exist_ok=True)
    if os.geteuid() != 0:
        print("skip: the full-disk part needs root to mount a tmpfs")
        return
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mnt], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"skip: cannot mount a tmpfs here ({r.stderr.strip()})")
        return
    try:
        def fill(leave):
            st = os.statvfs(mnt)
            free = st.f_bavail * st.f_frsize
            with open(os.path.join(mnt, "filler"), "wb") as fh:
                fh.write(b"\0" * max(0, free - leave))

        def unfill():
            if os.path.exists(os.path.join(mnt, "filler")):
                os.remove(os.path.join(mnt, "filler"))

        def no_crash(r, what):
            check(r.returncode == 1 and "error[IO_ERROR]" in r.stderr and "No space left" in r.stderr,
                  f"{what}: exit 1 with an I/O error naming the cause (rc {r.returncode}: {r.stderr.strip()[:160]})")
            check(not leftovers(mnt), f"{what}: no temporary left on the full disk")

        keep = os.path.join(mnt, "keep.kvc.h5")
        shutil.copy(cap, keep) if os.path.getsize(cap) < 1 << 20 else None
        r = kvwb("synth", os.path.join(mnt, "big.kvc.h5"), "--layers", "8", "--tokens", "1024")
        no_crash(r, "synth larger than the disk")
        check(not os.path.exists(os.path.join(mnt, "big.kvc.h5")), "synth: no partial capture")
        r = kvwb("run", cap, "-q", "--block-size", "64", "--dump-decoded", os.path.join(mnt, "dec.kvc.h5"))
        if r.returncode != 0:
            no_crash(r, "run --dump-decoded on a full disk")
        for name, args in [
            ("run --json", ["run", cap, "-q", "--block-size", "64", "--json", os.path.join(mnt, "r.json")]),
            ("export-bundle", ["export-bundle", cap, "--out", os.path.join(mnt, "b"), "-q", "--block-size", "64"]),
            ("session save", ["run", cap, "-q", "--block-size", "64", "--save-session", os.path.join(mnt, "s.kvwb.json")]),
            ("sweep store creation", ["sweep", cap, "--grid", grid, "--out", os.path.join(mnt, "st0")]),
        ]:
            fill(0)
            no_crash(kvwb(*args), name)
            unfill()
        if os.path.exists(os.path.join(mnt, "dec.kvc.h5")):
            os.remove(os.path.join(mnt, "dec.kvc.h5"))
        # A store that fills the disk part way: earlier records kept, resumable once space is back.
        store = os.path.join(mnt, "st")
        fill(40000)
        r = kvwb("sweep", cap, "--grid", grid, "--out", store, "-j", "2")
        if r.returncode != 0:
            no_crash(r, "sweep appends on a filling disk")
            if os.path.exists(os.path.join(store, "results.jsonl")):
                try:
                    n = len(store_records(store))
                    check(True, f"the store kept its {n} complete records (no torn line)")
                except ValueError as e:
                    check(False, f"the store after a disk-full append: {e}")
        unfill()
        r = kvwb("sweep", cap, "--grid", grid, "--out", store, "-j", "2", "--resume")
        check(r.returncode == 0, f"with space back the sweep resumes to completion ({r.stderr.strip()[:160]})")
    finally:
        subprocess.run(["umount", mnt], capture_output=True)


def main():
    global K
    ap = argparse.ArgumentParser()
    ap.add_argument("kvwb")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--kills", type=int, default=6)
    ap.add_argument("--keep")
    a = ap.parse_args()
    K = os.path.abspath(a.kvwb)
    rng = random.Random(a.seed)
    w = a.keep or tempfile.mkdtemp(prefix="kvwb-fault-")
    os.makedirs(w, exist_ok=True)
    t0 = time.monotonic()
    print(f"fault suite: seed {a.seed}, work folder {w}")
    cap = os.path.join(w, "in", "med.kvc.h5")
    os.makedirs(os.path.dirname(cap), exist_ok=True)
    r = kvwb("synth", cap, "--layers", "4", "--kv-heads", "2", "--q-heads", "4", "--head-dim", "64", "--seqs", "2",
             "--tokens", "512")
    if r.returncode != 0:
        print(r.stderr)
        return 1
    grid = os.path.join(w, "in", "grid.json")
    json.dump({"bits_k": [2, 3, 4], "bits_v": [2, 3], "fixed": {"block_size": 64}}, open(grid, "w"))
    model = os.path.join(w, "in", "model")
    write_model(model)
    ids = os.path.join(w, "in", "ids.txt")
    open(ids, "w").write(" ".join(str(3 + i % 60) for i in range(2400)))
    sweep_kills(w, cap, grid, rng, a.kills)
    store_creation_kills(w, cap, grid, rng)
    bundle_kills(w, cap, rng)
    file_kills(w, cap, rng)
    sigint_all(w, cap, grid, model, ids, rng)
    full_disk(w, cap, grid)
    print(f"{PASSES} passed, {len(FAILS)} failed in {time.monotonic() - t0:.0f} s (seed {a.seed})")
    for f in FAILS:
        print("  FAILED:", f)
    if not a.keep:
        shutil.rmtree(w, ignore_errors=True)
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())

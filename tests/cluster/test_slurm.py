#!/usr/bin/python3
"""Sharded sweeps on a real Slurm (docs/cluster.md): a single-node Slurm 22.05 cluster started by
this test (tests/cluster/slurm_cluster.py) runs `kvwb slurm submit` on the real tiny1m capture.

  1. a 6-cell grid in 3 shards (job array + merge job): the merged store equals a single-process
     `kvwb sweep` record for record (checked here in Python, and by `kvwb store diff`), and
     `kvwb pareto` prints the same frontier on both; the wall times of both are printed;
  2. one shard cancelled with scancel after its first cell: `kvwb slurm status` reports it, the
     merge job is cancelled, `kvwb slurm submit --resume` resubmits only that shard, which runs only
     its missing cell (its stored cell stays byte for byte), and the merged store is again identical;
  3. a shard whose cell has an impossible parameter fails: the merge job ends CANCELLED (the test
     cluster has no kill_invalid_depend, so only kvwb's --kill-on-invalid-dep=yes does that), status
     names the failed cell, and --resume refuses until the failures are allowed;
  4. `kvwb store merge` refuses stores of two different captures.

Usage: test_slurm.py KVWB REAL_DATA_DIR. Without the real data (a fresh clone) it runs on two
SYNTHETIC captures of tiny1m's shape. Exit 77 (skip) only when Slurm cannot run here (packages
missing: scripts/install-deps.sh installs them; not root; a daemon that does not start).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from slurm_cluster import ClusterUnavailable, SlurmCluster  # noqa: E402

SKIP = 77
GRID6 = {"k_codec": ["kakeya_pca"], "v_codec": ["kakeya_pca"], "bits_k": [2, 3, 4],
         "variance_ratio": [0.95, 1.0], "fixed": {"block_size": 256}}
# Three cells, one per shard; the last one cannot run (Kakeya-PCA bit widths are 1-4).
GRID_FAILING = {"grids": [{"k_codec": ["q8_0", "q4_0"], "v_codec": ["q8_0"]},
                          {"k_codec": ["kakeya_pca"], "v_codec": ["q8_0"], "k_param": ["bit_width=9"]}],
                "fixed": {"block_size": 256}}

failures = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


class Kvwb:
    def __init__(self, binary, env):
        self.binary, self.env = binary, env

    def __call__(self, *args, expect=0):
        r = subprocess.run([self.binary, *args], env=self.env, capture_output=True, text=True, timeout=600)
        if expect is not None and r.returncode != expect:
            raise RuntimeError("kvwb %s exited %d (expected %d):\n%s%s" %
                               (" ".join(args), r.returncode, expect, r.stdout, r.stderr))
        return r


def records(store):
    """Records of a store in file order (complete lines only)."""
    out = []
    with open(os.path.join(store, "results.jsonl"), "rb") as f:
        for line in f.read().split(b"\n")[:-1]:
            if line.strip():
                out.append(json.loads(line))
    return out


def content(rec):
    """A record without what depends on where and when it ran (docs/cluster.md)."""
    r = json.loads(json.dumps(rec))
    r.pop("timing", None)
    if "result" in r:
        r["result"].pop("seconds", None)
        r["result"].get("capture", {}).pop("file", None)
    return r


def same_records(a, b):
    ra = {r["key"]: content(r) for r in records(a)}
    rb = {r["key"]: content(r) for r in records(b)}
    return len(ra) == len(records(a)) and ra == rb


def submit_ids(out):
    m = re.search(r"shard array as job (\d+) \(--array=([0-9,-]+)\) and the merge as job (\d+)", out)
    if not m:
        raise RuntimeError("no job ids in the output of kvwb slurm submit:\n" + out)
    return m.group(1), m.group(2), m.group(3)


def status(kvwb, folder):
    path = os.path.join(folder, "status.json")
    r = kvwb("slurm", "status", folder, "--json", path)
    with open(path) as f:
        return json.load(f), r.stdout


def jobcomp_state(cluster, job):
    """JobState of `job` in the cluster's jobcomp/filetxt log (independent of squeue)."""
    if not os.path.exists(cluster.jobcomp_log):
        return None
    state = None
    with open(cluster.jobcomp_log) as f:
        for line in f:
            if re.search(r"(^| )JobId=%s " % job, line):
                m = re.search(r"JobState=(\S+)", line)
                state = m.group(1) if m else None
    return state


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    kvwb_bin, data = os.path.abspath(sys.argv[1]), sys.argv[2]
    capture = os.path.join(data, "tiny1m_wikitext2.kvc.h5")
    other = os.path.join(data, "tiny1m_tinystories.kvc.h5")
    work = tempfile.mkdtemp(prefix="kvwb-cluster-test-")
    os.chmod(work, 0o755)
    if not (os.path.exists(capture) and os.path.exists(other)):
        # A fresh clone has no real data: the same shapes as tiny1m, SYNTHETIC (kvwb synth).
        print("note: the real tiny1m captures are not in %s; using two SYNTHETIC captures of the same shape" % data)
        capture, other = os.path.join(work, "synth-a.kvc.h5"), os.path.join(work, "synth-b.kvc.h5")
        for path, seed in ((capture, "1"), (other, "2")):
            subprocess.run([kvwb_bin, "synth", path, "--layers", "4", "--kv-heads", "2", "--q-heads", "4",
                            "--head-dim", "64", "--seqs", "1", "--tokens", "256", "--seed", seed],
                           check=True, capture_output=True)
    cluster = SlurmCluster(os.path.join(work, "slurm"))
    try:
        try:
            cluster.start()
        except ClusterUnavailable as e:
            print("SKIP: cannot run a test Slurm cluster here: %s" % e)
            return SKIP
        run_scenarios(cluster, Kvwb(kvwb_bin, cluster.env), capture, other, work)
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        print("%d check(s) failed:\n  %s" % (len(failures), "\n  ".join(failures)))
        return 1
    print("all checks passed")
    return 0


def run_scenarios(cluster, kvwb, capture, other, work):
    grid6 = os.path.join(work, "grid6.json")
    with open(grid6, "w") as f:
        json.dump(GRID6, f)

    # ---- 1. three shards + merge == one process ----
    single = os.path.join(work, "single")
    t0 = time.monotonic()
    kvwb("sweep", capture, "--grid", grid6, "--out", single)
    t_single = time.monotonic() - t0
    run3 = os.path.join(work, "run3")
    t0 = time.monotonic()
    out = kvwb("slurm", "submit", capture, "--grid", grid6, "--out", run3, "--shards", "3").stdout
    array, spec, merge = submit_ids(out)
    states = cluster.wait_jobs([array, merge], 300)
    t_slurm = time.monotonic() - t0
    check(spec == "0-2", "the array covers shards 0-2 (%s)" % spec)
    check(all(states.get("%s_%d" % (array, i)) == "COMPLETED" for i in range(3)), "every shard COMPLETED: %s" % states)
    check(states.get(merge) == "COMPLETED", "the merge job COMPLETED: %s" % states.get(merge))
    merged = os.path.join(run3, "merged")
    check(os.path.exists(os.path.join(merged, "store.json")), "the merged store exists")
    check(len(records(merged)) == 6 and same_records(merged, single),
          "the merged store equals the single-process sweep record for record (6 records)")
    hashes = [r["config_hash"] for r in records(merged)]
    check(hashes == sorted(hashes), "merged records are in canonical (config hash) order")
    check(kvwb("store", "diff", merged, single, expect=None).returncode == 0, "kvwb store diff finds no difference")
    for metric in ("attn_kl", "k_rel_mse"):
        a = kvwb("pareto", merged, "--metric", metric).stdout
        b = kvwb("pareto", single, "--metric", metric).stdout
        check(a == b and "Pareto frontier of 6 configurations" in a, "pareto --metric %s prints the same frontier" % metric)
    st, text = status(kvwb, run3)
    check(st["done"] == 6 and st["pending"] == 0 and st["merged"]["exists"], "status: 6 done, merged")
    print("TIMING single-process kvwb sweep (1 process, --jobs 1): %.2f s; 3-shard Slurm array + merge job "
          "(submit to merged store, 2 CPUs): %.2f s; ratio %.2f" % (t_single, t_slurm, t_slurm / t_single), flush=True)

    # ---- 2. a shard cancelled mid-run, then --resume ----
    run_c = os.path.join(work, "cancel")
    out = kvwb("slurm", "submit", capture, "--grid", grid6, "--out", run_c, "--shards", "3").stdout
    array, _, merge = submit_ids(out)
    victim = 1
    shard_results = os.path.join(run_c, "shards", "shard-%d" % victim, "results.jsonl")
    t0 = time.monotonic()
    while time.monotonic() - t0 < 300:
        if os.path.exists(shard_results):
            with open(shard_results, "rb") as f:
                if f.read().count(b"\n") >= 1:
                    break
        time.sleep(0.01)
    cluster.run(["scancel", "%s_%d" % (array, victim)])
    states = cluster.wait_jobs([array, merge], 300)
    kept = records(os.path.join(run_c, "shards", "shard-%d" % victim))
    if not check(len(kept) == 1, "shard %d was cancelled after exactly 1 of its 2 cells (has %d)" % (victim, len(kept))):
        return
    check(states.get("%s_%d" % (array, victim)) == "CANCELLED", "squeue: shard %d CANCELLED" % victim)
    check(states.get(merge) == "CANCELLED", "the merge job was cancelled: %s" % states.get(merge))
    st, text = status(kvwb, run_c)
    sh = st["shards"][victim]
    check(sh["state"] == "CANCELLED" and sh["done"] == 1 and sh["pending"] == 1,
          "status reports shard %d CANCELLED with 1 done, 1 pending" % victim)
    check(st["incomplete_shards"] == [victim] and "--resume" in st["next"], "status advises --resume for shard %d" % victim)
    print(text, end="")
    others_before = {i: open(os.path.join(run_c, "shards", "shard-%d" % i, "results.jsonl"), "rb").read()
                     for i in range(3)}
    out = kvwb("slurm", "submit", "--resume", run_c).stdout
    array2, spec2, merge2 = submit_ids(out)
    check(spec2 == str(victim), "--resume resubmits only shard %d (--array=%s)" % (victim, spec2))
    states = cluster.wait_jobs([array2, merge2], 300)
    check(states.get(merge2) == "COMPLETED", "the resumed merge job COMPLETED")
    after = open(shard_results, "rb").read()
    check(after.startswith(others_before[victim]) and after.count(b"\n") == 2,
          "the resumed shard kept its stored cell byte for byte and added only the missing one")
    for i in range(3):
        if i != victim:
            check(open(os.path.join(run_c, "shards", "shard-%d" % i, "results.jsonl"), "rb").read() == others_before[i],
                  "shard %d was not rerun" % i)
    log = os.path.join(run_c, "logs", "shard-%d.job%s.out" % (victim, array2))
    check(os.path.exists(log) and "1 already stored, 1 run" in open(log).read(), "the resumed shard ran 1 cell")
    check(same_records(os.path.join(run_c, "merged"), single), "after --resume the merged store equals the single sweep")
    check("nothing to do" in kvwb("slurm", "submit", "--resume", run_c).stdout, "a second --resume has nothing to do")

    # ---- 3. a failing shard cancels the merge; status names the cell ----
    gridf = os.path.join(work, "grid-failing.json")
    with open(gridf, "w") as f:
        json.dump(GRID_FAILING, f)
    run_f = os.path.join(work, "failing")
    out = kvwb("slurm", "submit", capture, "--grid", gridf, "--out", run_f, "--shards", "3").stdout
    array, _, merge = submit_ids(out)
    states = cluster.wait_jobs([array, merge], 300)
    tasks = [states.get("%s_%d" % (array, i)) for i in range(3)]
    check(sorted(tasks) == ["COMPLETED", "COMPLETED", "FAILED"], "one shard FAILED, two COMPLETED: %s" % tasks)
    check(states.get(merge) == "CANCELLED", "the merge job is CANCELLED, not pending: %s" % states.get(merge))
    time.sleep(0.2)  # the jobcomp log is written when the job record ends
    check(jobcomp_state(cluster, merge) == "CANCELLED", "jobcomp log: merge job %s CANCELLED" % merge)
    st, text = status(kvwb, run_f)
    print(text, end="")
    failed = [f for s in st["shards"] for f in s["failures"]]
    check(len(failed) == 1 and failed[0]["options"].get("k_param") == "bit_width=9"
          and failed[0]["error"]["code"] == "INVALID_ARGUMENT", "status JSON names the failed cell")
    check("bit_width=9" in text and "INVALID_ARGUMENT" in text and "FAILED" in text, "status text names the failed cell")
    r = kvwb("slurm", "submit", "--resume", run_f, expect=None)
    check(r.returncode == 2 and "bit_width=9" in r.stderr, "--resume refuses while cells failed, naming the cell")

    # ---- 4. merge refuses stores of different captures ----
    one = os.path.join(work, "grid1.json")
    with open(one, "w") as f:
        json.dump({"k_codec": ["q8_0"], "v_codec": ["q8_0"], "fixed": {"block_size": 256}}, f)
    kvwb("sweep", other, "--grid", one, "--out", os.path.join(work, "other"))
    r = kvwb("store", "merge", os.path.join(work, "mixed"), single, os.path.join(work, "other"), expect=None)
    sha = json.load(open(os.path.join(single, "store.json")))["capture"]["sha256"]
    sha_o = json.load(open(os.path.join(work, "other", "store.json")))["capture"]["sha256"]
    check(r.returncode == 1 and "STORE_MISMATCH" in r.stderr and sha in r.stderr and sha_o in r.stderr,
          "store merge refuses two captures, naming both sha256")
    check(not os.path.exists(os.path.join(work, "mixed")), "nothing was written")


if __name__ == "__main__":
    sys.exit(main())

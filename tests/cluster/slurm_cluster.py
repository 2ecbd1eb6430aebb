#!/usr/bin/python3
"""A throw-away single-node Slurm cluster for tests (Debian 12: Slurm 22.05 + munge), run as root
without systemd, that stops exactly what it started.

    with SlurmCluster(root_dir) as cluster:      # munged, slurmctld, slurmd; node idle; probe job done
        subprocess.run(["sbatch", ...], env=cluster.env)   # SLURM_CONF points at this cluster

Everything lives under `root_dir` (config, munge key and socket, state, spool, logs, the job
completion log `jobcomp.log`). The daemons run in the foreground as children of this process, which
makes itself a child subreaper, so `slurmstepd` processes that outlive `slurmd` are re-parented to
it. `stop()` cancels every job of this cluster, waits for them to end, then terminates the daemons
by their recorded pids and finally every remaining process below this one (found by pid through
/proc parent links), never by name. If this process dies, the daemons get SIGTERM (parent-death
signal).

Plugins that work without cgroup delegation: proctrack/linuxproc, task/none, select/cons_tres with
CR_CPU, no accounting (read `squeue -t all`, `scontrol show job`, jobcomp/filetxt).

Command line (for trying docs/cluster.md by hand):  slurm_cluster.py shell ROOT
starts a cluster, runs $SHELL with SLURM_CONF set, and stops the cluster when the shell exits.
"""
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
REQUIRED = ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "sinfo"]


class ClusterUnavailable(Exception):
    """Slurm cannot run here (packages missing, not root, a daemon that does not start)."""


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _set_pdeathsig():
    _libc().prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _children_of(pid):
    """Pids whose parent is `pid` (read from /proc/*/stat)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may contain spaces and parentheses: split after the last ')'.
        rest = stat[stat.rfind(")") + 2:].split()
        if len(rest) > 1 and int(rest[1]) == pid:
            out.append(int(entry))
    return out


def _descendants(pid):
    todo, seen = [pid], []
    while todo:
        for c in _children_of(todo.pop()):
            if c not in seen:
                seen.append(c)
                todo.append(c)
    return seen


def _state(pid):
    """The state letter of /proc/PID/stat (R, S, Z, ...), None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    return stat[stat.rfind(")") + 2:].split()[0]


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class SlurmCluster:
    def __init__(self, root=None, log=print, extra_conf=()):
        """`extra_conf`: more slurm.conf lines (e.g. "DependencyParameters=kill_invalid_depend")."""
        self.extra_conf = list(extra_conf)
        self.root = os.path.abspath(root or tempfile.mkdtemp(prefix="kvwb-slurm-"))
        self.log = log
        self.procs = {}  # name -> Popen
        self.env = dict(os.environ)
        self.node = None
        self.started = False

    # ---- paths ----
    def path(self, *parts):
        return os.path.join(self.root, *parts)

    @property
    def conf(self):
        return self.path("slurm.conf")

    @property
    def jobcomp_log(self):
        return self.path("jobcomp.log")

    # ---- start ----
    def check_available(self):
        missing = [p for p in REQUIRED if shutil.which(p) is None and not os.path.exists("/usr/sbin/" + p)]
        if missing:
            raise ClusterUnavailable("Slurm/munge programs not installed: " + " ".join(missing) +
                                     " (scripts/install-deps.sh installs slurmctld slurmd slurm-client munge)")
        if os.geteuid() != 0:
            raise ClusterUnavailable("a test Slurm cluster runs its daemons as root; this is uid %d" % os.geteuid())

    def _which(self, prog):
        return shutil.which(prog) or "/usr/sbin/" + prog

    def _spawn(self, name, argv):
        logf = open(self.path("logs", name + ".console"), "ab")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                             env=self.env, preexec_fn=_set_pdeathsig, close_fds=True)
        logf.close()
        self.procs[name] = p
        with open(self.path("pids"), "a") as f:
            f.write("%s %d\n" % (name, p.pid))
        return p

    def _wait_for(self, what, predicate, timeout, proc_names=()):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if predicate():
                return time.monotonic() - t0
            for n in proc_names:
                if self.procs[n].poll() is not None:
                    raise ClusterUnavailable("%s exited with code %d while waiting for %s:\n%s" %
                                             (n, self.procs[n].returncode, what, self.log_tail(n)))
            time.sleep(0.05)
        raise ClusterUnavailable("timed out after %.0f s waiting for %s:\n%s" %
                                 (timeout, what, "\n".join(self.log_tail(n) for n in self.procs)))

    def log_tail(self, name, lines=15):
        out = []
        for suffix in (".log", ".console"):
            p = self.path("logs", name + suffix)
            if os.path.exists(p):
                with open(p, "rb") as f:
                    text = f.read().decode("utf-8", "replace").splitlines()
                out.append("--- %s (last %d lines)\n%s" % (p, lines, "\n".join(text[-lines:])))
        return "\n".join(out)

    def run(self, argv, check=True, timeout=60):
        r = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError("%s exited with %d: %s%s" % (" ".join(argv), r.returncode, r.stdout, r.stderr))
        return r

    def start(self):
        self.check_available()
        t0 = time.monotonic()
        if _libc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            raise ClusterUnavailable("prctl(PR_SET_CHILD_SUBREAPER) failed")
        os.makedirs(self.root, exist_ok=True)
        os.chmod(self.root, 0o755)
        for d in ("munge", "state", "spool", "logs"):
            os.makedirs(self.path(d), exist_ok=True)
        os.chmod(self.path("munge"), 0o755)
        # munged: its own key (0600) and socket folder (0755, traversable by everyone).
        key = self.path("munge", "munge.key")
        with open(key, "wb") as f:
            f.write(os.urandom(1024))
        os.chmod(key, 0o600)
        sock = self.path("munge", "munge.socket.2")
        self.started = True
        self._spawn("munged", [self._which("munged"), "--foreground", "--force", "--socket=" + sock,
                               "--key-file=" + key, "--log-file=" + self.path("logs", "munged.log"),
                               "--pid-file=" + self.path("munge", "munged.pid"),
                               "--seed-file=" + self.path("munge", "munged.seed")])
        self._wait_for("the munge socket", lambda: os.path.exists(sock), 15, ["munged"])

        node = subprocess.run([self._which("slurmd"), "-C"], capture_output=True, text=True).stdout.splitlines()
        node = [l for l in node if l.startswith("NodeName=")]
        if not node:
            raise ClusterUnavailable("slurmd -C printed no NodeName line")
        self.node = node[0].split()[0].split("=", 1)[1]
        host = socket.gethostname().split(".")[0]
        conf = [
            "ClusterName=kvwbtest",
            "SlurmctldHost=%s(127.0.0.1)" % host,
            "SlurmctldPort=%d" % _free_port(),
            "SlurmdPort=%d" % _free_port(),
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            "AuthInfo=socket=" + sock,
            "StateSaveLocation=" + self.path("state"),
            "SlurmdSpoolDir=" + self.path("spool"),
            "SlurmctldPidFile=" + self.path("slurmctld.pid"),
            "SlurmdPidFile=" + self.path("slurmd.pid"),
            "SlurmctldLogFile=" + self.path("logs", "slurmctld.log"),
            "SlurmdLogFile=" + self.path("logs", "slurmd.log"),
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/filetxt",
            "JobCompLoc=" + self.jobcomp_log,
            "JobAcctGatherType=jobacct_gather/none",
            "SchedulerParameters=batch_sched_delay=0",
            *self.extra_conf,
            "MpiDefault=none",
            "ReturnToService=2",
            "MailProg=/bin/true",
            "KillWait=2",
            "MinJobAge=600",
            node[0].strip() + " NodeAddr=127.0.0.1 State=UNKNOWN",
            "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
        ]
        with open(self.conf, "w") as f:
            f.write("\n".join(conf) + "\n")
        self.env["SLURM_CONF"] = self.conf
        self._spawn("slurmctld", [self._which("slurmctld"), "-D", "-i", "-f", self.conf])
        self._spawn("slurmd", [self._which("slurmd"), "-D", "-N", self.node, "-f", self.conf])

        def node_idle():
            r = subprocess.run(["sinfo", "-h", "-n", self.node, "-o", "%t"], env=self.env,
                               capture_output=True, text=True)
            return r.returncode == 0 and r.stdout.strip() == "idle"

        self._wait_for("node %s idle" % self.node, node_idle, 60, ["munged", "slurmctld", "slurmd"])
        # A first probe job makes later scheduling waves about 1 s.
        jid = self.run(["sbatch", "--parsable", "--output=/dev/null", "--wrap=true"]).stdout.strip().split(";")[0]
        self.wait_jobs([jid], 60)
        self.log("slurm test cluster up in %.1f s (node %s, %s)" % (time.monotonic() - t0, self.node, self.root))
        return self

    # ---- jobs ----
    def job_states(self, job_ids):
        """{job or task id: state} from `squeue -t all -r` for the given (array) job ids."""
        r = self.run(["squeue", "-h", "-t", "all", "-r", "-j", ",".join(job_ids), "-o", "%i %T"], check=False)
        out = {}
        for line in r.stdout.splitlines():
            parts = line.split()
            if len(parts) == 2:
                out[parts[0]] = parts[1]
        return out

    def wait_jobs(self, job_ids, timeout):
        """Polls squeue until none of `job_ids` is pending or running; returns their states."""
        t0 = time.monotonic()
        while True:
            states = self.job_states(job_ids)
            if states and all(s not in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED")
                              for s in states.values()):
                return states
            if time.monotonic() - t0 > timeout:
                raise RuntimeError("jobs %s not finished after %.0f s: %s" % (job_ids, timeout, states))
            time.sleep(0.1)

    # ---- stop ----
    def stop(self):
        if not self.started:
            return
        self.started = False
        t0 = time.monotonic()
        if self.procs.get("slurmctld") and self.procs["slurmctld"].poll() is None:
            subprocess.run(["scancel", "--full", "--user", "root"], env=self.env, capture_output=True, timeout=30)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                r = subprocess.run(["squeue", "-h", "-o", "%i"], env=self.env, capture_output=True, text=True)
                if r.returncode != 0 or not r.stdout.strip():
                    break
                time.sleep(0.1)
        # The daemons, by recorded pid: slurmd first, then slurmctld, munged last.
        for name in ("slurmd", "slurmctld", "munged"):
            p = self.procs.get(name)
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        # What is left below this process (slurmstepd, job steps re-parented to this subreaper).
        # Only pids found as descendants of this process are signalled.
        me = os.getpid()
        left = [pid for pid in _descendants(me) if pid not in [p.pid for p in self.procs.values()]]
        running = [pid for pid in left if _state(pid) not in ("Z", None)]
        ours = [pid for pid in left if _alive(pid)]
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in ours:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and any(_alive(p) for p in ours):
                for pid in ours:
                    try:
                        os.waitpid(pid, os.WNOHANG)
                    except ChildProcessError:
                        pass
                time.sleep(0.05)
            ours = [p for p in ours if _alive(p)]
            if not ours:
                break
        self.log("slurm test cluster stopped in %.1f s (%d leftover processes ended by pid, %d zombies reaped)" %
                 (time.monotonic() - t0, len(running), len(left) - len(running)))

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()
        return False


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "shell":
        print(__doc__)
        sys.exit(2)
    with SlurmCluster(sys.argv[2]) as c:
        subprocess.run([os.environ.get("SHELL", "/bin/bash")], env=c.env)

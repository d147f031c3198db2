"""Where the experiment's pods run: a Kubernetes Deployment, or a cluster in a box on loopback.

KubernetesTarget  scales a Deployment with kubectl (or deploy/cluster/scale.sh when present) and
                  waits until exactly N pods are Ready; the load goes to the URL the user gives.
LocalTarget       runs N copies of the service, each in its own cgroup-v1 "pod" (0.5 CPU via CFS
                  quota, 512 MiB memory, no swap: the semantics of shared/bench/pod.sh), behind
                  HAProxy round-robin on 127.0.0.1. Everything it starts is stopped and every cgroup
                  removed on close(), which the runner calls on exit, Ctrl-C included.
HostSampler       samples host CPU utilisation from /proc/stat in a background thread.
"""

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from devkit import http_status, read_port_file, wait_ready  # noqa: E402

CG_ROOT = "/sys/fs/cgroup"
POD_PREFIX = "clouddetect-exp"


def log(msg):
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pdeathsig_prefix():
    """`setpriv --pdeathsig KILL --` (util-linux) so children die with the runner even on SIGKILL."""
    p = shutil.which("setpriv")
    return [p, "--pdeathsig", "KILL", "--"] if p else []


def boost_session(pid, nice):
    """Gives the session of `pid` the CPU weight of `nice` (<0: more); True if the kernel took it.

    With kernel autogroups (/proc/sys/kernel/sched_autogroup_enabled = 1) every session gets the same CPU weight
    whatever the nice values of its processes: on a machine shared with other people's builds, each in its own
    session, a pod would get 1/(busy sessions) of the CPU instead of its quota. In Kubernetes a pod whose CPU
    request equals its limit has guaranteed CPU shares; the emulation gives the session of each pod (and of
    HAProxy and Locust, which stand in for other machines) a higher weight so that the quota, not the neighbours,
    limits it. The quota still caps it."""
    if not nice:
        return False
    try:
        with open(f"/proc/{pid}/autogroup", "w") as fh:
            fh.write(str(nice))
        return True
    except OSError:  # no autogroups, or not root
        return False


def session_shares(nice):
    """cpu.shares of a pod cgroup with the weight of an autogroup of that nice (the kernel's weight table grows
    1.25x per nice step from 1024 at 0). Autogroups only apply to tasks in the root cgroup: a pod's cgroup
    competes with the root's autogroups by its cpu.shares instead."""
    return int(1024 * 1.25 ** -nice) if nice else None


# --------------------------------------------------------------------------- host CPU


class HostSampler:
    """Host CPU busy fraction (1 - idle - iowait) every `interval` seconds, from /proc/stat."""

    def __init__(self, interval=1.0):
        self.interval = interval
        self.samples = []  # (t_end, busy fraction)
        self._stop = threading.Event()
        self._th = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _read():
        with open("/proc/stat") as fh:
            v = [int(x) for x in fh.readline().split()[1:]]
        idle = v[3] + (v[4] if len(v) > 4 else 0)
        return sum(v), idle

    def start(self):
        self._th.start()
        return self

    def _run(self):
        tot0, idle0 = self._read()
        while not self._stop.wait(self.interval):
            tot1, idle1 = self._read()
            if tot1 > tot0:
                self.samples.append((time.time(), 1.0 - (idle1 - idle0) / (tot1 - tot0)))
            tot0, idle0 = tot1, idle1

    def stop(self):
        self._stop.set()

    def stats(self, t0, t1):
        v = [b for t, b in self.samples if t0 <= t <= t1 + 0.5]
        if not v:
            return {"mean": None, "max": None, "p90": None}
        s = sorted(v)
        return {"mean": round(sum(v) / len(v), 3), "max": round(s[-1], 3), "p90": round(s[int(0.9 * (len(s) - 1))], 3)}


def proc_cpu_seconds(pid):
    """User+system CPU seconds of a process (0 if gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            f = fh.read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


# --------------------------------------------------------------------------- cgroup v1 pods


def _own_cgroup(controller):
    """This process's cgroup path in a v1 hierarchy that has `controller` (pods nest under it, like pod.sh)."""
    with open("/proc/self/cgroup") as fh:
        for line in fh:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if controller in ctrls.split(","):
                return path
    return None


def _mount_of(controller):
    with open("/proc/mounts") as fh:
        for line in fh:
            dev, mnt, fstype, opts = line.split()[:4]
            if fstype == "cgroup" and controller in opts.split(","):
                return mnt
    return None


class CgroupPod:
    """One 'pod': cgroup v1 directories for cpu, cpuacct and memory with the pod's limits."""

    CONTROLLERS = ("cpu", "cpuacct", "memory")

    def __init__(self, name, cpu=0.5, mem_bytes=512 << 20, period_us=100000, shares=None):
        self.name = name
        self.dirs = {}
        for c in self.CONTROLLERS:
            mnt, own = _mount_of(c), _own_cgroup(c)
            if mnt is None or own is None:
                raise RuntimeError(f"no cgroup v1 '{c}' hierarchy (cgroup v2-only host?): use --no-limits "
                                   "or Docker/Kubernetes instead")
            self.dirs[c] = os.path.join(mnt + own.rstrip("/"), name)
        for c, d in self.dirs.items():
            if os.path.isdir(d):
                if open(os.path.join(d, "cgroup.procs")).read().strip():
                    raise RuntimeError(f"{d} is in use (a previous run still alive?)")
                os.rmdir(d)
            os.makedirs(d, exist_ok=True)
        self._w("cpu", "cpu.cfs_period_us", period_us)
        self._w("cpu", "cpu.cfs_quota_us", int(cpu * period_us))
        if shares:
            self._w("cpu", "cpu.shares", shares)
        self._w("memory", "memory.limit_in_bytes", mem_bytes)
        try:
            self._w("memory", "memory.memsw.limit_in_bytes", mem_bytes)
        except OSError:
            pass  # no swap accounting: with no swap on the host the memory limit alone holds
        self.cpu, self.mem_bytes = cpu, mem_bytes

    def _w(self, c, f, v):
        with open(os.path.join(self.dirs[c], f), "w") as fh:
            fh.write(str(v))

    def _r(self, c, f):
        with open(os.path.join(self.dirs[c], f)) as fh:
            return fh.read()

    def wrap(self, cmd):
        """Command line that joins this pod's cgroups, then execs cmd (same PID)."""
        procs = [os.path.join(d, "cgroup.procs") for d in self.dirs.values()]
        script = 'while [ "$1" != "--" ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'
        return ["/bin/sh", "-c", script, "pod"] + procs + ["--"] + list(cmd)

    def pids(self):
        out = set()
        for c in self.dirs:
            try:
                out |= {int(p) for p in self._r(c, "cgroup.procs").split()}
            except OSError:
                pass
        return sorted(out)

    def stats(self):
        cpu = dict(line.split() for line in self._r("cpu", "cpu.stat").splitlines() if " " in line)
        oom = dict(line.split() for line in self._r("memory", "memory.oom_control").splitlines() if " " in line)
        return {"cpu_s": int(self._r("cpuacct", "cpuacct.usage")) / 1e9,
                "nr_periods": int(cpu.get("nr_periods", 0)), "nr_throttled": int(cpu.get("nr_throttled", 0)),
                "mem_peak_bytes": int(self._r("memory", "memory.max_usage_in_bytes")),
                "mem_failcnt": int(self._r("memory", "memory.failcnt")),
                "oom_kill": int(oom.get("oom_kill", 0))}

    def reset_peak(self):
        try:
            self._w("memory", "memory.max_usage_in_bytes", 0)
        except OSError:
            pass

    def remove(self):
        for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 2.0)):
            pids = self.pids()
            for p in pids:
                try:
                    os.kill(p, sig)
                except ProcessLookupError:
                    pass
            deadline = time.time() + wait
            while self.pids() and time.time() < deadline:
                time.sleep(0.1)
        for d in self.dirs.values():
            for _ in range(50):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)


def stale_pods():
    """Our pod cgroups left by a runner that died without cleaning up."""
    out = []
    for c in CgroupPod.CONTROLLERS:
        mnt, own = _mount_of(c), _own_cgroup(c)
        if not mnt or own is None:
            continue
        base = mnt + own.rstrip("/")
        try:
            out += [os.path.join(base, n) for n in os.listdir(base) if n.startswith(POD_PREFIX + "-")]
        except OSError:
            pass
    return out


# --------------------------------------------------------------------------- local target

HAPROXY_CFG = """global
    maxconn 4096
defaults
    mode {mode}
    timeout connect 5s
    timeout client 10m
    timeout server 10m
    timeout check 2s
frontend clouddetect
    bind 127.0.0.1:{port}
    default_backend pods
backend pods
    balance roundrobin
    option httpchk GET {health}
    http-check expect status 200
    default-server inter 1s fall 2 rise 1
{servers}
"""


class LocalTarget:
    """N replicas of the service on loopback, each in a cgroup pod, behind HAProxy."""

    kind = "local"

    def __init__(self, service_cmd, workdir, model="", cpu=0.5, mem_bytes=512 << 20, lb_mode="tcp",
                 lb_port=0, limits=True, ready_timeout=180.0, haproxy="haproxy", extra_env=None, session_nice=-10):
        self.service_cmd = service_cmd
        self.model = model
        self.workdir = workdir
        self.cpu, self.mem_bytes, self.limits = cpu, mem_bytes, limits
        self.lb_mode, self.lb_port = lb_mode, lb_port or free_port()
        self.ready_timeout = ready_timeout
        self.haproxy_bin = haproxy
        self.extra_env = dict(extra_env or {})
        self.session_nice = session_nice
        self.boosted = False
        self.pods = []  # dicts: name, port, proc, cg, log, restarts
        self.lb = None
        self.health_path = "/readyz"
        self.restarts = 0
        os.makedirs(os.path.join(workdir, "logs"), exist_ok=True)
        self._seq = 0

    @property
    def url(self):
        return f"http://127.0.0.1:{self.lb_port}"

    def command(self, port, port_file):
        """The service command for one pod: {port} is a free port chosen here; a service that can bind
        port 0 and write the port it got to {port_file} (clouddetect serve --port-file) avoids the race."""
        return shlex.split(self.service_cmd.format(port=port, port_file=port_file, model=self.model, host="127.0.0.1"))

    def describe(self):
        return {"target": "local", "service_cmd": self.service_cmd, "model": self.model,
                "pod_cpu": self.cpu if self.limits else None,
                "pod_memory_mib": self.mem_bytes >> 20 if self.limits else None,
                "limits": "cgroup v1 (CFS quota + memory limit)" if self.limits else "none (--no-limits)",
                "load_balancer": f"HAProxy {self.lb_mode} round-robin on 127.0.0.1:{self.lb_port}",
                "session_nice": (f"{self.session_nice} (pods, HAProxy and Locust in autogroups of that weight)"
                                 if self.boosted else "not applied"),
                "health_path": self.health_path}

    # -- pods
    def _start_pod(self, index):
        self._seq += 1
        name = f"{POD_PREFIX}-{os.getpid()}-{index}"
        port_file = os.path.join(self.workdir, "logs", f"pod-{index}.port")
        if os.path.exists(port_file):
            os.remove(port_file)
        uses_port_file = "{port_file}" in self.service_cmd
        port = None if uses_port_file else free_port()
        cmd = self.command(port, port_file)
        cg = None
        if self.limits:
            cg = CgroupPod(name, self.cpu, self.mem_bytes, shares=session_shares(self.session_nice))
            full = cg.wrap(pdeathsig_prefix() + cmd)
        else:
            full = pdeathsig_prefix() + cmd
        logf = open(os.path.join(self.workdir, "logs", f"pod-{index}.log"), "ab")
        env = dict(os.environ, POD_NAME=f"local-pod-{index}", NODE_NAME=socket.gethostname(), **self.extra_env)
        proc = subprocess.Popen(full, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True)
        self.boosted = boost_session(proc.pid, self.session_nice)
        return {"index": index, "name": name, "port": port, "port_file": port_file if uses_port_file else None,
                "proc": proc, "cg": cg, "log": logf, "cmd": cmd, "started": time.time()}

    def _stop_pod(self, pod):
        p = pod["proc"]
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        if pod["cg"] is not None:
            pod["cg"].remove()
        pod["log"].close()

    def _wait_pod_ready(self, pod, deadline):
        """Ready: /readyz answers 200 (/healthz for services without /readyz)."""
        try:
            if pod["port"] is None:
                pod["port"] = read_port_file(pod["proc"], pod["port_file"], deadline, pod["log"].name)
            self.health_path = wait_ready(pod["proc"], f"http://127.0.0.1:{pod['port']}", deadline, pod["log"].name)
        except RuntimeError as e:
            raise RuntimeError(f"pod {pod['index']}: {e}") from None

    def scale(self, n):
        """Exactly n pods, all ready, and HAProxy balancing over them."""
        t0 = time.time()
        while len(self.pods) > n:
            self._stop_pod(self.pods.pop())
        while len(self.pods) < n:
            self.pods.append(self._start_pod(len(self.pods)))
        deadline = time.time() + self.ready_timeout
        for pod in self.pods:
            self._wait_pod_ready(pod, deadline)
        self._restart_lb()
        self._wait_lb(n, deadline)
        log(f"local: {n} pod(s) ready behind {self.url} in {time.time() - t0:.1f} s")

    def ensure(self, n):
        """Before each phase: restart pods that died (like restartPolicy: Always) and re-check readiness.
        Returns the number of restarts made."""
        dead = [p for p in self.pods if p["proc"].poll() is not None]
        for pod in dead:
            log(f"local: pod {pod['index']} exited ({pod['proc'].returncode}); restarting it")
            self._stop_pod(pod)
            self.pods[pod["index"]] = self._start_pod(pod["index"])
        if dead:
            self.restarts += len(dead)
            deadline = time.time() + self.ready_timeout
            for pod in self.pods:
                self._wait_pod_ready(pod, deadline)
            self._restart_lb()
            self._wait_lb(n, deadline)
        return len(dead)

    # -- load balancer
    def _restart_lb(self):
        self._stop_lb()
        servers = "\n".join(f"    server pod{p['index']} 127.0.0.1:{p['port']} check" for p in self.pods)
        cfg = HAPROXY_CFG.format(mode=self.lb_mode, port=self.lb_port, health=self.health_path, servers=servers)
        path = os.path.join(self.workdir, "haproxy.cfg")
        with open(path, "w") as fh:
            fh.write(cfg)
        chk = subprocess.run([self.haproxy_bin, "-c", "-q", "-f", path], capture_output=True, text=True)
        if chk.returncode != 0:
            raise RuntimeError(f"haproxy config check failed: {chk.stderr or chk.stdout}")
        logf = open(os.path.join(self.workdir, "logs", "haproxy.log"), "ab")
        self.lb = subprocess.Popen(pdeathsig_prefix() + [self.haproxy_bin, "-db", "-f", path], stdout=logf,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        boost_session(self.lb.pid, self.session_nice)
        self.lb_log = logf

    def _wait_lb(self, n, deadline):
        # every server must have passed its first health check before traffic starts
        while time.time() < deadline:
            if self.lb.poll() is not None:
                raise RuntimeError(f"haproxy exited with {self.lb.returncode} (see logs/haproxy.log)")
            if http_status(self.url + self.health_path) == 200:
                time.sleep(1.5)  # inter 1s: all servers checked at least once
                return
            time.sleep(0.2)
        raise RuntimeError("haproxy not answering")

    def _stop_lb(self):
        if self.lb is not None:
            if self.lb.poll() is None:
                self.lb.terminate()
                try:
                    self.lb.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.lb.kill()
                    self.lb.wait()
            self.lb_log.close()
            self.lb = None

    # -- measurements
    def helper_pids(self):
        return {"lb": self.lb.pid} if self.lb is not None else {}

    def snapshot(self):
        """Per-pod counters (CPU seconds, throttling, memory peak, OOM kills) at this instant."""
        out = []
        for p in self.pods:
            s = {"index": p["index"], "alive": p["proc"].poll() is None}
            if p["cg"] is not None:
                try:
                    s.update(p["cg"].stats())
                except OSError:
                    pass
            else:
                s["cpu_s"] = proc_cpu_seconds(p["proc"].pid)
            out.append(s)
        return out

    def reset_peaks(self):
        for p in self.pods:
            if p["cg"] is not None:
                p["cg"].reset_peak()

    def close(self):
        self._stop_lb()
        while self.pods:
            try:
                self._stop_pod(self.pods.pop())
            except Exception as e:  # keep cleaning up the others
                log(f"local: cleanup error: {e}")


def pod_usage(before, after, seconds, cpu_limit):
    """Per-phase pod figures from two snapshots: CPU used as a fraction of the quota, throttled
    fraction of periods, peak memory, OOM kills."""
    if not before or not after or seconds <= 0:
        return {}
    b = {s["index"]: s for s in before}
    util, thr, peak, oom = [], [], [], 0
    for s in after:
        s0 = b.get(s["index"])
        if s0 is None or "cpu_s" not in s or "cpu_s" not in s0:
            continue
        if cpu_limit:
            util.append((s["cpu_s"] - s0["cpu_s"]) / (seconds * cpu_limit))
        if "nr_periods" in s:
            dp = s["nr_periods"] - s0["nr_periods"]
            thr.append((s["nr_throttled"] - s0["nr_throttled"]) / dp if dp > 0 else 0.0)
            peak.append(s["mem_peak_bytes"])
            oom += s["oom_kill"] - s0.get("oom_kill", 0)
    out = {}
    if util:
        out["pod_cpu_of_quota_mean"] = round(sum(util) / len(util), 3)
        out["pod_cpu_of_quota_min"] = round(min(util), 3)
    if thr:
        out["pod_throttled_frac_mean"] = round(sum(thr) / len(thr), 3)
    if peak:
        out["pod_mem_peak_mib_max"] = round(max(peak) / 2**20, 1)
        out["pod_oom_kills"] = oom
    return out


# --------------------------------------------------------------------------- Kubernetes target


class KubernetesTarget:
    """A Deployment scaled with kubectl; load goes to `url` (e.g. a NodePort http://NODE:30080)."""

    kind = "kubernetes"

    def __init__(self, url, deployment, namespace="default", kubectl="kubectl", context="", kubeconfig="",
                 scale_script="", ready_timeout=300.0):
        self.url = url.rstrip("/")
        self.deployment, self.namespace = deployment, namespace
        self.kubectl = ([kubectl] + (["--context", context] if context else [])
                        + (["--kubeconfig", kubeconfig] if kubeconfig else []))
        self.kubeconfig, self.context = kubeconfig, context
        self.scale_script = scale_script
        self.ready_timeout = ready_timeout
        self.restarts = 0
        self.health_path = "/readyz"
        self._selector = None
        self._restart_base = None

    def _k(self, *args, check=True):
        r = subprocess.run(self.kubectl + ["-n", self.namespace] + list(args), capture_output=True, text=True,
                           timeout=120)
        if check and r.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {r.stderr.strip() or r.stdout.strip()}")
        return r.stdout

    def deployment_json(self):
        return json.loads(self._k("get", "deployment", self.deployment, "-o", "json"))

    def selector(self):
        if self._selector is None:
            labels = self.deployment_json()["spec"]["selector"].get("matchLabels", {})
            if not labels:
                raise RuntimeError("deployment has no spec.selector.matchLabels")
            self._selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        return self._selector

    def pods(self):
        return json.loads(self._k("get", "pods", "-l", self.selector(), "-o", "json")).get("items", [])

    @staticmethod
    def count_ready(pods):
        """(ready, total): pods not being deleted whose Ready condition is True; total counts every
        pod of the selector, terminating ones included (they may still take traffic)."""
        ready = 0
        for p in pods:
            if p["metadata"].get("deletionTimestamp"):
                continue
            conds = p.get("status", {}).get("conditions", [])
            if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds):
                ready += 1
        return ready, len(pods)

    def describe(self):
        d = {"target": "kubernetes", "namespace": self.namespace, "deployment": self.deployment, "url": self.url,
             "context": self.context or "(current)"}
        try:
            dep = self.deployment_json()
            c = dep["spec"]["template"]["spec"]["containers"][0]
            d["image"] = c.get("image")
            d["resources"] = c.get("resources", {})
            env = {e["name"]: e.get("value") for e in c.get("env", []) if "value" in e}
            d["model"] = env.get("CLOUDDETECT_MODEL")
            lim = c.get("resources", {}).get("limits", {})
            d["pod_cpu"], d["pod_memory"] = lim.get("cpu"), lim.get("memory")
        except Exception as e:  # describing is best effort
            d["describe_error"] = str(e)
        return d

    def scale(self, n):
        t0 = time.time()
        if self.scale_script and os.access(self.scale_script, os.X_OK):
            cmd = [self.scale_script, "--replicas", str(n), "--namespace", self.namespace,
                   "--deployment", self.deployment, "--timeout", str(int(self.ready_timeout))]
            env = dict(os.environ)
            if self.kubeconfig:
                env["KUBECONFIG"] = self.kubeconfig
            log(f"kubernetes: {' '.join(cmd)}")
            r = subprocess.run(cmd, env=env, timeout=self.ready_timeout + 60)
            if r.returncode != 0:
                raise RuntimeError(f"{self.scale_script} exited with {r.returncode}")
        else:
            self._k("scale", f"deployment/{self.deployment}", f"--replicas={n}")
        self.wait_exact(n, t0 + self.ready_timeout)
        self._restart_base = self.restart_count()
        log(f"kubernetes: exactly {n} pod(s) ready in {time.time() - t0:.1f} s")

    def wait_exact(self, n, deadline):
        last = None
        while True:
            ready, total = self.count_ready(self.pods())
            if ready == n and total == n:
                return
            if (ready, total) != last:
                log(f"kubernetes: {ready} ready / {total} pods, waiting for exactly {n}")
                last = (ready, total)
            if time.time() > deadline:
                raise RuntimeError(f"timeout: {ready} ready of {total} pods, wanted exactly {n}")
            time.sleep(2)

    def restart_count(self):
        return sum(cs.get("restartCount", 0) for p in self.pods()
                   for cs in p.get("status", {}).get("containerStatuses", []))

    def ensure(self, n):
        self.wait_exact(n, time.time() + self.ready_timeout)
        now = self.restart_count()
        new = now - (self._restart_base or now)
        self._restart_base = now
        self.restarts += new
        return new

    def helper_pids(self):
        return {}

    def snapshot(self):
        return []

    def reset_peaks(self):
        pass

    def close(self):
        pass

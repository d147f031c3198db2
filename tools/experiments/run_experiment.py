#!/usr/bin/python3
"""CloudDetect scaling experiment: max users with 100% success and average response time for
1, 2, 4 and 8 pods, from one client location, repeated R times, with table, plots and report.

    # a real cluster (the runner only needs kubectl and the service's NodePort URL)
    /usr/bin/python3 tools/experiments/run_experiment.py run --target kubernetes \\
        --url http://192.168.49.2:30080 --namespace clouddetect --deployment clouddetect \\
        --location master --out results/cluster-master

    # a cluster in a box: N pods of build/clouddetect (0.5 CPU / 512 MiB cgroups) behind HAProxy
    /usr/bin/python3 tools/experiments/run_experiment.py run --target local --location master \\
        --model ../shared/models/yolo-fastest-1.1 --out results/local

    # one table from several client locations (e.g. results copied back from the remote machine)
    /usr/bin/python3 tools/experiments/run_experiment.py report results/cluster-master results/cluster-remote \\
        --out results/cluster

Procedure per pod count and repetition (see docs/EXPERIMENTS.md): scale, wait for exactly N ready
pods; ramp users step by step until the first failed request -> max users = failing count - 1;
re-run at that many users with a spawn rate of 1 user/s until the response time is stable and
confirm 100% success, else step down and retry; record the average response time and throughput.

Locust runs as a subprocess (`python3 -m locust -f tools/loadtest/locustfile.py --headless --csv`),
not as a library: the measurement is then exactly the command a person can rerun by hand (it is
logged per phase), Locust's gevent monkey-patching stays out of the runner (which uses threads,
subprocesses and signals for the pods), a Locust crash cannot take the bookkeeping down, and the
CSV files stay behind as raw evidence. The runner follows the run live through the stats-history
CSV (flushed every second by the locustfile) and stops Locust with SIGTERM once the response time
is stable; Locust then writes its final statistics.

Results are saved after every phase (results.json, results.csv); rerunning the same command with the
same --out resumes: finished runs are skipped, a run whose ramp finished goes on with its confirmation.
"""

import argparse
import datetime
import glob
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import analysis  # noqa: E402
import devkit  # noqa: E402
import report  # noqa: E402
import targets  # noqa: E402
from devkit import REPO_ROOT, shared_dir  # noqa: E402
from targets import log  # noqa: E402

LOCUSTFILE = os.path.join(REPO_ROOT, "tools", "loadtest", "locustfile.py")


def default_service_cmd():
    return (shlex.quote(devkit.clouddetect_binary())
            + " serve --model {model} --host 127.0.0.1 --port 0 --port-file {port_file}")


def option_value(argv, name, default=None):
    return next((argv[i + 1] for i, x in enumerate(argv[:-1]) if x == name), default)


def check_prerequisites(argv):
    """Before any work (the plots come last, after minutes of measuring): what this command needs."""
    if not argv or argv[0] not in ("run", "report"):
        return  # argparse explains the usage
    missing = devkit.missing_prerequisites(load_modules=["matplotlib"])
    if argv[0] == "run":
        locust_python = shlex.split(option_value(argv, "--locust-cmd", "/usr/bin/python3 -m locust"))[0]
        missing += devkit.missing_prerequisites(modules=["locust"], python=locust_python)
        target = option_value(argv, "--target", "")
        missing += devkit.missing_prerequisites(
            programs={"local": ["haproxy"], "kubernetes": [option_value(argv, "--kubectl", "kubectl")]}.get(target, []))
    devkit.require("run_experiment.py", "experiment", missing)


def service_name_of(cmd):
    """A short name for a --service-cmd: its program (`clouddetect`), or for an interpreted script the
    script's folder (`peer_flask_opencv` for .../peer_flask_opencv/app.py) -- the row label in Table 1."""
    words = [w for w in shlex.split(cmd) if "=" not in w and not w.startswith("-")]
    interpreters = ("env", "python", "python3", "sh", "bash", "node", "nice", "setpriv", "taskset")
    words = [w for w in words if os.path.basename(w) not in interpreters]
    if not words:
        return "service"
    prog = words[0].split("{")[0] or words[0]
    name = os.path.basename(prog)
    if name.endswith((".py", ".js", ".sh")):
        return os.path.basename(os.path.dirname(os.path.abspath(prog)))
    return name


def fmt_dur(s):
    if s is None:
        return "?"
    s = int(max(0, s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def now_iso():
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


# --------------------------------------------------------------------------- environment


def locust_version():
    """Locust's version. A distribution's package may report an empty or 0.0.0 version to Python, so the
    package manager that owns the module's file is asked first."""
    import importlib.util
    from importlib.metadata import version

    spec = importlib.util.find_spec("locust")
    try:
        owner = subprocess.run(["dpkg-query", "-S", spec.origin], capture_output=True, text=True, timeout=5)
        package = owner.stdout.split(":")[0].strip() if owner.returncode == 0 else ""
        if package:
            v = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True,
                               timeout=5).stdout.strip()
            if v:
                return v
    except (AttributeError, OSError, subprocess.SubprocessError):  # no such module, no dpkg
        pass
    try:
        return version("locust")
    except Exception:  # not installed for this interpreter
        return None


def environment_info(haproxy_bin="haproxy"):
    env = {"hostname": platform.node(), "kernel": platform.release(), "python": platform.python_version(),
           "cpu_count": os.cpu_count()}
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                env["cpu_model"] = line.split(":", 1)[1].strip()
                break
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                env["mem_total_mib"] = int(line.split()[1]) // 1024
    except OSError:
        pass
    env["locust"] = locust_version()
    try:
        out = subprocess.run([haproxy_bin, "-v"], capture_output=True, text=True, timeout=5).stdout
        env["haproxy"] = out.split("\n")[0].split(" - ")[0].replace("HAProxy version ", "")
    except (OSError, subprocess.SubprocessError):
        env["haproxy"] = None
    return env


def images_info(folder):
    files = sorted({f for e in ("jpg", "jpeg", "png", "JPG", "JPEG", "PNG")
                    for f in glob.glob(os.path.join(folder, "*." + e))})
    sizes = [os.path.getsize(f) for f in files]
    return {"dir": folder, "count": len(files), "mean_kib": round(sum(sizes) / len(sizes) / 1024, 1) if sizes else None}


def model_desc(model_dir):
    """'<name> (input WxH)' from the .cfg of a model folder."""
    if not model_dir or not os.path.isdir(model_dir):
        return model_dir or None
    cfgs = glob.glob(os.path.join(model_dir, "*.cfg"))
    if not cfgs:
        return model_dir
    w = h = None
    for line in open(cfgs[0]):
        k = line.split("=")[0].strip()
        if k == "width":
            w = line.split("=")[1].strip()
        elif k == "height":
            h = line.split("=")[1].strip()
        if w and h:
            break
    return f"{os.path.splitext(os.path.basename(cfgs[0]))[0]} (cfg input {w}x{h}; {os.path.abspath(model_dir)})"


# --------------------------------------------------------------------------- results store


class Store:
    """results.json = {"meta": {...}, "runs": [...]}, rewritten atomically after every phase."""

    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.path = os.path.join(out_dir, "results.json")
        self.data = {"meta": {}, "runs": []}
        if os.path.exists(self.path):
            with open(self.path) as fh:
                self.data = json.load(fh)

    def find(self, location, pods, rep):
        for r in self.data["runs"]:
            if r["location"] == location and int(r["pods"]) == pods and int(r["rep"]) == rep:
                return r
        return None

    def put(self, run):
        old = self.find(run["location"], run["pods"], run["rep"])
        if old is not None:
            self.data["runs"][self.data["runs"].index(old)] = run
        else:
            self.data["runs"].append(run)
        self.save()

    def save(self):
        report.write_atomic(self.path, json.dumps(self.data, indent=1, default=str))
        report.write_results_csv(os.path.join(self.out_dir, "results.csv"), self.data["runs"])


# --------------------------------------------------------------------------- Locust phases


class Stopped(Exception):
    pass


class Experiment:
    def __init__(self, a, target, store, sampler):
        self.a, self.target, self.store, self.sampler = a, target, store, sampler
        self.t_start = time.time()
        self.runs_total = len(a.pods) * a.repetitions
        self.run_durations = []
        self.runs_left = self.runs_total
        self.ctx = ""

    # -- progress
    def eta(self):
        if self.run_durations:
            return sum(self.run_durations) / len(self.run_durations) * self.runs_left
        return None

    def progress(self, phase, rows, t_phase):
        r = rows[-1] if rows else None
        w = analysis.window(rows, rows[-1]["t"] - 10, rows[-1]["t"]) if len(rows) > 1 else None
        host = self.sampler.samples[-1][1] if self.sampler.samples else None
        rem = self.eta()
        msg = (f"[{self.ctx} | {phase}] users {r['users'] if r else 0}"
               f" | {w['rps'] if w else 0:.1f} req/s | failures {r['total_failures'] if r else 0}"
               f" | avg(10s) {w['avg_ms'] if w and w['avg_ms'] is not None else 0:.0f} ms"
               f" | host CPU {'?' if host is None else f'{100 * host:.0f}%'}"
               f" | phase {fmt_dur(time.time() - t_phase)} | total {fmt_dur(time.time() - self.t_start)}"
               f" | remaining ~{fmt_dur(rem) if rem is not None else '? (after the first run)'}")
        print(msg, flush=True)

    # -- one Locust process
    def locust(self, raw_dir, name, shape, max_seconds, stop_on_failure, watch=None):
        """Runs Locust headless with the step shape; returns (history rows, summary, info).
        watch(rows) may return True to stop Locust early (SIGTERM: Locust writes its final stats)."""
        a = self.a
        os.makedirs(raw_dir, exist_ok=True)
        prefix = os.path.join(raw_dir, name)
        for f in glob.glob(prefix + "_*.csv"):
            os.remove(f)
        summary_path = prefix + "_summary.json"
        if os.path.exists(summary_path):
            os.remove(summary_path)
        cmd = a.locust_cmd + ["-f", a.locustfile, "--headless", "-H", self.target.url, "--csv", prefix,
                              "--only-summary", "--images", a.images,
                              "--shape-start-users", str(shape["start"]), "--shape-step-users", str(shape["step"]),
                              "--shape-step-seconds", str(shape["seconds"]),
                              "--shape-spawn-rate", str(shape["spawn_rate"]),
                              "--shape-max-users", str(shape["max_users"]),
                              "--shape-time-limit", str(int(max_seconds)),
                              "--summary-json", summary_path]
        if a.request_timeout:
            cmd += ["--request-timeout", str(a.request_timeout)]
        if a.api_key:
            cmd += ["--api-key", a.api_key]
        if stop_on_failure:
            cmd += ["--stop-on-failure"]
        env = dict(os.environ, LOCUST_SHAPE="step", LOCUST_CSV_FLUSH_SECONDS="1", CLOUDDETECT_SHARED=shared_dir())
        logf = open(prefix + "_locust.log", "wb")
        helpers = self.target.helper_pids()
        cpu0 = {k: targets.proc_cpu_seconds(p) for k, p in helpers.items()}
        snap0 = self.target.snapshot()
        self.target.reset_peaks()
        t0 = time.time()
        proc = subprocess.Popen(targets.pdeathsig_prefix() + cmd, stdout=logf, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        targets.boost_session(proc.pid, getattr(self.target, "session_nice", 0))
        hist = prefix + "_stats_history.csv"
        last_progress = 0.0
        stopped_by = None
        locust_cpu = 0.0
        samples = []  # (t, Locust CPU s, helpers' CPU s, pod snapshot): usage over any window afterwards
        try:
            while proc.poll() is None:
                time.sleep(1.0)
                locust_cpu = max(locust_cpu, targets.proc_cpu_seconds(proc.pid))
                samples.append((time.time(), locust_cpu,
                                {k: targets.proc_cpu_seconds(p) for k, p in helpers.items()}, self.target.snapshot()))
                rows = analysis.read_history(hist)
                if time.time() - last_progress >= a.progress_interval:
                    self.progress(name, rows, t0)
                    last_progress = time.time()
                if watch is not None and rows and watch(rows):
                    stopped_by = "stable"
                    proc.send_signal(signal.SIGTERM)
                    break
                if time.time() - t0 > max_seconds + 60:
                    stopped_by = "hard time limit"
                    log(f"locust ran {max_seconds + 60:.0f} s, over its limit: stopping it")
                    proc.send_signal(signal.SIGTERM)
                    break
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            logf.close()
        t1 = time.time()
        rows = analysis.read_history(hist)
        summary = None
        if os.path.exists(summary_path):
            with open(summary_path) as fh:
                summary = json.load(fh)
        failures = (analysis.read_failures(prefix + "_failures.csv")
                    or dict((summary or {}).get("failure_reasons") or {}))
        if not rows:
            tail = open(prefix + "_locust.log", "rb").read()[-3000:].decode(errors="replace")
            raise RuntimeError(f"Locust produced no statistics (exit {proc.returncode}); log tail:\n{tail}")
        info = {"command": " ".join(shlex.quote(c) for c in cmd), "exit_code": proc.returncode, "t0": t0, "t1": t1,
                "stopped_by": stopped_by, "locust_cpu_s": round(locust_cpu, 2), "csv_prefix": prefix,
                "failures": failures,
                "helpers_cpu_s": {k: round(targets.proc_cpu_seconds(p) - cpu0[k], 2) for k, p in helpers.items()},
                "snap0": snap0, "snap1": self.target.snapshot(), "samples": samples}
        return rows, summary, info

    def usage(self, info, w0=None, w1=None):
        """Locust, load-balancer and pod CPU (and pod memory/OOM) over [w0, w1], default the whole phase."""
        smp = info["samples"]
        a = [x for x in smp if w0 is not None and x[0] <= w0]
        b = [x for x in smp if w1 is not None and x[0] <= w1 + 1]
        s0 = a[-1] if a else None
        s1 = b[-1] if b and (s0 is None or b[-1][0] > s0[0]) else None
        if s0 is None or s1 is None:
            t0, t1, l0, l1 = info["t0"], info["t1"], 0.0, info["locust_cpu_s"]
            h0, h1, p0, p1 = {}, info["helpers_cpu_s"], info["snap0"], info["snap1"]
        else:
            (t0, l0, h0, p0), (t1, l1, h1, p1) = s0, s1
        dt = max(1e-9, t1 - t0)
        out = {"locust_cpu_cores": round((l1 - l0) / dt, 3)}
        if "lb" in h1:
            out["lb_cpu_cores"] = round((h1["lb"] - h0.get("lb", 0.0)) / dt, 3)
        limited = getattr(self.target, "limits", False)
        out.update(targets.pod_usage(p0, p1, dt, self.target.cpu if limited else None))
        return out

    # -- the procedure
    def ramp(self, raw_dir, pods):
        a = self.a
        step = a.ramp_step if a.ramp_step > 0 else pods * a.ramp_step_per_pod
        start = a.ramp_start if a.ramp_start > 0 else step
        spawn = a.ramp_spawn_rate if a.ramp_spawn_rate > 0 else float(step)  # a step spawns within 1 s
        n_steps = max(1, -(-(a.ramp_max_users - start) // step) + 1)
        natural = n_steps * a.ramp_step_seconds + a.ramp_step_seconds
        limit = min(natural, a.ramp_max_seconds)
        shape = {"start": start, "step": step, "seconds": a.ramp_step_seconds, "spawn_rate": spawn,
                 "max_users": a.ramp_max_users}
        log(f"{self.ctx}: ramp {start}, +{step} users every {a.ramp_step_seconds:g} s up to {a.ramp_max_users} "
            f"(at most {fmt_dur(limit)})")
        rows, summary, info = self.locust(raw_dir, "ramp", shape, limit, stop_on_failure=True)
        ff = (summary or {}).get("first_failure")
        if ff and ff.get("users") is not None:
            fail_users, reason = int(ff["users"]), ff.get("reason")
        else:
            hit = analysis.first_failure(rows)
            fail_users = hit[0] if hit else None
            reason = next(iter(info["failures"]), None) if hit else None
        highest = max(r["users"] for r in rows)
        max_users, censored = analysis.max_users_from_ramp(fail_users, highest)
        res = {"ramp_first_fail_users": fail_users, "ramp_fail_reason": reason, "ramp_max_users": max_users,
               "ramp_censored": censored, "ramp_highest_users": highest, "ramp_shape": shape,
               "ramp_curve": analysis.ramp_curve(rows), "ramp_command": info["command"],
               "ramp_seconds": round(info["t1"] - info["t0"], 1),
               "ramp_host_cpu": self.sampler.stats(info["t0"], info["t1"]),
               "ramp_failures": info["failures"]}
        res.update({"ramp_" + k: v for k, v in self.usage(info).items()})
        if censored:
            log(f"{self.ctx}: no failure up to {highest} users: max users >= {highest} (raise --ramp-max-users)")
        else:
            log(f"{self.ctx}: first failure at {fail_users} users ({reason}) -> max users {max_users}")
        return res

    def confirm(self, raw_dir, users):
        """Confirmation at `users` with spawn rate 1/s; steps down on any failure. Returns a dict."""
        a = self.a
        attempts = []
        u = users
        while u >= 1 and len(attempts) < a.confirm_max_attempts:
            self.target_ensure_before_phase()
            spawn_s = u / a.confirm_spawn_rate
            limit = spawn_s + a.settle_seconds + a.confirm_max_seconds
            shape = {"start": u, "step": 0, "seconds": 1, "spawn_rate": a.confirm_spawn_rate, "max_users": u}
            log(f"{self.ctx}: confirm at {u} users (spawn {a.confirm_spawn_rate:g}/s; stable within "
                f"{a.stable_tolerance:.0%} over {a.stable_windows}×{a.stable_window_seconds:g} s; "
                f"at most {fmt_dur(limit)})")

            def watch(rows, u=u):
                s = analysis.find_stable(rows, u, a.stable_window_seconds, a.stable_windows, a.stable_tolerance,
                                         a.settle_seconds)
                return s["stable"] and rows[-1]["total_failures"] == 0

            name = f"confirm{len(attempts) + 1}_u{u}"
            rows, summary, info = self.locust(raw_dir, name, shape, limit, stop_on_failure=True, watch=watch)
            st = analysis.find_stable(rows, u, a.stable_window_seconds, a.stable_windows, a.stable_tolerance,
                                      a.settle_seconds)
            failures = analysis.total_failures(rows, summary, info["failures"])
            att = {"users": u, "failures": failures, "stable": st["stable"], "stability": st.get("reason"),
                   "command": info["command"], "seconds": round(info["t1"] - info["t0"], 1),
                   "failure_reasons": info["failures"], "stopped_by": info["stopped_by"]}
            reached = any(r["users"] >= u for r in rows)
            if failures == 0 and reached:
                if "t0" in st:
                    w0, w1 = st["t0"], st["t1"]
                else:  # time limit without stability: the last complete windows, flagged unstable
                    wins = st.get("windows") or []
                    tail = wins[-a.stable_windows:]
                    w0, w1 = (tail[0]["t0"], tail[-1]["t1"]) if tail else (rows[0]["t"], rows[-1]["t"])
                w = analysis.window(rows, w0, w1)
                att.update({"measure_t0": w0, "measure_t1": w1, "avg_ms": w["avg_ms"], "rps": w["rps"],
                            "requests": w["requests"]})
                attempts.append(att)
                host = self.sampler.stats(w0, w1 + 1)
                res = {"max_users": u, "avg_response_ms": round(w["avg_ms"], 1) if w["avg_ms"] else None,
                       "rps": round(w["rps"], 2), "measure_seconds": w1 - w0, "measure_requests": w["requests"],
                       "median_ms": rows[-1].get("median_ms"),
                       "confirm_stable": bool(st["stable"]), "confirm_spread": round(st.get("spread", 0) or 0, 3),
                       "host_cpu_mean": host["mean"], "host_cpu_max": host["max"]}
                res.update(self.usage(info, w0, w1))
                res["confirm_attempts"] = attempts
                res["confirm_users_tried"] = [x["users"] for x in attempts]
                log(f"{self.ctx}: confirmed {u} users, 100% success, avg {res['avg_response_ms']} ms, "
                    f"{res['rps']} req/s ({'stable' if st['stable'] else 'NOT stable: ' + str(st.get('reason'))})")
                return res
            attempts.append(att)
            nxt = analysis.step_down(u, a.step_down_frac)
            why = f"{failures} failure(s): {', '.join(info['failures']) or '?'}" if failures else "users never reached"
            log(f"{self.ctx}: confirm at {u} users failed ({why}); stepping down to {nxt}")
            u = nxt
            time.sleep(a.cooldown_seconds)
        return {"max_users": 0 if u < 1 else None, "avg_response_ms": None, "rps": None, "confirm_stable": False,
                "confirm_attempts": attempts, "confirm_users_tried": [x["users"] for x in attempts],
                "confirm_error": "no user count passed the confirmation"}

    def target_ensure_before_phase(self):
        n = self.target.ensure(self.current_pods)
        self.restarts_this_run += n

    def warmup(self):
        """A few sequential requests through the load balancer so every pod has served once."""
        import uuid
        import urllib.request
        import base64

        files = sorted(glob.glob(os.path.join(self.a.images, "*.jp*g")))[:1]
        if not files or self.a.warmup_requests <= 0:
            return
        b64 = base64.b64encode(open(files[0], "rb").read()).decode()
        ok = 0
        for _ in range(self.a.warmup_requests * self.current_pods):
            body = json.dumps({"id": str(uuid.uuid4()), "image": b64}).encode()
            headers = {"Content-Type": "application/json"}
            if self.a.api_key:
                headers["Authorization"] = "Bearer " + self.a.api_key
            req = urllib.request.Request(self.target.url + self.a.endpoint, data=body, headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    ok += r.status == 200
            except OSError:
                pass
        log(f"{self.ctx}: warm-up {ok}/{self.a.warmup_requests * self.current_pods} requests ok")

    def host_flags(self, run, pods):
        a = self.a
        reasons = []
        ncpu = os.cpu_count() or 1
        over = False
        if self.target.kind == "local" and getattr(self.target, "limits", False):
            need = pods * self.target.cpu
            if need >= ncpu:  # equal: nothing left for Locust, HAProxy and the system
                over = True
                reasons.append(f"{pods} pods × {self.target.cpu:g} CPU = {need:g} CPU "
                               f"{'>' if need > ncpu else '='} {ncpu} host CPUs "
                               "(oversubscribed with Locust and HAProxy)")
        hc = run.get("host_cpu_mean")
        q = run.get("pod_cpu_of_quota_mean")
        if q is None and hc is not None and hc >= a.host_busy_threshold:
            # no pod figures (Kubernetes: this is the client's machine): a busy host may slow the client
            reasons.append(f"host CPU {100 * hc:.0f}% busy (≥ {100 * a.host_busy_threshold:.0f}%)")
        if q is not None and hc is not None and q < 0.8 and hc >= a.host_busy_threshold - 0.1:
            # a busy host alone is no verdict (other people's niced builds fill what the pods leave);
            # pods held below their quota by it are
            reasons.append(f"pods got only {100 * q:.0f}% of their CPU quota while the host was "
                           f"{100 * hc:.0f}% busy")
        lc = run.get("locust_cpu_cores")
        if lc is not None and lc >= 0.9:
            reasons.append(f"Locust used {lc:.2f} cores (a single Locust process is CPU-bound near 1 core)")
        run["oversubscribed"] = over
        run["host_bound"] = bool(reasons)
        run["host_bound_reason"] = "; ".join(reasons) or None

    def run_all(self):
        a = self.a
        for pods in a.pods:
            todo = [rep for rep in range(1, a.repetitions + 1)
                    if (self.store.find(a.location, pods, rep) or {}).get("status") != "done"]
            self.runs_left = sum(1 for p in a.pods for rep in range(1, a.repetitions + 1)
                                 if (self.store.find(a.location, p, rep) or {}).get("status") != "done")
            if not todo:
                log(f"{pods} pod(s): all {a.repetitions} run(s) already done (resume), skipping")
                continue
            self.current_pods = pods
            self.ctx = f"{a.location} | {pods} pod{'s' if pods != 1 else ''}"
            log(f"=== {pods} pod(s): scaling ===")
            self.target.scale(pods)
            for rep in todo:
                self.ctx = f"{a.location} | {pods} pod{'s' if pods != 1 else ''} | rep {rep}/{a.repetitions}"
                t_run = time.time()
                self.restarts_this_run = 0
                raw = os.path.join(a.out, "raw", a.location, f"pods{pods}", f"rep{rep}")
                run = self.store.find(a.location, pods, rep) or {}
                run.update({"location": a.location, "target": self.target.kind, "pods": pods, "rep": rep,
                            "service": a.service_name, "request_timeout": a.request_timeout,
                            "raw_dir": os.path.relpath(raw, a.out)})
                run.setdefault("started_at", now_iso())
                self.target_ensure_before_phase()
                self.warmup()
                if run.get("status") != "ramp_done":
                    run.update(self.ramp(raw, pods))
                    run["status"] = "ramp_done"
                    self.store.put(run)
                    time.sleep(a.cooldown_seconds)
                else:
                    log(f"{self.ctx}: ramp already done (resume): max users {run['ramp_max_users']}")
                start_users = run["ramp_max_users"]
                if start_users < 1:
                    res = {"max_users": 0, "avg_response_ms": None, "rps": None, "confirm_stable": None,
                           "confirm_attempts": [], "confirm_users_tried": []}
                else:
                    res = self.confirm(raw, start_users)
                run.update(res)
                self.restarts_this_run += self.target.ensure(pods)
                run["pod_restarts"] = self.restarts_this_run
                self.host_flags(run, pods)
                run["status"] = "done" if res.get("max_users") is not None else "failed"
                run["finished_at"] = now_iso()
                run["duration_s"] = round(time.time() - t_run, 1)
                self.store.put(run)
                self.run_durations.append(time.time() - t_run)
                self.runs_left -= 1
                report.build_report(a.out, self.store.data["runs"], [self.store.data["meta"]], a.pods)
                time.sleep(a.cooldown_seconds)


# --------------------------------------------------------------------------- CLI


def int_list(s):
    return [int(x) for x in s.replace(" ", "").split(",") if x]


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="measure (resumes from --out)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    r.add_argument("--target", choices=["local", "kubernetes"], required=True)
    r.add_argument("--location", default="master", help="client location label for the table (e.g. master, remote)")
    r.add_argument("--out", default="experiment-results", help="output folder (resumed if it exists)")
    r.add_argument("--pods", type=int_list, default=[1, 2, 4, 8], help="comma-separated pod counts")
    r.add_argument("--repetitions", "-R", type=int, default=3)
    g = r.add_argument_group("load")
    g.add_argument("--images", default=os.path.join(shared_dir(), "data", "coco128", "images"))
    g.add_argument("--endpoint", default="/api/object_detection")
    g.add_argument("--request-timeout", type=float, default=0.0, help="seconds; 0 = none (plain Locust)")
    g.add_argument("--api-key", default=os.environ.get("CLOUDDETECT_API_KEY", ""))
    g.add_argument("--locust-cmd", default="/usr/bin/python3 -m locust", help="how to start Locust")
    g.add_argument("--locustfile", default=LOCUSTFILE)
    g.add_argument("--warmup-requests", type=int, default=2, help="sequential requests per pod before a run")
    g = r.add_argument_group("ramp (find the first failure)")
    g.add_argument("--ramp-start", type=int, default=0, help="first step's users; 0 = the step size")
    g.add_argument("--ramp-step", type=int, default=0, help="users added per step; 0 = --ramp-step-per-pod × pods")
    g.add_argument("--ramp-step-per-pod", type=int, default=1,
                   help="with --ramp-step 0: users added per step per pod (the seed's procedure: 1)")
    g.add_argument("--ramp-step-seconds", type=float, default=10.0)
    g.add_argument("--ramp-spawn-rate", type=float, default=0.0,
                   help="users/s within a step; 0 = the step size (1 s per step)")
    g.add_argument("--ramp-max-users", type=int, default=400)
    g.add_argument("--ramp-max-seconds", type=float, default=900.0, help="time limit of one ramp")
    g = r.add_argument_group("confirmation (100%% success, stable response time)")
    g.add_argument("--confirm-spawn-rate", type=float, default=1.0)
    g.add_argument("--settle-seconds", type=float, default=5.0, help="ignored after all users run")
    g.add_argument("--stable-window-seconds", type=float, default=10.0)
    g.add_argument("--stable-windows", type=int, default=3, help="consecutive windows that must agree")
    g.add_argument("--stable-tolerance", type=float, default=0.10, help="(max-min)/mean of the windows' averages")
    g.add_argument("--confirm-max-seconds", type=float, default=180.0, help="time limit after spawning")
    g.add_argument("--confirm-max-attempts", type=int, default=6)
    g.add_argument("--step-down-frac", type=float, default=0.05, help="step down by max(1, this × users)")
    g.add_argument("--cooldown-seconds", type=float, default=5.0, help="pause between phases")
    g.add_argument("--host-busy-threshold", type=float, default=0.90, help="host CPU share that flags a run")
    g.add_argument("--progress-interval", type=float, default=5.0)
    g = r.add_argument_group("--target kubernetes")
    g.add_argument("--url", help="service URL reachable from this machine, e.g. http://NODE_IP:NODE_PORT")
    g.add_argument("--namespace", default="default")
    g.add_argument("--deployment", default="clouddetect")
    g.add_argument("--kubectl", default="kubectl")
    g.add_argument("--context", default="")
    g.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG", ""))
    g.add_argument("--scale-script", default=os.path.join(REPO_ROOT, "deploy", "cluster", "scale.sh"),
                   help="used when present and executable, else kubectl scale")
    g.add_argument("--ready-timeout", type=float, default=300.0)
    g = r.add_argument_group("--target local")
    g.add_argument("--model", default=os.path.join(shared_dir(), "models", "yolo-fastest-1.1"),
                   help="model folder, substituted for {model}; for kubernetes only described in the report")
    g.add_argument("--service-cmd", default=default_service_cmd(),
                   help="service command template with {port} (and {model}); $CLOUDDETECT_BIN overrides the binary")
    r.add_argument("--service-name", default="",
                   help="the service's row label in Table 1 (default: from --service-cmd, or the Deployment)")
    g.add_argument("--pod-cpu", type=float, default=0.5)
    g.add_argument("--pod-memory-mib", type=int, default=512)
    g.add_argument("--no-limits", action="store_true", help="run the replicas without cgroup limits")
    g.add_argument("--lb-mode", choices=["tcp", "http"], default="tcp",
                   help="tcp: balance per connection like a Service; http: per request")
    g.add_argument("--lb-port", type=int, default=0, help="0 = a free port")
    g.add_argument("--session-nice", type=int, default=-10,
                   help="CPU weight (autogroup nice) of the sessions of pods, HAProxy and Locust, so that on a "
                        "shared machine the pods' quota, not other sessions, limits them (Guaranteed QoS); 0 = off")
    g.add_argument("--haproxy", default="haproxy")
    p = sub.add_parser("report", help="rebuild table/plots/report from one or more result folders")
    p.add_argument("folders", nargs="+")
    p.add_argument("--out", help="output folder (default: the first folder)")
    p.add_argument("--pods", type=int_list, default=None)
    a = ap.parse_args(argv)
    if a.cmd == "run":
        a.locust_cmd = shlex.split(a.locust_cmd)
        if a.target == "kubernetes" and not a.url:
            ap.error("--target kubernetes needs --url")
        a.out = os.path.abspath(a.out)
        a.images = os.path.abspath(a.images)
        if not a.service_name:
            a.service_name = a.deployment if a.target == "kubernetes" else service_name_of(a.service_cmd)
    return a


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    check_prerequisites(argv)
    a = parse_args(argv)
    if a.cmd == "report":
        runs, metas = report.load_runs(a.folders)
        out = a.out or a.folders[0]
        print(report.build_report(out, runs, metas, a.pods))
        return 0

    os.makedirs(a.out, exist_ok=True)
    if not os.path.isdir(a.images) or not images_info(a.images)["count"]:
        sys.exit(f"no images in {a.images}")

    # SIGTERM/SIGHUP behave like Ctrl-C: unwind, clean up, keep what was measured
    def on_signal(sig, _frm):
        raise KeyboardInterrupt(f"signal {sig}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    if a.target == "local":
        for d in targets.stale_pods():
            log(f"warning: leftover pod cgroup {d} (an earlier run died?); remove with: rmdir {d} "
                f"after killing the processes in {d}/cgroup.procs")
        target = targets.LocalTarget(a.service_cmd, a.out, model=os.path.abspath(a.model) if a.model else "",
                                     cpu=a.pod_cpu, mem_bytes=a.pod_memory_mib << 20, lb_mode=a.lb_mode,
                                     lb_port=a.lb_port, limits=not a.no_limits, ready_timeout=a.ready_timeout,
                                     haproxy=a.haproxy, session_nice=a.session_nice)
    else:
        target = targets.KubernetesTarget(a.url, a.deployment, a.namespace, a.kubectl, a.context, a.kubeconfig,
                                          a.scale_script, a.ready_timeout)

    store = Store(a.out)
    procedure = {k: getattr(a, k) for k in ("ramp_start", "ramp_step", "ramp_step_seconds", "ramp_spawn_rate",
                                            "ramp_max_users", "ramp_max_seconds", "confirm_spawn_rate",
                                            "settle_seconds", "stable_windows", "stable_tolerance",
                                            "confirm_max_seconds", "confirm_max_attempts", "step_down_frac",
                                            "request_timeout", "repetitions")}
    procedure["stable_window_s"] = a.stable_window_seconds
    procedure["ramp_step"] = a.ramp_step or ("pods" if a.ramp_step_per_pod == 1 else f"{a.ramp_step_per_pod} × pods")
    procedure["ramp_start"] = a.ramp_start or "step"
    procedure["ramp_spawn_rate"] = a.ramp_spawn_rate or "step size per second"
    old = store.data.get("meta") or {}
    if old.get("procedure") and old["procedure"] != procedure:
        log("warning: resuming with different procedure settings than the recorded runs used")
    if old.get("location") and old["location"] != a.location:
        log(f"warning: this folder holds runs from location {old['location']!r}; use one --out per location "
            "and merge with the report subcommand")
    store.data["meta"] = {
        "location": a.location, "service": a.service_name, "pods": a.pods, "procedure": procedure,
        "environment": environment_info(a.haproxy), "images": images_info(a.images),
        "model_desc": model_desc(a.model) if a.target == "local" else None, "url": target.url,
        "command": " ".join(shlex.quote(x) for x in [sys.executable] + sys.argv),
        "started_at": old.get("started_at") or now_iso(), "resumed_at": now_iso() if old else None,
        "target": target.describe(),
    }
    store.save()

    sampler = targets.HostSampler().start()
    exp = Experiment(a, target, store, sampler)
    code = 0
    try:
        exp.run_all()
        store.data["meta"]["url"] = target.url
        store.data["meta"]["target"] = target.describe()
        if a.target == "kubernetes" and not store.data["meta"].get("model_desc"):
            store.data["meta"]["model_desc"] = store.data["meta"]["target"].get("model")
        store.save()
        table = report.build_report(a.out, store.data["runs"], [store.data["meta"]], a.pods)
        print("\n" + table)
        log(f"done in {fmt_dur(time.time() - exp.t_start)}: {a.out}/report.md")
    except KeyboardInterrupt as e:
        log(f"interrupted ({str(e) or 'Ctrl-C'}): results so far are in {a.out}; rerun the same command to resume")
        code = 130
    except Exception as e:
        log(f"error: {e}")
        code = 1
        raise
    finally:
        sampler.stop()
        store.data["meta"]["target"] = target.describe()
        store.data["meta"]["url"] = target.url
        store.save()
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the cleanup
        target.close()
        if store.data["runs"]:
            try:
                report.build_report(a.out, store.data["runs"], [store.data["meta"]], a.pods)
            except Exception as e:  # the raw results are saved; the report can be rebuilt later
                log(f"report not rebuilt: {e}")
    return code


if __name__ == "__main__":
    sys.exit(main())

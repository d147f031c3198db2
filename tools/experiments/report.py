"""Outputs of an experiment folder: results.csv, table.md, the PNG plots and report.md.

All of them are rebuilt from results.json (the runs) after every measured run, and by
`run_experiment.py report DIR...` from one or more result folders (e.g. master + remote).
"""

import csv
import json
import os

import analysis

CSV_FIELDS = [
    "location", "target", "pods", "rep", "status", "max_users", "avg_response_ms", "rps",
    "ramp_first_fail_users", "ramp_max_users", "ramp_censored", "ramp_fail_reason",
    "confirm_attempts", "confirm_users_tried", "confirm_stable", "confirm_spread", "measure_seconds",
    "measure_requests", "median_ms", "host_cpu_mean", "host_cpu_max", "locust_cpu_cores", "lb_cpu_cores",
    "pod_cpu_of_quota_mean", "pod_throttled_frac_mean", "pod_mem_peak_mib_max", "pod_oom_kills", "pod_restarts",
    "oversubscribed", "host_bound", "host_bound_reason", "started_at", "finished_at", "duration_s", "raw_dir",
    "service", "request_timeout",
]


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def write_results_csv(path, runs):
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    w.writeheader()
    for r in runs:
        row = dict(r)
        if isinstance(row.get("confirm_users_tried"), list):
            row["confirm_users_tried"] = " ".join(map(str, row["confirm_users_tried"]))
        w.writerow(row)
    write_atomic(path, buf.getvalue())


def load_runs(folders):
    """Runs and meta of results.json files (folders or files); later folders' runs are appended.
    Runs recorded before runs carried their service and request timeout get them from their meta."""
    runs, metas = [], []
    for f in folders:
        p = f if f.endswith(".json") else os.path.join(f, "results.json")
        with open(p) as fh:
            data = json.load(fh)
        meta = data.get("meta", {})
        for r in data.get("runs", []):
            r.setdefault("service", meta.get("service"))
            r.setdefault("request_timeout", meta.get("procedure", {}).get("request_timeout"))
        runs += data.get("runs", [])
        metas.append(meta)
    return runs, metas


# --------------------------------------------------------------------------- plots


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_users_vs_response(runs, path, pods_order):
    """Ramp curves: average response time at each user level, one line per pod count and row
    (client location, or service/timeout when several are compared)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 5))
    series = {}
    labels, _ = analysis.row_labels(runs)
    for r in runs:
        for pt in r.get("ramp_curve") or []:
            if pt.get("avg_ms") is None or pt.get("requests", 0) == 0:
                continue
            d = series.setdefault((labels[id(r)], int(r["pods"])), {})
            acc = d.setdefault(pt["users"], [0.0, 0])
            acc[0] += pt["avg_ms"] * pt["requests"]
            acc[1] += pt["requests"]
    cmap = plt.get_cmap("viridis")
    keys = sorted(series, key=lambda k: (k[0], pods_order.index(k[1]) if k[1] in pods_order else k[1]))
    locs = sorted({k[0] for k in keys})
    styles = ["-", "--", ":", "-."]
    pods_seen = sorted({k[1] for k in keys})
    for i, key in enumerate(keys):
        pts = sorted(series[key].items())
        xs = [u for u, _ in pts]
        ys = [s / n for _, (s, n) in pts]
        if len(locs) > 1:  # rows compared (services, timeouts): a colour per row, a line style per pod count
            color = plt.get_cmap("tab10")(locs.index(key[0]) % 10)
            style = styles[pods_seen.index(key[1]) % 4]
        else:
            ci = (pods_order.index(key[1]) if key[1] in pods_order else i) / max(1, len(pods_order) - 1 or 1)
            color, style = cmap(min(ci, 1.0) * 0.85), "-"
        ax.plot(xs, ys, style, marker="o", ms=3, color=color,
                label=f"{key[1]} pod{'s' if key[1] != 1 else ''} ({key[0]})")
    ax.set_xlabel("concurrent users (ramp)")
    ax.set_ylabel("average response time (ms)")
    ax.set_title("Users vs response time during the ramp, per pod count")
    ax.grid(alpha=0.3)
    if keys:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_metric_vs_pods(agg, metric, ylabel, title, path, ideal=False):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    locs = sorted({k[0] for k in agg})
    for loc in locs:
        pts = sorted((p, a[metric]) for (l, p), a in agg.items() if l == loc and a[metric])
        if not pts:
            continue
        xs = [p for p, _ in pts]
        ax.errorbar(xs, [s["mean"] for _, s in pts], yerr=[s["sd"] for _, s in pts], marker="o", capsize=4,
                    label=loc)
        if ideal and pts[0][0] == 1 or (ideal and pts):
            p0, s0 = pts[0]
            ax.plot(xs, [s0["mean"] * p / p0 for p in xs], ":", color="grey",
                    label=f"linear from {p0} pod{'s' if p0 != 1 else ''} ({loc})")
    ax.set_xlabel("pods")
    ax.set_xscale("log", base=2)
    allp = sorted({k[1] for k in agg})
    if allp:
        ax.set_xticks(allp)
        ax.set_xticklabels([str(p) for p in allp])
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    if locs:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------- report


def _fmt(v, nd=1):
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _pct(v):
    return "—" if v is None else f"{100 * v:.0f}%"


LOCAL_CAVEATS = """This is an **emulation** of a cluster on one machine, not a cluster:
- Each pod is a cgroup-v1 group with a CFS quota of 0.5 CPU per 100 ms period and a 512 MiB memory limit
  (no swap), the limits of the Deployment. Pods share the host's cores, caches and memory bandwidth.
- HAProxy on 127.0.0.1 stands in for the Service (round-robin; `tcp` mode balances per connection like
  kube-proxy, `http` mode per request). It runs outside the pods and uses host CPU, as kube-proxy would not.
- Locust runs on the same machine: the `master` client location of a real cluster, with no network between
  client and pods. Its CPU, HAProxy's and every pod's compete for the same cores.
- Each pod, HAProxy and Locust run in their own session; with kernel autogroups every session weighs the same
  whatever its nice value, so the runner gives these sessions a higher weight (`--session-nice`, the emulation of
  a Guaranteed pod's CPU shares) so that on a shared machine the quota, not the neighbours, limits a pod.
- N pods × 0.5 CPU reaching the host's CPU count, pods held below 80% of their quota while the host was busy, or
  Locust near one full core mean the **host**, not the pods' limits, is the bottleneck: such cells are marked †
  and their numbers say nothing about the cluster."""


def build_report(out_dir, runs, metas, pods_order=None):
    """Writes results.csv, table.md, plots and report.md into out_dir; returns the table text."""
    os.makedirs(out_dir, exist_ok=True)
    meta = metas[0] if metas else {}
    pods_order = pods_order or meta.get("pods") or sorted({int(r["pods"]) for r in runs})
    write_results_csv(os.path.join(out_dir, "results.csv"), runs)
    done = [r for r in runs if r.get("status") == "done"]
    agg = analysis.aggregate(runs)
    labels, header = analysis.row_labels(runs)
    rows = list(dict.fromkeys(labels[id(r)] for r in runs))  # in the order of the folders given
    locations = list(dict.fromkeys(m["location"] for m in metas if m.get("location")))
    services = list(dict.fromkeys(r.get("service") for r in runs if r.get("service")))
    table = analysis.build_table(agg, pods_order, rows, header)
    write_atomic(os.path.join(out_dir, "table.md"), table)

    plots = {
        "users_vs_response_time.png": "Users vs response time during the ramp (per pod count)",
        "max_users_vs_pods.png": "Max users with 100% success vs pods (mean ± sd; dotted: linear scaling)",
        "throughput_vs_pods.png": "Throughput at max users vs pods (mean ± sd)",
    }
    plot_users_vs_response(done or runs, os.path.join(out_dir, "users_vs_response_time.png"), pods_order)
    _plot_metric_vs_pods(agg, "max_users", "max users with 100% success", "Max users vs pods",
                         os.path.join(out_dir, "max_users_vs_pods.png"), ideal=True)
    _plot_metric_vs_pods(agg, "rps", "requests/s at max users", "Throughput vs pods",
                         os.path.join(out_dir, "throughput_vs_pods.png"))

    L = ["# CloudDetect scaling experiment", ""]
    targets = sorted({m.get("target", {}).get("target", "?") for m in metas})
    L.append(f"Target(s): {', '.join(targets)}; service(s): {', '.join(services) or '—'}; "
             f"client location(s): {', '.join(locations) or '—'}; "
             f"{len(done)} completed run(s) of {len(runs)} recorded.")
    if "local" in targets:
        L += ["", "> **Local emulation** — see *Caveats* below: these are not cluster measurements."]
    L += ["", "## Table 1", "", table, "## Plots", ""]
    for f, cap in plots.items():
        L.append(f"![{cap}]({f})  ")
        L.append(f"*{cap}*")
        L.append("")

    L += ["## Procedure", ""]
    p = meta.get("procedure", {})
    if p:
        L.append(f"For each pod count: scale and wait for exactly that many ready pods; ramp users "
                 f"(start: {p.get('ramp_start')}, step: +{p.get('ramp_step')} users every "
                 f"{p.get('ramp_step_seconds')} s, "
                 f"spawn rate (users/s): {p.get('ramp_spawn_rate')}, at most {p.get('ramp_max_users')} users or "
                 f"{p.get('ramp_max_seconds')} s) until the first failed request; max users = first failing "
                 f"count − 1; then run that many users, spawned at {p.get('confirm_spawn_rate')}/s, until the "
                 f"average response time of {p.get('stable_windows')} consecutive {p.get('stable_window_s')} s "
                 f"windows varies by at most {100 * (p.get('stable_tolerance') or 0):.0f}% (at most "
                 f"{p.get('confirm_max_seconds')} s after spawning); any failure steps the users down "
                 f"(by max(1, {100 * (p.get('step_down_frac') or 0):.0f}%)) and retries, at most "
                 f"{p.get('confirm_max_attempts')} attempts. The average response time and throughput are those "
                 f"of the stable windows. Request timeout: {p.get('request_timeout') or 'none'}. "
                 f"Repetitions: {p.get('repetitions')}.")
    timeouts = sorted({float(r.get("request_timeout") or 0) for r in runs})
    if len(timeouts) > 1:
        L.append("Request timeouts per row: " + ", ".join(analysis.timeout_label(t) for t in timeouts) + ".")
    L += ["", "## Runs", "",
          f"| {header} | pods | rep | ramp fail @ | max users | tries | avg ms | req/s | stable | host CPU | "
          "Locust CPU | pod CPU/quota | throttled | mem peak MiB | OOM | restarts | flags |",
          "|---|---:|---:|---:|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in sorted(runs, key=lambda r: (rows.index(labels[id(r)]), int(r["pods"]), int(r["rep"]))):
        flags = []
        if r.get("ramp_censored"):
            flags.append("ramp never failed")
        if r.get("host_bound"):
            flags.append("HOST-BOUND: " + (r.get("host_bound_reason") or ""))
        if r.get("status") != "done":
            flags.append(r.get("status", "?"))
        tried = r.get("confirm_users_tried") or []
        L.append(f"| {labels[id(r)]} | {r['pods']} | {r['rep']} | {_fmt(r.get('ramp_first_fail_users'))} | "
                 f"{_fmt(r.get('max_users'))} | {' → '.join(map(str, tried)) or '—'} | "
                 f"{_fmt(r.get('avg_response_ms'), 0)} | {_fmt(r.get('rps'), 1)} | {_fmt(r.get('confirm_stable'))} | "
                 f"{_pct(r.get('host_cpu_mean'))} | {_fmt(r.get('locust_cpu_cores'), 2)} | "
                 f"{_pct(r.get('pod_cpu_of_quota_mean'))} | {_pct(r.get('pod_throttled_frac_mean'))} | "
                 f"{_fmt(r.get('pod_mem_peak_mib_max'), 0)} | {_fmt(r.get('pod_oom_kills'))} | "
                 f"{_fmt(r.get('pod_restarts'))} | {'; '.join(flags)} |")
    L += ["", "Host/Locust CPU and pod figures are over the measurement window of the confirmation "
          "(host CPU: share of all host cores busy; Locust CPU: cores used by the load generator; pod CPU/quota: "
          "CPU used by a pod as a share of its 0.5-CPU quota, averaged over pods; throttled: share of CFS periods "
          "in which a pod hit its quota). Ramp failure reasons: "
          + "; ".join(sorted({str(r.get('ramp_fail_reason')) for r in runs if r.get('ramp_fail_reason')}) or ["—"])
          + "."]

    hb = [r for r in done if r.get("host_bound")]
    L += ["", "## Host-bound runs", ""]
    if hb:
        L.append(f"{len(hb)} of {len(done)} completed runs were limited by the host rather than by the pods; "
                 "their cells in Table 1 carry †:")
        for r in hb:
            L.append(f"- {labels[id(r)]}, {r['pods']} pod{'s' if int(r['pods']) != 1 else ''}, rep {r['rep']}: "
                     f"{r.get('host_bound_reason')}")
    else:
        L.append("None detected (host CPU below the threshold and pods not oversubscribed).")

    L += ["", "## Environment", ""]
    for m in metas:
        env = m.get("environment", {})
        tgt = m.get("target", {})
        L.append(f"### Service `{m.get('service') or tgt.get('service_cmd') or '?'}`, client location "
                 f"`{m.get('location', '?')}`, {analysis.timeout_label(m.get('procedure', {}).get('request_timeout'))}")
        L.append("")
        rows = [
            ("CPU", f"{env.get('cpu_model')} × {env.get('cpu_count')} logical CPUs"),
            ("Memory", f"{env.get('mem_total_mib')} MiB"), ("Kernel", env.get("kernel")),
            ("Host name", env.get("hostname")),
            ("Python / Locust / HAProxy", f"{env.get('python')} / {env.get('locust')} / {env.get('haproxy') or '—'}"),
            ("Target", ", ".join(f"{k}: {v}" for k, v in tgt.items() if v not in (None, "", {}))),
            ("Model", m.get("model_desc") or tgt.get("model")),
            ("Images", f"{m.get('images', {}).get('dir')} ({m.get('images', {}).get('count')} files, "
                       f"{m.get('images', {}).get('mean_kib')} KiB mean)"),
            ("Load URL", m.get("url")),
            ("Repetitions", m.get("procedure", {}).get("repetitions")),
            ("Command", f"`{m.get('command')}`"),
            ("Started", m.get("started_at")),
        ]
        L.append("| | |")
        L.append("|---|---|")
        for k, v in rows:
            L.append(f"| {k} | {v} |")
        L.append("")
    if "local" in targets:
        L += ["## Caveats of the local emulation", "", LOCAL_CAVEATS, ""]
    L += ["## Files", "",
          "- `results.json`: every run with its ramp curve, confirmation attempts, Locust commands and raw file paths; "
          "`results.csv`: the same, one row per run.",
          "- `table.md`: Table 1. `raw/<location>/pods<N>/rep<R>/`: Locust's CSV files, summaries and logs of "
          "each phase.",
          ""]
    write_atomic(os.path.join(out_dir, "report.md"), "\n".join(L))
    return table

"""Pure functions over recorded Locust statistics: no processes, no I/O beyond reading CSV files.

Everything the experiment decides (first failing user count, stable response time, the
averages and the table) is computed here from the `--csv` files Locust writes, so the decisions
can be unit-tested on recorded runs (tools/experiments/testdata/).
"""

import csv
import math
import re
import statistics

# --------------------------------------------------------------------------- Locust CSV


def _num(v, cast=float):
    try:
        return cast(v)
    except (TypeError, ValueError):
        try:
            return cast(float(v))
        except (TypeError, ValueError):
            return None


def read_history(path):
    """Rows of `<prefix>_stats_history.csv` for the Aggregated entry, as dicts:
    t (s, int), users, rps (Locust's current rps), total_requests, total_failures,
    avg_ms (running average of all requests so far), median_ms. Rows of a partially written
    last line are skipped."""
    rows = []
    try:
        fh = open(path, newline="")
    except FileNotFoundError:
        return rows
    with fh:
        for r in csv.DictReader(fh):
            if r.get("Name") != "Aggregated":
                continue
            t = _num(r.get("Timestamp"), int)
            n = _num(r.get("Total Request Count"), int)
            f = _num(r.get("Total Failure Count"), int)
            avg = _num(r.get("Total Average Response Time"))
            users = _num(r.get("User Count"), int)
            if None in (t, n, f, avg, users):
                continue
            rows.append({"t": t, "users": users, "rps": _num(r.get("Requests/s")) or 0.0,
                         "total_requests": n, "total_failures": f, "avg_ms": avg,
                         "median_ms": _num(r.get("Total Median Response Time"))})
    return rows


def read_failures(path):
    """`<prefix>_failures.csv` as {reason: occurrences}."""
    out = {}
    try:
        with open(path, newline="") as fh:
            for r in csv.DictReader(fh):
                reason = r.get("Error", "?")
                m = re.match(r"^CatchResponseError\((['\"])(.*)\1\)$", reason)
                reason = m.group(2) if m else reason
                out[reason] = out.get(reason, 0) + (_num(r.get("Occurrences"), int) or 0)
    except FileNotFoundError:
        pass
    return out


# --------------------------------------------------------------------------- windows


def _sum_ms(row):
    return row["avg_ms"] * row["total_requests"]


def window(rows, t0, t1):
    """Requests, failures, average response time and throughput of the requests that completed
    between the history rows nearest to t0 (at or before) and t1 (at or before), from the
    cumulative totals: avg = (sum1 - sum0) / (n1 - n0)."""
    a = [r for r in rows if r["t"] <= t0]
    b = [r for r in rows if r["t"] <= t1]
    if not b:
        return None
    r0 = a[-1] if a else {"t": rows[0]["t"], "total_requests": 0, "total_failures": 0, "avg_ms": 0.0}
    r1 = b[-1]
    n = r1["total_requests"] - r0["total_requests"]
    dt = r1["t"] - r0["t"]
    if n <= 0 or dt <= 0:
        return {"t0": r0["t"], "t1": r1["t"], "requests": max(n, 0), "failures": 0, "avg_ms": None, "rps": 0.0}
    return {"t0": r0["t"], "t1": r1["t"], "requests": n,
            "failures": r1["total_failures"] - r0["total_failures"],
            "avg_ms": (_sum_ms(r1) - _sum_ms(r0)) / n, "rps": n / dt}


def first_failure(rows):
    """(user count, timestamp) of the first history row whose total failure count rose, or None.
    The CSV has a 1 s resolution; the locustfile's --summary-json gives the exact user count and is
    preferred by the runner when present."""
    for r in rows:
        if r["total_failures"] > 0:
            return r["users"], r["t"]
    return None


def total_failures(rows, summary=None, failures_by_reason=None):
    """Failures of a finished Locust run. The history's last row can miss the failure that made
    Locust quit (--stop-on-failure), so the summary JSON and the failures CSV are counted too."""
    n = rows[-1]["total_failures"] if rows else 0
    if summary:
        n = max(n, int(summary.get("failures") or 0), 1 if summary.get("first_failure") else 0)
    if failures_by_reason:
        n = max(n, sum(failures_by_reason.values()))
    return n


def ramp_curve(rows):
    """Users vs response time along a step ramp: one entry per user level with the requests that
    completed while that many users ran (each 1 s interval counts for the user count at its end,
    so a step's spawning second counts for the new level)."""
    levels = {}
    for prev, cur in zip(rows, rows[1:]):
        if cur["users"] <= 0:
            continue
        n = cur["total_requests"] - prev["total_requests"]
        dt = cur["t"] - prev["t"]
        if dt <= 0:
            continue
        lv = levels.setdefault(cur["users"],
                               {"users": cur["users"], "seconds": 0, "requests": 0, "sum_ms": 0.0, "failures": 0})
        lv["seconds"] += dt
        lv["requests"] += max(n, 0)
        lv["sum_ms"] += _sum_ms(cur) - _sum_ms(prev)
        lv["failures"] += cur["total_failures"] - prev["total_failures"]
    out = []
    for u in sorted(levels):
        lv = levels[u]
        out.append({"users": u, "seconds": lv["seconds"], "requests": lv["requests"],
                    "failures": lv["failures"],
                    "avg_ms": round(lv["sum_ms"] / lv["requests"], 1) if lv["requests"] > 0 else None,
                    "rps": round(lv["requests"] / lv["seconds"], 2) if lv["seconds"] else 0.0})
    return out


def max_users_from_ramp(first_failing_users, ramp_max_users):
    """The procedure's rule: max users = first failing user count - 1. Without any failure up to the
    ramp's maximum the result is censored: at least ramp_max_users (returned with censored=True)."""
    if first_failing_users is None:
        return ramp_max_users, True
    return max(0, int(first_failing_users) - 1), False


def step_down(users, frac=0.05, minimum=1):
    """Next user count to try after a failed confirmation: at least `minimum` fewer, or frac of it."""
    return max(0, users - max(minimum, int(math.ceil(users * frac))))


def find_stable(rows, target_users, window_s=10, windows=3, tolerance=0.10, settle_s=5):
    """Looks for `windows` consecutive windows of `window_s` seconds, after all target users run
    (plus settle_s), whose average response times differ by at most `tolerance` of their mean
    (max-min <= tolerance * mean). Returns a dict with stable, t0, t1 and the per-window averages
    of the last `windows` complete windows (stable False if there are not enough, or they vary)."""
    full = [r for r in rows if r["users"] >= target_users]
    if not full:
        return {"stable": False, "reason": "target users not reached", "windows": []}
    start = full[0]["t"] + settle_s
    last_t = rows[-1]["t"]
    wins = []
    t = start
    while t + window_s <= last_t:
        w = window(rows, t, t + window_s)
        if w is not None and w["avg_ms"] is not None:
            wins.append(w)
        t += window_s
    tail = wins[-windows:]
    if len(tail) < windows:
        return {"stable": False, "reason": f"{len(wins)} of {windows} windows", "windows": wins}
    avgs = [w["avg_ms"] for w in tail]
    mean = sum(avgs) / len(avgs)
    spread = (max(avgs) - min(avgs)) / mean if mean > 0 else 0.0
    return {"stable": spread <= tolerance, "reason": f"spread {spread:.1%}", "spread": spread,
            "t0": tail[0]["t0"], "t1": tail[-1]["t1"], "windows": wins}


# --------------------------------------------------------------------------- aggregation


def mean_spread(values):
    """(mean, sample standard deviation, min, max, n) of the non-None values; spread 0 for n == 1."""
    v = [float(x) for x in values if x is not None]
    if not v:
        return None
    sd = statistics.stdev(v) if len(v) > 1 else 0.0
    return {"mean": sum(v) / len(v), "sd": sd, "min": min(v), "max": max(v), "n": len(v)}


def timeout_label(seconds):
    return f"timeout {float(seconds):g} s" if seconds else "no timeout"


def row_parts(run):
    """What tells the rows of Table 1 apart: the service, the client location and the request timeout."""
    return {"service": run.get("service") or "service", "client": run.get("location") or "?",
            "timeout": timeout_label(run.get("request_timeout"))}


def row_labels(runs):
    """{id(run): label}: the parts that vary between the runs (a table of one service and one timeout
    keeps the client location as its row, as before), joined with ", ". Also returns the header."""
    parts = [row_parts(r) for r in runs]
    vary = [k for k in ("service", "client", "timeout") if len({p[k] for p in parts}) > 1] or ["client"]
    labels = {id(r): ", ".join(p[k] for k in vary) for r, p in zip(runs, parts)}
    return labels, ", ".join(vary).capitalize()


def aggregate(runs):
    """Completed runs grouped by (row, pods) -- row: see row_labels -- with mean ± spread of max users,
    average response time and throughput, plus flags (censored ramp, unstable confirmation, host-bound)."""
    labels, _ = row_labels(runs)
    groups = {}
    for r in runs:
        if r.get("status") != "done":
            continue
        groups.setdefault((labels[id(r)], int(r["pods"])), []).append(r)
    out = {}
    for key, rs in groups.items():
        out[key] = {
            "location": key[0], "pods": key[1], "runs": len(rs),
            "max_users": mean_spread(r.get("max_users") for r in rs),
            "avg_response_ms": mean_spread(r.get("avg_response_ms") for r in rs),
            "rps": mean_spread(r.get("rps") for r in rs),
            "censored": any(r.get("ramp_censored") for r in rs),
            "unstable": any(r.get("confirm_stable") is False for r in rs),
            "host_bound": any(r.get("host_bound") for r in rs),
            "host_cpu_mean": mean_spread(r.get("host_cpu_mean") for r in rs),
        }
    return out


def fmt_ms(s, digits=0, prefix=""):
    if s is None:
        return "—"
    if s["n"] == 1:
        return f"{prefix}{s['mean']:.{digits}f}"
    return f"{prefix}{s['mean']:.{digits}f} ± {s['sd']:.{digits}f}"


def build_table(agg, pods_order=None, locations=None, header="Client"):
    """The assignment's Table 1 in Markdown: rows Max Users and Avg. Response Time (ms) per row of
    `aggregate` (client location, or service/timeout when several are compared), one column per pod
    count; cells are mean ± sample standard deviation over the runs.
    Marks: ≥ the ramp never failed (censored), * a confirmation never became stable, † host-bound."""
    pods = sorted({k[1] for k in agg} | set(pods_order or []))
    if pods_order:
        pods = [p for p in pods_order if p in pods] + [p for p in pods if p not in pods_order]
    locs = list(locations or [])
    for k in sorted(agg):
        if k[0] not in locs:
            locs.append(k[0])
    head = f"| {header} | Metric | " + " | ".join(f"{p} pod{'s' if p != 1 else ''}" for p in pods) + " |"
    sep = "|---|---|" + "---:|" * len(pods)
    lines = [head, sep]
    for loc in locs:
        cells_u, cells_t = [], []
        for p in pods:
            a = agg.get((loc, p))
            if a is None:
                cells_u.append("—")
                cells_t.append("—")
                continue
            marks = ("*" if a["unstable"] else "") + ("†" if a["host_bound"] else "")
            cells_u.append(fmt_ms(a["max_users"], 1 if a["runs"] > 1 else 0, "≥ " if a["censored"] else "") + marks)
            cells_t.append(fmt_ms(a["avg_response_ms"], 0) + marks)
        lines.append(f"| {loc} | Max Users | " + " | ".join(cells_u) + " |")
        lines.append(f"| {loc} | Avg. Response Time (ms) | " + " | ".join(cells_t) + " |")
    runs = sorted({a["runs"] for a in agg.values()})
    lines.append("")
    lines.append(f"Cells: mean ± sample standard deviation over {'/'.join(map(str, runs)) or 0} run(s) per cell. "
                 "≥: no failure up to the ramp's maximum (the true maximum is higher); "
                 "*: the response time never became stable within the time limit; "
                 "†: host-bound (the machine, not the pods, was the bottleneck; see report.md).")
    return "\n".join(lines) + "\n"


def scaling_monotonic(agg, location, tolerance=0.15):
    """True if, for `location`, more pods never give fewer max users beyond `tolerance` (relative)
    plus one user. Used by the end-to-end test as the 'numbers are sane' check."""
    pts = sorted((p, a["max_users"]["mean"]) for (loc, p), a in agg.items() if loc == location and a["max_users"])
    for (p0, u0), (p1, u1) in zip(pts, pts[1:]):
        if u1 < u0 * (1 - tolerance) - 1:
            return False
    return True

"""Unit tests of the max-users search, stability detection and table building on Locust statistics
recorded for real (testdata/README.md says how they were produced)."""

import json
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "loadtest"))

import analysis  # noqa: E402
import report  # noqa: E402

DATA = os.path.join(HERE, "testdata")


def data(name):
    return os.path.join(DATA, name)


def load_json(name):
    with open(data(name)) as fh:
        return json.load(fh)


# --------------------------------------------------------------------------- reading Locust CSV


def test_read_history_keeps_aggregated_rows_in_time_order():
    rows = analysis.read_history(data("ramp_stats_history.csv"))
    assert len(rows) > 20
    assert all(r["t"] <= s["t"] for r, s in zip(rows, rows[1:]))
    assert all(r["total_requests"] <= s["total_requests"] for r, s in zip(rows, rows[1:]))
    assert rows[-1]["users"] == 16


def test_read_history_of_missing_file_is_empty(tmp_path):
    assert analysis.read_history(str(tmp_path / "nope.csv")) == []


def test_read_history_skips_a_partially_written_last_line(tmp_path):
    text = open(data("ramp_stats_history.csv")).read()
    p = tmp_path / "h.csv"
    p.write_text(text + "1795947999,16,,Aggre")
    assert len(analysis.read_history(str(p))) == len(analysis.read_history(data("ramp_stats_history.csv")))


def test_read_failures_unwraps_catch_response_error():
    assert analysis.read_failures(data("confirm_failed_failures.csv")) == {"timeout (ReadTimeout)": 1}


# --------------------------------------------------------------------------- max-users search


def test_ramp_first_failure_from_the_summary_gives_max_users():
    summary = load_json("ramp_summary.json")
    ff = summary["first_failure"]
    assert ff["users"] == 17 and ff["reason"] == "timeout (ReadTimeout)"
    assert analysis.max_users_from_ramp(ff["users"], 60) == (16, False)


def test_stop_on_failure_history_can_miss_the_failure_so_totals_use_the_summary():
    # Locust quit at the first failure before writing another history row: the CSV alone shows none.
    rows = analysis.read_history(data("confirm_failed_stats_history.csv"))
    assert rows[-1]["total_failures"] == 0
    assert analysis.first_failure(rows) is None
    summary = load_json("confirm_failed_summary.json")
    assert analysis.total_failures(rows, summary, {}) == 1
    assert analysis.total_failures(rows, None, {"timeout (ReadTimeout)": 1}) == 1
    assert analysis.total_failures(rows, None, None) == 0


def test_first_failure_from_history_without_stop_on_failure():
    rows = analysis.read_history(data("ramp_nostop_stats_history.csv"))
    hit = analysis.first_failure(rows)
    assert hit is not None
    users, t = hit
    before = [r for r in rows if r["t"] < t]
    assert all(r["total_failures"] == 0 for r in before)
    assert users == next(r["users"] for r in rows if r["t"] == t)
    mu, censored = analysis.max_users_from_ramp(users, 100)
    assert mu == users - 1 and not censored


def test_ramp_without_failure_is_censored_at_its_highest_users():
    rows = analysis.read_history(data("confirm_stable_stats_history.csv"))
    assert analysis.first_failure(rows) is None
    assert analysis.max_users_from_ramp(None, max(r["users"] for r in rows)) == (12, True)


@pytest.mark.parametrize("users,expected", [(1, 0), (2, 1), (16, 15), (20, 19), (21, 19), (100, 95), (400, 380)])
def test_step_down(users, expected):
    assert analysis.step_down(users, 0.05) == expected


def test_ramp_curve_levels_and_throughput():
    curve = analysis.ramp_curve(analysis.read_history(data("ramp_stats_history.csv")))
    users = [c["users"] for c in curve]
    assert users == sorted(users) and users[0] >= 1 and users[-1] == 16
    for c in curve:
        assert c["requests"] >= 0 and c["seconds"] > 0
        assert c["avg_ms"] is None or 10 < c["avg_ms"] < 5000
    # one 0.5-CPU pod of the Flask peer serves ~10-20 req/s: the whole ramp must be in that range
    total_req = sum(c["requests"] for c in curve)
    total_s = sum(c["seconds"] for c in curve)
    assert 5 < total_req / total_s < 30
    # the response time grows with the users (queueing): last levels far slower than the first
    assert curve[-1]["avg_ms"] > 3 * curve[0]["avg_ms"]


def test_window_average_is_the_average_of_the_requests_inside_it():
    rows = analysis.read_history(data("confirm_stable_stats_history.csv"))
    whole = analysis.window(rows, rows[0]["t"], rows[-1]["t"])
    assert whole["requests"] == rows[-1]["total_requests"] - rows[0]["total_requests"]
    # split in two: the request-weighted mean of the halves equals the whole
    mid = rows[len(rows) // 2]["t"]
    a = analysis.window(rows, rows[0]["t"], mid)
    b = analysis.window(rows, mid, rows[-1]["t"])
    combined = (a["avg_ms"] * a["requests"] + b["avg_ms"] * b["requests"]) / (a["requests"] + b["requests"])
    assert combined == pytest.approx(whole["avg_ms"], rel=1e-9)


def test_find_stable_on_a_recorded_confirmation():
    rows = analysis.read_history(data("confirm_stable_stats_history.csv"))
    st = analysis.find_stable(rows, 12, window_s=5, windows=3, tolerance=0.20, settle_s=3)
    assert st["stable"] is True
    assert st["t1"] - st["t0"] == 15
    w = analysis.window(rows, st["t0"], st["t1"])
    assert w["failures"] == 0 and 300 < w["avg_ms"] < 1500 and 5 < w["rps"] < 30
    # the same data is not stable at a strict 5% tolerance, and not for a count it never reached
    assert analysis.find_stable(rows, 12, 5, 3, 0.05, 3)["stable"] is False
    assert analysis.find_stable(rows, 13, 5, 3, 0.20, 3)["stable"] is False


def test_find_stable_needs_enough_windows():
    rows = analysis.read_history(data("confirm_stable_stats_history.csv"))
    first_full = next(r["t"] for r in rows if r["users"] >= 12)
    early = [r for r in rows if r["t"] <= first_full + 12]
    st = analysis.find_stable(early, 12, 5, 3, 0.5, 3)
    assert st["stable"] is False and "windows" in st["reason"]


# --------------------------------------------------------------------------- aggregation and table


def test_mean_spread():
    s = analysis.mean_spread([13, 12])
    assert s["mean"] == 12.5 and s["sd"] == pytest.approx(0.7071, abs=1e-4) and s["n"] == 2
    assert analysis.mean_spread([5])["sd"] == 0.0
    assert analysis.mean_spread([None]) is None


def test_table_from_recorded_runs():
    runs = load_json("results.json")["runs"]
    agg = analysis.aggregate(runs)
    assert set(agg) == {("master", 1), ("master", 2)}
    assert agg[("master", 1)]["runs"] == 2
    table = analysis.build_table(agg, [1, 2, 4, 8], ["master"])
    lines = table.splitlines()
    # the requested pod counts are the columns; unmeasured ones stay empty
    assert lines[0] == "| Client | Metric | 1 pod | 2 pods | 4 pods | 8 pods |"
    assert lines[2].startswith("| master | Max Users | 12.5 ± 0.7")
    assert lines[2].endswith("| — | — |")
    assert lines[3].startswith("| master | Avg. Response Time (ms) | 833 ± 248")
    assert "†" in lines[2]  # these runs were host-bound (other jobs shared the 2-core machine)
    assert analysis.build_table(agg).splitlines()[0] == "| Client | Metric | 1 pod | 2 pods |"


def test_table_with_two_locations_and_missing_cells():
    base = {"status": "done", "avg_response_ms": 100.0, "rps": 10.0, "ramp_censored": False, "confirm_stable": True}
    runs = [dict(base, location="master", pods=1, rep=1, max_users=10),
            dict(base, location="master", pods=1, rep=2, max_users=12),
            dict(base, location="remote", pods=2, rep=1, max_users=20, ramp_censored=True),
            dict(base, location="remote", pods=4, rep=1, max_users=40, status="ramp_done")]
    agg = analysis.aggregate(runs)
    table = analysis.build_table(agg, [1, 2], ["master", "remote"])
    rows = table.splitlines()
    assert rows[0] == "| Client | Metric | 1 pod | 2 pods |"
    assert rows[2] == "| master | Max Users | 11.0 ± 1.4 | — |"
    assert rows[4] == "| remote | Max Users | — | ≥ 20 |"
    assert rows[5] == "| remote | Avg. Response Time (ms) | — | 100 |"


def test_table_with_two_services_and_two_timeouts_has_a_row_per_service_and_timeout():
    base = {"status": "done", "avg_response_ms": 100.0, "rps": 10.0, "ramp_censored": False, "confirm_stable": True,
            "location": "master", "rep": 1}
    runs = [dict(base, service="clouddetect", request_timeout=0, pods=1, max_users=200),
            dict(base, service="clouddetect", request_timeout=10, pods=1, max_users=150),
            dict(base, service="peer_flask_opencv", request_timeout=0.0, pods=1, max_users=60),
            dict(base, service="peer_flask_opencv", request_timeout=10.0, pods=2, max_users=40)]
    labels, header = analysis.row_labels(runs)
    assert header == "Service, timeout"
    assert [labels[id(r)] for r in runs] == ["clouddetect, no timeout", "clouddetect, timeout 10 s",
                                             "peer_flask_opencv, no timeout", "peer_flask_opencv, timeout 10 s"]
    rows = analysis.build_table(analysis.aggregate(runs), [1, 2], list(dict.fromkeys(labels.values())),
                                header).splitlines()
    assert rows[0] == "| Service, timeout | Metric | 1 pod | 2 pods |"
    assert rows[2] == "| clouddetect, no timeout | Max Users | 200 | — |"
    assert rows[8] == "| peer_flask_opencv, timeout 10 s | Max Users | — | 40 |"


def test_report_merges_folders_of_two_services(tmp_path):
    data_ = load_json("results.json")
    for name, timeout in (("clouddetect", 0), ("peer_flask_opencv", 10)):
        d = tmp_path / name
        d.mkdir()
        meta = dict(data_["meta"], service=name, procedure=dict(data_["meta"]["procedure"], request_timeout=timeout))
        (d / "results.json").write_text(json.dumps({"meta": meta, "runs": data_["runs"]}))
    runs, metas = report.load_runs([str(tmp_path / "clouddetect"), str(tmp_path / "peer_flask_opencv")])
    table = report.build_report(str(tmp_path / "both"), runs, metas, [1, 2])
    assert table.splitlines()[0] == "| Service, timeout | Metric | 1 pod | 2 pods |"
    assert [line.split(" | ")[0] for line in table.splitlines()[2:6]] == [
        "| clouddetect, no timeout", "| clouddetect, no timeout",
        "| peer_flask_opencv, timeout 10 s", "| peer_flask_opencv, timeout 10 s"]
    md = (tmp_path / "both" / "report.md").read_text()
    assert "Service `peer_flask_opencv`" in md and "peer_flask_opencv, timeout 10 s | 2 |" in md


def test_scaling_sanity_check():
    mk = lambda p, u: {"status": "done", "location": "x", "pods": p, "rep": 1, "max_users": u}  # noqa: E731
    assert analysis.scaling_monotonic(analysis.aggregate([mk(1, 10), mk(2, 19), mk(4, 30)]), "x")
    assert analysis.scaling_monotonic(analysis.aggregate([mk(1, 10), mk(2, 9)]), "x")  # within noise
    assert not analysis.scaling_monotonic(analysis.aggregate([mk(1, 10), mk(2, 5)]), "x")


def test_report_files_from_recorded_results(tmp_path):
    data_ = load_json("results.json")
    table = report.build_report(str(tmp_path), data_["runs"], [data_["meta"]], [1, 2])
    for f in ("results.csv", "table.md", "report.md", "users_vs_response_time.png", "max_users_vs_pods.png",
              "throughput_vs_pods.png"):
        assert (tmp_path / f).stat().st_size > 100, f
    assert (tmp_path / "table.md").read_text() == table
    csv_rows = (tmp_path / "results.csv").read_text().splitlines()
    assert csv_rows[0].startswith("location,target,pods,rep,status,max_users")
    assert len(csv_rows) == 1 + len(data_["runs"])
    md = (tmp_path / "report.md").read_text()
    assert "emulation" in md and "Host-bound runs" in md and "Xeon" in md


# --------------------------------------------------------------------------- the locustfile's pure parts


def test_locustfile_step_shape_and_response_check():
    import locustfile as lf

    assert [lf.step_users_at(t, 2, 2, 4, 8) for t in (0, 3.9, 4, 8, 12, 15.9, 16)] == [2, 2, 4, 6, 8, 8, None]
    assert lf.step_users_at(1e6, 5, 0, 1, 5) == 5  # step 0: constant load until the time limit
    rid = "1234"
    assert lf.check_response(200, b'{"id": "1234", "objects": []}', rid) is None
    assert lf.check_response(503, b'{"error": "busy"}', rid) == "HTTP 503"
    assert lf.check_response(200, b"<html>", rid) == "body is not JSON"
    assert lf.check_response(200, b'{"id": "x", "objects": []}', rid) == "id not echoed"
    assert lf.check_response(200, b'{"id": "1234"}', rid) == "no objects list"
    assert lf.check_response(200, b"[]", rid) == "body is not a JSON object"
    assert lf.check_response(0, None, rid, error=TimeoutError()).startswith("timeout")
    assert lf.check_response(0, None, rid, error=ConnectionRefusedError()).startswith("connection error")
    body = json.loads(lf.make_body("abc", b"QUJD"))
    assert body == {"id": "abc", "image": "QUJD"}

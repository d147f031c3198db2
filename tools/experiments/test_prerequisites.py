"""Every tool checks its prerequisites before any work and names the command that installs what is
missing (issue 14): run for real with a module made unimportable, not mocked."""

import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.dirname(HERE)
RUNNER = os.path.join(HERE, "run_experiment.py")
LOCUSTFILE = os.path.join(TOOLS, "loadtest", "locustfile.py")
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def hide_module(tmp_path, name):
    """A PYTHONPATH folder whose `name` package raises ImportError, as on a machine without it."""
    pkg = tmp_path / "hidden" / name
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(f'raise ImportError("{name} hidden by the test")\n')
    return dict(os.environ, PYTHONPATH=str(tmp_path / "hidden"))


def run(args, env=None, timeout=60):
    t0 = time.time()
    r = subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout, cwd=TOOLS)
    return r, time.time() - t0


def test_runner_without_matplotlib_stops_at_once_with_the_install_command(tmp_path):
    out = tmp_path / "out"
    r, seconds = run([PY, RUNNER, "run", "--target", "local", "--pods", "1", "--out", str(out)],
                     env=hide_module(tmp_path, "matplotlib"))
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "missing Python module matplotlib" in lines[0] and "scripts/deps.sh experiment" in lines[0], lines[0]
    assert not out.exists(), "it did work before stopping"
    assert r.stdout == ""
    # the stop is the check itself (an interpreter start and one failed import), not minutes of measuring;
    # the bound leaves room for a machine loaded by other jobs
    assert seconds < 5, seconds


def test_report_without_matplotlib_stops_before_reading_results(tmp_path):
    r, _ = run([PY, RUNNER, "report", str(tmp_path / "no-such-results")], env=hide_module(tmp_path, "matplotlib"))
    assert r.returncode == 2 and "matplotlib" in r.stderr and "deps.sh experiment" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_runner_names_a_missing_program_for_its_target(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))  # no haproxy on this PATH
    r, _ = run([PY, RUNNER, "run", "--target", "local", "--out", str(tmp_path / "out")], env=env)
    assert r.returncode == 2 and "missing program haproxy" in r.stderr and "deps.sh experiment" in r.stderr, r.stderr


def test_locustfile_without_locust_names_the_install_command():
    # -S: no site-packages, so this interpreter has no Locust, as a python3 without Debian's package
    r, _ = run([PY, "-S", LOCUSTFILE])
    assert r.returncode == 2, r.stdout + r.stderr
    assert "missing Python module locust" in r.stderr and "scripts/deps.sh experiment" in r.stderr, r.stderr

"""What CloudDetect's Python tools and tests share, each in one place.

- `REPO_ROOT`, `shared_dir()`: the models and data every tool and test reads come from $CLOUDDETECT_SHARED,
  else `../shared` beside the repository root (the rule of scripts/*.sh and of CMake's CLOUDDETECT_SHARED,
  which the C++ tests get as their default).
- `require()`: a tool checks its prerequisites before any work and stops with one line that names what is
  missing and the command that installs it (`scripts/deps.sh PURPOSE`, the one place that knows Debian's
  package names).
- `Service`: start a service, learn its port from `--port-file` (never from its log), wait for `/readyz`
  (or `/healthz` for services without it), talk to it, stop it. `ClouddetectService` is the one that
  starts `clouddetect serve`.

Import it with `sys.path.insert(0, <repo>/tools)`; it needs only the standard library.
"""

import http.client
import importlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOOPBACK = "127.0.0.1"


def shared_dir():
    """$CLOUDDETECT_SHARED, else ../shared beside the repository root, whatever the current directory."""
    return os.environ.get("CLOUDDETECT_SHARED") or os.path.normpath(os.path.join(REPO_ROOT, "..", "shared"))


def clouddetect_binary():
    """$CLOUDDETECT_BIN, else the build folder's binary (scripts/build.sh)."""
    return os.environ.get("CLOUDDETECT_BIN") or os.path.join(REPO_ROOT, "build", "clouddetect")


# --------------------------------------------------------------------------- prerequisites


def _python_module_missing(name, python=None, load=False):
    """None if `python` (default: this interpreter) has module `name`, else why not. `load` imports it
    (catches a module that is present but broken); otherwise only its presence is checked, which keeps
    e.g. Locust's gevent monkey-patching out of the caller."""
    if python and os.path.realpath(python) != os.path.realpath(sys.executable):
        code = f"import importlib, importlib.util; import sys; sys.exit(importlib.util.find_spec({name!r}) is None)"
        if load:
            code = f"import {name}"
        try:
            r = subprocess.run([python, "-c", code], capture_output=True, timeout=30)
        except (OSError, subprocess.SubprocessError) as e:
            return f"cannot run {python}: {e}"
        return None if r.returncode == 0 else f"Python module {name} for {python}"
    try:
        if load:
            importlib.import_module(name)
        elif importlib.util.find_spec(name) is None:
            return f"Python module {name} for {sys.executable}"
    except ImportError as e:
        return f"Python module {name} for {sys.executable} ({e})"
    return None


def missing_prerequisites(modules=(), load_modules=(), programs=(), files=(), python=None):
    """What of these is missing, as short descriptions: `modules` (presence), `load_modules` (imported),
    both for `python` (default: this interpreter); `programs` on PATH; `files` that must exist."""
    out = []
    out += [m for m in (_python_module_missing(n, python, load=True) for n in load_modules) if m]
    out += [m for m in (_python_module_missing(n, python) for n in modules) if m]
    out += [f"program {p}" for p in programs if not shutil.which(p)]
    out += [f"file {f}" for f in files if not os.path.exists(f)]
    return out


def require(tool, purpose, missing):
    """Stops the tool (exit 2) with one line naming what is `missing` (from missing_prerequisites) and
    the command that installs it, `scripts/deps.sh PURPOSE`, before it does any work."""
    if missing:
        deps = os.path.relpath(os.path.join(REPO_ROOT, "scripts", "deps.sh"))
        print(f"{tool}: missing {', '.join(missing)}; install with: {deps} {purpose}", file=sys.stderr)
        sys.exit(2)


# --------------------------------------------------------------------------- a running service


def http_status(url, timeout=2.0):
    """HTTP status of a GET, 0 if nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (OSError, ValueError, http.client.HTTPException):
        return 0


def _tail(path, n=3000):
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - n))
            return fh.read().decode(errors="replace")
    except OSError:
        return ""


def read_port_file(proc, port_file, deadline, log_path=""):
    """The port the service wrote to `port_file` (atomically, once listening)."""
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"service exited with {proc.returncode} before listening:\n{_tail(log_path)}")
        try:
            with open(port_file) as fh:
                text = fh.read().strip()
            if text:
                return int(text)
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"service wrote no port to {port_file} in time:\n{_tail(log_path)}")


def wait_ready(proc, base_url, deadline, log_path="", ready_path="/readyz", fallback_path="/healthz"):
    """Waits until GET base_url+ready_path answers 200 (or, for services without it -- 404 --, the
    fallback path). Returns the path that answered; raises with the log's tail if the service exits
    or the deadline passes."""
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"service exited with {proc.returncode}:\n{_tail(log_path)}")
        status = http_status(base_url + ready_path)
        if status == 200:
            return ready_path
        if status == 404 and fallback_path and http_status(base_url + fallback_path) == 200:
            return fallback_path
        time.sleep(0.05)
    raise RuntimeError(f"service not ready at {base_url}{ready_path} in time:\n{_tail(log_path)}")


class Service:
    """A service process on loopback, started and ready when the constructor returns.

    `argv` is the command; the port is either given (`port`, for services that take one) or read from
    `port_file` (e.g. `clouddetect serve --port 0 --port-file PATH`). Output goes to `log_path` (default: a
    temporary file). `popen` passes extra subprocess.Popen arguments (preexec_fn, start_new_session...)."""

    def __init__(self, argv, port=None, port_file=None, env=None, log_path=None, ready_timeout=60.0,
                 ready_path="/readyz", **popen):
        if (port is None) == (port_file is None):
            raise ValueError("give exactly one of port and port_file")
        self.argv = list(argv)
        if log_path is None:
            fd, log_path = tempfile.mkstemp(prefix="clouddetect-service-", suffix=".log")
            os.close(fd)
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(self.argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env={**os.environ, **(env or {})}, **popen)
        try:
            deadline = time.time() + ready_timeout
            self.port = port if port is not None else read_port_file(self.proc, port_file, deadline, log_path)
            self.ready_path = wait_ready(self.proc, self.base_url, deadline, log_path, ready_path)
        except BaseException:
            self.kill()
            raise

    @property
    def base_url(self):
        return f"http://{LOOPBACK}:{self.port}"

    def status(self, path, timeout=10.0):
        """Status of a GET, 0 if nothing answered."""
        return http_status(self.base_url + path, timeout)

    def request(self, method, path, body=None, headers=None, timeout=60.0):
        """(status, body bytes, headers dict) of one request on a fresh connection."""
        conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, data, dict(resp.getheaders())
        finally:
            conn.close()

    def get(self, path):
        return self.request("GET", path)

    def logs(self):
        with open(self.log_path, errors="replace") as fh:
            return fh.read()

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        """Sends `sig` and returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


class ClouddetectService(Service):
    """`clouddetect serve --model MODEL --host 127.0.0.1 --port 0 --port-file ... SERVE_ARGS`, ready.
    `binary` defaults to clouddetect_binary(); `prefix` runs it under a wrapper (e.g. `pod.sh NAME --`);
    `options` go to Service."""

    def __init__(self, *serve_args, model, binary=None, prefix=(), **options):
        folder = tempfile.mkdtemp(prefix="clouddetect-port-")
        port_file = os.path.join(folder, "port")
        argv = [*prefix, binary or clouddetect_binary(), "serve", "--model", model, "--host", LOOPBACK, "--port", "0",
                "--port-file", port_file, *serve_args]
        try:
            super().__init__(argv, port_file=port_file, **options)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

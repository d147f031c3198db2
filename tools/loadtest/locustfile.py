"""Locust load test for the CloudDetect object-detection API.

Run (Debian's Locust; the python3 first on PATH may lack it):

    /usr/bin/python3 -m locust -f tools/loadtest/locustfile.py -H http://127.0.0.1:8080            # web UI
    /usr/bin/python3 -m locust -f tools/loadtest/locustfile.py -H http://127.0.0.1:8080 \\
        --headless --csv out/run --shape-start-users 1 --shape-step-users 2 --shape-step-seconds 10 --shape-max-users 40

Every request POSTs {"id": <fresh uuid4>, "image": <base64>} for the next image of the folder (all
users share one cycle through the images; each image is read and base64-encoded once at start).
A response is a success only if it is HTTP 200, the body parses as JSON, it echoes the id and
has an "objects" list; anything else is a failure whose message names the reason (Locust groups
failures by message, so messages contain no per-request values).

Options (command line, the Locust config file, or the environment variable in brackets):
  --images DIR             [LOCUST_IMAGES]  folder of *.jpg/*.jpeg/*.png; default
                           $CLOUDDETECT_SHARED/data/coco128/images (CLOUDDETECT_SHARED defaults to
                           ../shared relative to the repository root)
  --endpoint PATH          [LOCUST_ENDPOINT] default /api/object_detection
  --request-timeout S      [LOCUST_REQUEST_TIMEOUT] seconds; 0 = none (default, like plain Locust).
                           Announced to the service as X-Request-Timeout (CloudDetect then refuses at
                           once what it could not answer in time; docs/CONTRACT.md)
  --api-key KEY            [LOCUST_API_KEY] sent as "Authorization: Bearer KEY" when set
  --shape-start-users N    [LOCUST_SHAPE_START_USERS]      users of the first step (default 1)
  --shape-step-users N     [LOCUST_SHAPE_STEP_USERS]      users added per step (default 1; 0 = constant load)
  --shape-step-seconds S   [LOCUST_SHAPE_STEP_SECONDS]   seconds per step (default 10)
  --shape-spawn-rate R     [LOCUST_SHAPE_SPAWN_RATE] users started per second (default 1)
  --shape-max-users N      [LOCUST_SHAPE_MAX_USERS]  last step (default 100); it is held one step
                           duration, then the test stops (unless --shape-step-users is 0)
  --shape-time-limit S     [LOCUST_SHAPE_TIME_LIMIT] stop the shape after S seconds (0 = no limit)
  --stop-on-failure        [LOCUST_STOP_ON_FAILURE=1] quit at the first failed request
  --summary-json PATH      [LOCUST_SUMMARY_JSON] at exit, write the first failure (time, user count,
                           reason), totals and the shape parameters as JSON

The step shape is active unless the environment variable LOCUST_SHAPE=none is set (Locust picks
shape classes at import, before options are parsed); with LOCUST_SHAPE=none the usual -u/-r/-t apply.
LOCUST_CSV_FLUSH_SECONDS (default 1) makes --csv files flush that often (Locust's default is 10 s)
so that tools can follow a headless run while it runs.
"""

import base64
import glob
import itertools
import json
import logging
import os
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import devkit  # noqa: E402

# Before any work: an interpreter without Locust (e.g. `python3 locustfile.py`, or a python3 other than
# Debian's) gets one line with the install command instead of a traceback.
devkit.require("locustfile.py", "experiment", devkit.missing_prerequisites(modules=["locust", "gevent"]))

import locust.stats  # noqa: E402
from locust import HttpUser, LoadTestShape, events, task  # noqa: E402

IMAGE_EXTENSIONS = ("*.jpg", "*.jpeg", "*.png", "*.JPG", "*.JPEG", "*.PNG")

locust.stats.CSV_STATS_FLUSH_INTERVAL_SEC = float(os.environ.get("LOCUST_CSV_FLUSH_SECONDS", "1"))


def default_images_dir():
    return os.path.join(devkit.shared_dir(), "data", "coco128", "images")


def list_images(folder):
    files = sorted({f for pattern in IMAGE_EXTENSIONS for f in glob.glob(os.path.join(folder, pattern))})
    if not files:
        raise SystemExit(f"locustfile: no *.jpg/*.jpeg/*.png images in {folder!r}")
    return files


def encode_images(folder):
    """Base64 of every image, read once. Returns a list of bytes (ASCII base64, no JSON quoting needed)."""
    return [base64.b64encode(open(f, "rb").read()) for f in list_images(folder)]


def make_body(request_id, image_b64):
    # base64 and uuid4 strings need no JSON escaping: build the body by concatenation, not json.dumps.
    return b'{"id": "' + request_id.encode() + b'", "image": "' + image_b64 + b'"}'


def check_response(status_code, body, request_id, error=None):
    """Returns None for a success, else the failure reason (a message without per-request values)."""
    if error is not None:
        name = type(error).__name__
        if "Timeout" in name:
            return f"timeout ({name})"
        return f"connection error ({name})"
    if status_code != 200:
        return f"HTTP {status_code}"
    try:
        js = json.loads(body)
    except ValueError:
        return "body is not JSON"
    if not isinstance(js, dict):
        return "body is not a JSON object"
    if js.get("id") != request_id:
        return "id not echoed"
    if not isinstance(js.get("objects"), list):
        return "no objects list"
    return None


# --------------------------------------------------------------------------- options


@events.init_command_line_parser.add_listener
def add_arguments(parser):
    g = parser  # (argument groups would drop Locust's include_in_web_ui keyword)
    g.add_argument("--images", env_var="LOCUST_IMAGES", default=default_images_dir(), help="image folder")
    g.add_argument("--endpoint", env_var="LOCUST_ENDPOINT", default="/api/object_detection")
    g.add_argument("--request-timeout", env_var="LOCUST_REQUEST_TIMEOUT", type=float, default=0.0,
                   help="seconds per request, 0 = no timeout")
    g.add_argument("--api-key", env_var="LOCUST_API_KEY", default="", help="Bearer token, if the service wants one")
    g.add_argument("--shape-start-users", env_var="LOCUST_SHAPE_START_USERS", type=int, default=1)
    g.add_argument("--shape-step-users", env_var="LOCUST_SHAPE_STEP_USERS", type=int, default=1)
    g.add_argument("--shape-step-seconds", env_var="LOCUST_SHAPE_STEP_SECONDS", type=float, default=10.0)
    g.add_argument("--shape-spawn-rate", env_var="LOCUST_SHAPE_SPAWN_RATE", type=float, default=1.0)
    g.add_argument("--shape-max-users", env_var="LOCUST_SHAPE_MAX_USERS", type=int, default=100)
    g.add_argument("--shape-time-limit", env_var="LOCUST_SHAPE_TIME_LIMIT", type=float, default=0.0)
    g.add_argument("--stop-on-failure", env_var="LOCUST_STOP_ON_FAILURE", action="store_true", default=False)
    g.add_argument("--summary-json", env_var="LOCUST_SUMMARY_JSON", default="", include_in_web_ui=False)


# --------------------------------------------------------------------------- shared state

STATE = {
    "images": [],  # base64 bytes
    "images_dir": None,
    "counter": itertools.count(),
    "first_failure": None,  # {"t", "elapsed_s", "users", "target_users", "reason"}
    "t_start": None,
    "env": None,
}


def _load_images(options):
    folder = options.images or default_images_dir()
    if folder != STATE["images_dir"]:
        t = time.time()
        STATE["images"] = encode_images(folder)
        STATE["images_dir"] = folder
        logging.info("locustfile: encoded %d images from %s in %.2f s", len(STATE["images"]), folder, time.time() - t)


@events.init.add_listener
def on_init(environment, **_kw):
    STATE["env"] = environment
    # Locust 2.12 installs its graceful SIGTERM handler only after a headless shape run has ended, so
    # a SIGTERM during the run would kill it without final statistics: quit the runner instead
    # (Locust then shuts down normally and writes its CSV files and our summary).
    import gevent
    import signal

    def on_sigterm():
        logging.info("locustfile: SIGTERM, stopping the test")
        if environment.runner is not None:
            gevent.spawn(environment.runner.quit)

    gevent.signal_handler(signal.SIGTERM, on_sigterm)
    if environment.parsed_options is not None:
        _load_images(environment.parsed_options)


@events.test_start.add_listener
def on_test_start(environment, **_kw):
    STATE["t_start"] = time.time()
    if environment.parsed_options is not None:
        _load_images(environment.parsed_options)  # the web UI may have changed --images


def _reason(error):
    """'timeout (ReadTimeout)' rather than "CatchResponseError('timeout (ReadTimeout)')"."""
    args = getattr(error, "args", None)
    if args and isinstance(args[0], str) and type(error).__name__ == "CatchResponseError":
        return args[0]
    return str(error) if isinstance(error, str) else f"{type(error).__name__}: {error}"


@events.request.add_listener
def on_request(exception, **_kw):
    if exception is None or STATE["first_failure"] is not None:
        return
    env = STATE["env"]
    runner = env.runner if env is not None else None
    now = time.time()
    STATE["first_failure"] = {
        "t": now,
        "elapsed_s": round(now - (STATE["t_start"] or now), 3),
        "users": runner.user_count if runner is not None else None,
        "target_users": getattr(runner, "target_user_count", None) if runner is not None else None,
        "reason": _reason(exception),
    }
    opts = env.parsed_options if env is not None else None
    if opts is not None and opts.stop_on_failure and runner is not None:
        logging.warning("locustfile: first failure at %s users (%s); stopping", runner.user_count, exception)
        import gevent

        gevent.spawn(runner.quit)  # not from this greenlet: quit() kills the users, this one included


@events.quitting.add_listener
def on_quitting(environment, **_kw):
    opts = environment.parsed_options
    if opts is None or not opts.summary_json:
        return
    total = environment.stats.total
    shape = environment.shape_class
    summary = {
        "first_failure": STATE["first_failure"],
        "t_start": STATE["t_start"],
        "t_end": time.time(),
        "requests": total.num_requests,
        "failures": total.num_failures,
        "avg_response_ms": total.avg_response_time,
        "images": len(STATE["images"]),
        "images_dir": STATE["images_dir"],
        "request_timeout": opts.request_timeout,
        "shape": shape.describe() if isinstance(shape, StepLoadShape) else None,
        "failure_reasons": {_reason(e.error): e.occurrences for e in environment.stats.errors.values()},
    }
    tmp = opts.summary_json + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(summary, fh, indent=1, default=str)
    os.replace(tmp, opts.summary_json)


# --------------------------------------------------------------------------- user


class DetectionUser(HttpUser):
    """Sends the images one after another, as fast as the service answers (no think time)."""

    host = os.environ.get("LOCUST_HOST", "http://127.0.0.1:8080")

    def on_start(self):
        opts = self.environment.parsed_options
        self.endpoint = getattr(opts, "endpoint", None) or "/api/object_detection"
        timeout = getattr(opts, "request_timeout", 0.0) or 0.0
        self.timeout = timeout if timeout > 0 else None
        self.headers = {"Content-Type": "application/json"}
        if self.timeout:  # announced, so a service that reads it refuses at once what it cannot answer in time
            self.headers["X-Request-Timeout"] = "%g" % self.timeout
        if getattr(opts, "api_key", ""):
            self.headers["Authorization"] = "Bearer " + opts.api_key
        if not STATE["images"] and opts is not None:
            _load_images(opts)

    @task
    def detect(self):
        images = STATE["images"]
        image = images[next(STATE["counter"]) % len(images)]
        request_id = str(uuid.uuid4())
        with self.client.post(self.endpoint, data=make_body(request_id, image), headers=self.headers,
                              name="detect", timeout=self.timeout, catch_response=True) as resp:
            reason = check_response(resp.status_code, resp.content, request_id, getattr(resp, "error", None))
            if reason is None:
                resp.success()
            else:
                resp.failure(reason)


# --------------------------------------------------------------------------- load shape


def step_users_at(t, start, step, duration, max_users):
    """Target users at t seconds into a step shape, or None once the shape is over.

    Steps: start, start+step, ... up to max_users, each held `duration` seconds; the step that
    reaches max_users is held one duration, then the shape ends. step == 0 is a constant load that
    never ends by itself (use a time limit)."""
    k = int(t // duration)
    if step <= 0:
        return start
    users = start + k * step
    if users >= max_users:
        last_k = -(-(max_users - start) // step)  # index of the first step at/over max_users
        if k > last_k:
            return None
        return max_users
    return users


if os.environ.get("LOCUST_SHAPE", "step").lower() != "none":

    class StepLoadShape(LoadTestShape):
        """Raises the users step by step; all parameters come from the --shape-* options."""

        def _opts(self):
            return self.runner.environment.parsed_options

        def describe(self):
            o = self._opts()
            return {"start": o.shape_start_users, "step": o.shape_step_users, "duration_s": o.shape_step_seconds,
                    "spawn_rate": o.shape_spawn_rate, "max_users": o.shape_max_users,
                    "time_limit_s": o.shape_time_limit}

        def tick(self):
            o = self._opts()
            t = self.get_run_time()
            if o.shape_time_limit and t >= o.shape_time_limit:
                return None
            users = step_users_at(t, o.shape_start_users, o.shape_step_users, o.shape_step_seconds, o.shape_max_users)
            if users is None:
                return None
            return users, o.shape_spawn_rate

else:

    class StepLoadShape:  # placeholder so isinstance() above works; not a LoadTestShape
        pass

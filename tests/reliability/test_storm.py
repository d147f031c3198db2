"""Connection storm: 2,000+ concurrent keep-alive connections (each has made one request and stays
idle) are held while detection requests are still served; then every one of them still works.
The server is started with a soft fd limit of 1024 (a common default) to prove it raises its own
limit; connections beyond --max-connections get an immediate 503."""
import json
import os
import resource
import socket
import time

import pytest

from conftest import HOST, Server, assert_still_serving, http_request, parse_responses, raise_nofile, write_result

STORM = int(os.environ.get("RELIABILITY_STORM_CONNECTIONS", "2500"))


def _read_response(s):
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk
        r = parse_responses(data)
        if r:
            return data


def test_connection_storm_held_while_serving():
    have = raise_nofile(STORM + 500)
    if have < STORM + 100:
        pytest.skip("RLIMIT_NOFILE hard limit %d is too low for %d connections" % (have, STORM))
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < STORM + 100:
        pytest.skip("the server's hard fd limit would be %d" % hard)
    server = Server("--keepalive-timeout", "120", "--header-timeout", "30", nofile=1024)
    socks = []
    t0 = time.monotonic()
    try:
        req = http_request("GET", "/healthz")
        # Open in waves: connect + one request each, then leave it idle.
        for i in range(STORM):
            s = socket.create_connection((HOST, server.port), timeout=30)
            s.sendall(req)
            socks.append(s)
            if len(socks) % 250 == 0:
                for x in socks[-250:]:
                    assert parse_responses(_read_response(x))[0][0] == 200
        for x in socks[len(socks) - len(socks) % 250:]:
            assert parse_responses(_read_response(x))[0][0] == 200
        open_s = time.monotonic() - t0
        gauge = server.metric("clouddetect_connections")
        # Detection still served while all of them are held.
        lat = []
        for i in range(20):
            t = time.monotonic()
            assert_still_serving(server, id="storm-%d" % i)
            lat.append((time.monotonic() - t) * 1000)
        # Every held connection is still alive and usable.
        for s in socks:
            s.sendall(req)
        alive = 0
        for s in socks:
            r = parse_responses(_read_response(s))
            alive += bool(r) and r[0][0] == 200
        rss_mib = server.rss_kib() / 1024
        record = {"connections": STORM, "server_soft_nofile_at_start": 1024, "connections_gauge": gauge,
                  "alive_after": alive, "open_seconds": round(open_s, 2), "detect_ms_max": round(max(lat), 1),
                  "detect_ms_median": round(sorted(lat)[len(lat) // 2], 1), "server_rss_mib": round(rss_mib, 1)}
        write_result("connection_storm", record)
        assert gauge >= STORM
        assert alive == STORM
        assert "raised the open files limit" in server.logs()
    finally:
        for s in socks:
            s.close()
        code = server.stop()
    assert code == 0


def test_connections_over_the_limit_get_503_at_once():
    server = Server("--max-connections", "50")
    socks = []
    try:
        for _ in range(50):
            s = socket.create_connection((HOST, server.port), timeout=10)
            s.sendall(http_request("GET", "/healthz"))
            assert parse_responses(_read_response(s))[0][0] == 200
            socks.append(s)
        extra = socket.create_connection((HOST, server.port), timeout=10)
        t = time.monotonic()
        data = extra.recv(65536)
        ms = (time.monotonic() - t) * 1000
        extra.close()
        r = parse_responses(data)
        assert r and r[0][0] == 503 and r[0][1].get("retry-after") == "1" and json.loads(r[0][2])["error"]
        assert ms < 1000
    finally:
        for s in socks:
            s.close()
    time.sleep(0.3)
    assert server.metric("clouddetect_rejected_total", 'reason="max_connections"') >= 1
    assert_still_serving(server)
    assert server.stop() == 0

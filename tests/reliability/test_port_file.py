"""`serve --port 0 --port-file PATH`: the bound port appears in PATH (written whole, by rename) as soon
as the server listens, so tools find the port without reading the log."""
import http.client
import os
import subprocess
import time

from conftest import BINARY, HOST, MODEL


def get_status(port, path):
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def test_port_file_names_the_ephemeral_port_before_ready(tmp_path):
    port_file = tmp_path / "port"
    proc = subprocess.Popen([BINARY, "serve", "--model", MODEL, "--host", HOST, "--port", "0", "--workers", "1",
                             "--port-file", str(port_file)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while not port_file.exists():
            assert proc.poll() is None and time.time() < deadline, "no port file"
            time.sleep(0.02)
        text = port_file.read_text()
        assert text.endswith("\n") and text.strip().isdigit(), repr(text)
        port = int(text)
        assert 0 < port < 65536
        assert get_status(port, "/healthz") == 200  # listening as soon as the file exists
        while get_status(port, "/readyz") != 200:
            assert time.time() < deadline, "never ready"
            time.sleep(0.05)
        assert sorted(os.listdir(tmp_path)) == ["port"]  # no temporary file left behind
    finally:
        proc.terminate()
        assert proc.wait(30) == 0


def test_unwritable_port_file_fails_at_start(tmp_path):
    result = subprocess.run([BINARY, "serve", "--model", MODEL, "--host", HOST, "--port", "0",
                             "--port-file", str(tmp_path / "missing-dir" / "port")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "port file" in result.stderr, result.stderr

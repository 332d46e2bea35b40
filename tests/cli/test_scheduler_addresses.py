"""A ``--scheduler`` address where no Dask scheduler answers ends, in bounded time, in one clear error (issue #36).

Real sockets on the loopback, each served from this test process: a web server, a listener that never
answers, a program that answers bytes that are not Dask's, a Dask *worker* (not the scheduler), and an
address that is no address. The command runs as a user runs it (a subprocess); Dask's connect timeout is
set to 3 s through Dask's own configuration variable, as a user would shorten it.
"""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")

REPO = Path(__file__).resolve().parents[2]
CONNECT_S = 3


def run_dataset(address: str, out: Path, tiny_model_dir, houston_label_path) -> tuple[subprocess.CompletedProcess, float]:
    env = dict(os.environ, DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT=f"{CONNECT_S}s")
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "changeanywhere_qgis", "dataset", "--semantic", str(houston_label_path),
                           "--count", "2", "--tile", "64", "--steps", "1", "--model", str(tiny_model_dir),
                           "--scheduler", address, "--out", str(out)],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    return done, time.monotonic() - start


def assert_one_clear_error(done, seconds: float, out: Path, *words: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr[-3000:])
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr
    for word in words:
        assert word in errors[0], (word, errors[0])
    assert "kept in" not in done.stderr  # no samples were made, and no folder
    assert not out.exists()
    assert seconds < 4 * CONNECT_S + 25, f"took {seconds:.0f} s"  # the command's start (imports, plan) and the bound


@pytest.fixture()
def silent_listener():
    """A TCP port that accepts connections and never says a word."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted, stop = [], threading.Event()

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except (socket.timeout, OSError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(5)
    for conn in accepted:
        conn.close()
    server.close()


@pytest.fixture()
def web_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"tcp://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture()
def garbage_server():
    """Answers every connection with bytes Dask reads as a message of exabytes, then waits."""
    server = socket.create_server(("127.0.0.1", 0))
    conns, stop = [], threading.Event()

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn = server.accept()[0]
            except (socket.timeout, OSError):
                continue
            conns.append(conn)
            conn.sendall(b"\xff" * 256)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(5)
    for conn in conns:
        conn.close()
    server.close()


def test_a_web_server_is_not_a_scheduler(web_server, tmp_path, tiny_model_dir, houston_label_path):
    out = tmp_path / "ds"
    done, seconds = run_dataset(web_server, out, tiny_model_dir, houston_label_path)
    assert_one_clear_error(done, seconds, out, "Cannot reach the Dask scheduler", web_server)


def test_a_silent_listener_ends_in_bounded_time(silent_listener, tmp_path, tiny_model_dir, houston_label_path):
    out = tmp_path / "ds"
    done, seconds = run_dataset(silent_listener, out, tiny_model_dir, houston_label_path)
    assert_one_clear_error(done, seconds, out, "Cannot reach the Dask scheduler", f"within {CONNECT_S} s")


def test_garbage_answers_are_not_a_scheduler(garbage_server, tmp_path, tiny_model_dir, houston_label_path):
    out = tmp_path / "ds"
    done, seconds = run_dataset(garbage_server, out, tiny_model_dir, houston_label_path)
    assert_one_clear_error(done, seconds, out, "not a Dask scheduler")
    assert "MemoryError" not in done.stderr or "answered something else" in done.stderr


def test_not_an_address(tmp_path, tiny_model_dir, houston_label_path):
    out = tmp_path / "ds"
    done, seconds = run_dataset("notanaddress", out, tiny_model_dir, houston_label_path)
    assert_one_clear_error(done, seconds, out, "'notanaddress' is not a Dask scheduler address", "tcp://HOST:PORT")
    assert seconds < 20  # no waiting at all: the form is wrong


def test_refused_port(tmp_path, tiny_model_dir, houston_label_path):
    with socket.create_server(("127.0.0.1", 0)) as s:  # a port nothing listens on once closed
        port = s.getsockname()[1]
    out = tmp_path / "ds"
    done, seconds = run_dataset(f"tcp://127.0.0.1:{port}", out, tiny_model_dir, houston_label_path)
    assert_one_clear_error(done, seconds, out, "Cannot reach the Dask scheduler", "connection refused")


def test_a_refused_port_is_told_apart_from_a_silent_one_by_a_plain_connection():
    """Dask retries a refused connection until its timeout; on a busy machine its error may end with no reason
    (a full run saw "no connection within 3 s ()"), so the probe asks the port itself."""
    from changeanywhere_qgis.engine.dataset.cluster import _refused

    with socket.create_server(("127.0.0.1", 0)) as listening:
        port = listening.getsockname()[1]
        assert not _refused(f"tcp://127.0.0.1:{port}")
    assert _refused(f"tcp://127.0.0.1:{port}")  # closed now: nothing listens

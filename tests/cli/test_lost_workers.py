"""A local worker process killed as the out-of-memory killer kills (SIGKILL) while a dataset runs (issue #36).

With a worker left, the run finishes: the killed worker's sample runs again. With none left, one error says
how many samples are kept and prints the command that finishes the rest, and that command does.
"""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[2]


def start(out: Path, tiny_model_dir, houston_label_path, count: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "changeanywhere_qgis", "dataset", "--semantic", str(houston_label_path),
                             "--count", str(count), "--tile", "128", "--steps", "6", "--model", str(tiny_model_dir),
                             "--workers", "2", "--out", str(out)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def workers_of(proc: subprocess.Popen, seen: set[int]) -> list[psutil.Process]:
    """The run's worker processes (spawned children running multiprocessing's spawn_main) not in ``seen``."""
    found = []
    for child in psutil.Process(proc.pid).children(recursive=True):
        try:
            if child.pid not in seen and "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


def wait_for(condition, seconds: float = 120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def records(out: Path) -> int:
    return len(list((out / ".samples").glob("*.json"))) if (out / ".samples").is_dir() else 0


def test_a_killed_worker_s_sample_runs_again_on_the_one_left(tmp_path, tiny_model_dir, houston_label_path):
    out = tmp_path / "ds"
    proc = start(out, tiny_model_dir, houston_label_path, count=12)
    try:
        wait_for(lambda: records(out) >= 1)
        victim = wait_for(lambda: workers_of(proc, set()))[0]
        victim.send_signal(signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr and "BrokenProcessPool" not in stderr, stderr
    assert "A worker process was killed" in stderr and "on 1 worker(s)" in stderr
    assert len((out / "manifest.jsonl").read_text().splitlines()) == 12


def test_every_worker_killed_keeps_the_samples_and_prints_the_command_that_resumes(tmp_path, tiny_model_dir, houston_label_path):
    out = tmp_path / "ds"
    proc = start(out, tiny_model_dir, houston_label_path, count=24)
    seen: set[int] = set()
    try:
        wait_for(lambda: records(out) >= 1)
        first = wait_for(lambda: workers_of(proc, seen))
        seen.update(p.pid for p in first)
        first[0].send_signal(signal.SIGKILL)  # the pool breaks; its samples go on in a new pool of one worker
        for p in wait_for(lambda: workers_of(proc, seen)):
            p.send_signal(signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, stderr
    assert "Traceback" not in stderr and "BrokenProcessPool" not in stderr, stderr
    kept = records(out)
    assert f"{kept} of 24 samples are finished and kept in {out}" in stderr, stderr
    assert not (out / ".work").exists() or not any((out / ".work").iterdir())  # no half-written sample left
    resume = stderr.strip().splitlines()[-1].strip()
    assert resume.startswith("python -m changeanywhere_qgis dataset "), stderr
    words = shlex.split(resume)
    done = subprocess.run([sys.executable, *words[1:]], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"{24 - kept} generated now, {kept} already there" in done.stdout

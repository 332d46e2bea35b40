"""The cluster path as the docs tell it (docs/guide/cluster.md), with real ``dask scheduler`` and ``dask worker`` processes.

Once per test session the package is installed as the recipe says (``pip install``) into a virtual environment
of its own: the dependencies come from this checkout's .venv (a .pth file, so nothing is downloaded), the
package itself only from the install. The scheduler and workers run in that environment, in a folder outside
the checkout, so they can import ``changeanywhere_qgis`` only because it was installed. Every process runs in
its own process group on 127.0.0.1, on ports the scheduler picks, and is killed at the end of its test.
"""

from __future__ import annotations

import json
import os
import shutil
import shlex
import signal
import site
import subprocess
import sys
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

REPO = Path(__file__).resolve().parents[2]
SOURCE = ("pyproject.toml", "requirements.txt", "README.md", "LICENSE", "metadata.txt", "changeanywhere_qgis")


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> Path:
    """A virtual environment with this checkout installed by ``pip install`` (no build isolation, no index)."""
    root = tmp_path_factory.mktemp("cluster-env")
    source = root / "source"  # a copy: the build writes build/ and *.egg-info beside the sources it builds
    source.mkdir()
    for name in SOURCE:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.aux.xml"))
        else:
            shutil.copy(REPO / name, source / name)  # follows links: metadata.txt's copy in the package is a link
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # the dependencies (and pip, setuptools) from the environment running the tests, without the checkout itself
    deps = [p for p in site.getsitepackages() if Path(p).is_dir() and Path(p).resolve() != REPO]
    Path(purelib, "_test_dependencies.pth").write_text("".join(f"{p}\n" for p in deps))
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                           str(source)], capture_output=True, text=True, cwd=root, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    where = subprocess.run([str(python), "-c", "import changeanywhere_qgis; print(changeanywhere_qgis.__file__)"],
                           capture_output=True, text=True, cwd=root, env=clean_env(), timeout=60)
    assert where.stdout.strip().startswith(purelib), (where.stdout, where.stderr)
    return venv


def clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT"] = "10s"
    return env


class Cluster:
    """``dask scheduler`` and ``dask worker`` processes, as the recipe starts them."""

    def __init__(self, python: Path, folder: Path):
        self.python, self.folder, self.procs = python, folder, []
        folder.mkdir(parents=True, exist_ok=True)
        file = folder / "scheduler.json"
        self.scheduler = self._start("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", str(file))
        deadline = time.monotonic() + 60
        while not file.is_file() and time.monotonic() < deadline:
            assert self.scheduler.poll() is None, self.logs()
            time.sleep(0.2)
        assert file.is_file(), self.logs()
        time.sleep(0.2)
        self.address = json.loads(file.read_text())["address"]
        self.workers: list[subprocess.Popen] = []

    def _start(self, *args) -> subprocess.Popen:
        with open(self.folder / f"{args[0]}-{len(self.procs)}.log", "w") as log:  # the child keeps its own descriptor
            proc = subprocess.Popen([str(self.python), "-m", "dask", *args], cwd=self.folder, env=clean_env(),
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def add_workers(self, n: int) -> None:
        for _ in range(n):
            self.workers.append(self._start("worker", self.address, "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"))
        self.wait_for_workers()

    def wait_for_workers(self) -> None:
        alive = [w for w in self.workers if w.poll() is None]
        with distributed.Client(self.address, set_as_default=False, timeout="30s") as client:
            client.wait_for_workers(len(alive), timeout=90)

    def kill(self, proc: subprocess.Popen) -> None:
        """SIGKILL to the process and its children (a worker and the nanny that runs it): a machine lost."""
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def logs(self) -> str:
        return "".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted(self.folder.glob("*.log")))

    def close(self) -> None:
        for proc in reversed(self.procs):
            self.kill(proc)


@pytest.fixture()
def cluster(tmp_path):
    made = []

    def make(python: Path, workers: int) -> Cluster:
        c = Cluster(python, tmp_path / f"cluster{len(made)}")
        made.append(c)
        c.add_workers(workers)
        return c

    yield make
    for c in made:
        c.close()


def dataset_args(out: Path, model: Path, semantic: Path, count: int, tile: int, steps: int) -> list[str]:
    return ["dataset", "--semantic", str(semantic), "--count", str(count), "--tile", str(tile), "--steps", str(steps),
            "--model", str(model), "--out", str(out)]


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)}


def start_when_a_sample_is_done(command: list[str], out: Path, cwd: Path) -> subprocess.Popen:
    proc = subprocess.Popen(command, cwd=cwd, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and not list((out / ".samples").glob("*.json")):
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    return proc


def test_installed_command_makes_a_dataset_on_a_real_cluster(installed, cluster, tmp_path, tiny_model_dir, houston_label_path):
    """`pip install`, `dask scheduler`, two `dask worker`s, `changeanywhere dataset --scheduler`: the same files as locally."""
    command = installed / "bin" / "changeanywhere"
    info = subprocess.run([str(command), "info"], capture_output=True, text=True, cwd=tmp_path, env=clean_env(), timeout=120)
    assert info.returncode == 0 and "model:" in info.stdout, info.stderr
    c = cluster(installed / "bin" / "python", workers=2)
    args = dataset_args(tmp_path / "dask", tiny_model_dir, houston_label_path, count=6, tile=64, steps=2)
    done = subprocess.run([str(command), *args, "--scheduler", c.address], capture_output=True, text=True, cwd=tmp_path,
                          env=clean_env(), timeout=300)
    assert done.returncode == 0, done.stderr + c.logs()
    assert "(2 workers)" in done.stdout
    local = subprocess.run([str(command), *dataset_args(tmp_path / "local", tiny_model_dir, houston_label_path, 6, 64, 2),
                            "--workers", "1"], capture_output=True, text=True, cwd=tmp_path, env=clean_env(), timeout=300)
    assert local.returncode == 0, local.stderr
    assert files(tmp_path / "dask") == files(tmp_path / "local")


def test_a_cluster_without_the_package_is_refused_before_anything_is_written(cluster, tmp_path, tiny_model_dir, houston_label_path):
    """The issue's case: scheduler and worker started where the package is not installed (this checkout's .venv, outside it)."""
    plain = Path(sys.executable)
    c = cluster(plain, workers=1)
    out = tmp_path / "ds"
    done = subprocess.run([sys.executable, "-m", "changeanywhere_qgis", *dataset_args(out, tiny_model_dir, houston_label_path, 2, 64, 1),
                           "--scheduler", c.address], capture_output=True, text=True, cwd=REPO, env=clean_env(), timeout=300)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert "lacks changeanywhere_qgis" in done.stderr and "the scheduler cannot import it" in done.stderr
    assert "worker tcp://127.0.0.1:" in done.stderr  # the worker is named too
    assert "pip install" in done.stderr
    assert not out.exists()


def test_a_killed_worker_s_samples_run_on_the_other(installed, cluster, tmp_path, tiny_model_dir, houston_label_path):
    c = cluster(installed / "bin" / "python", workers=2)
    out = tmp_path / "ds"
    command = [str(installed / "bin" / "changeanywhere"), *dataset_args(out, tiny_model_dir, houston_label_path, 16, 128, 6),
               "--scheduler", c.address]
    proc = start_when_a_sample_is_done(command, out, tmp_path)
    c.kill(c.workers[0])
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr + c.logs()
    assert "Traceback" not in stderr
    assert len((out / "manifest.jsonl").read_text().splitlines()) == 16


def test_the_only_worker_killed_ends_with_the_samples_kept_and_the_command_that_resumes(
        installed, cluster, tmp_path, tiny_model_dir, houston_label_path):
    c = cluster(installed / "bin" / "python", workers=1)
    out = tmp_path / "ds"
    command = [str(installed / "bin" / "changeanywhere"), *dataset_args(out, tiny_model_dir, houston_label_path, 12, 128, 6),
               "--scheduler", c.address]
    proc = start_when_a_sample_is_done(command, out, tmp_path)
    c.kill(c.workers[0])
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2, stderr
    assert "Traceback" not in stderr, stderr
    kept = len(list((out / ".samples").glob("*.json")))
    assert 1 <= kept < 12
    assert f"{kept} of 12 samples are finished and kept in {out}" in stderr, stderr
    resume = stderr.strip().splitlines()[-1].strip()
    assert resume.startswith("changeanywhere dataset ") and c.address in resume, stderr
    c.add_workers(1)  # a worker back, and the printed command finishes the dataset
    words = shlex.split(resume)
    done = subprocess.run([str(installed / "bin" / words[0]), *words[1:]], capture_output=True, text=True,
                          cwd=tmp_path, env=clean_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"{12 - kept} generated now, {kept} already there" in done.stdout

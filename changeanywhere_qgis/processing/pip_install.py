"""The "Install dependencies" action's plan and pip run: the engine's libraries into QGIS's own Python.

No Qt here (gui/install_task.py runs :func:`run_pip` in a QgsTask). The choices:

- **Which Python**: the interpreter QGIS embeds, not ``sys.executable`` (inside QGIS that is the QGIS
  binary): ``<prefix>/bin/python3.X`` on Linux and in macOS's QGIS.app, ``<prefix>\\python.exe`` in
  OSGeo4W / the Windows installers (:func:`python_environment.qgis_python`).
- **Where**: inside a virtual environment, into it. Otherwise into a plugin-private folder in the QGIS
  profile (``pip install --target``), which the plugin puts on ``sys.path`` when it loads. Not
  ``--user``: that folder comes before the system's on every Python program of the user, and Debian /
  Ubuntu refuse it anyway (PEP 668, "externally-managed-environment"); ``--target`` leaves the system's
  packages alone, so it needs neither root nor ``--break-system-packages``. The folder is per Python
  version (``py3.13``): a QGIS upgrade to a new Python never loads binaries built for the old one.
- **numpy stays QGIS's**: when numpy is installed it is pinned to that version (GDAL's Python bindings
  are built against it), so nothing pulls numpy 2 under a numpy 1 GDAL.
- **GPU build only with an NVIDIA GPU**: ``onnxruntime-gpu[cuda,cudnn]``, whose CUDA runtime and
  cuDNN come from pip; the CUDA major that release needs is read from its metadata (a pip dry run) and
  checked against the driver (``nvidia-smi``); a driver too old for it gets the CPU build and says so.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import python_environment

PRIVATE_FOLDER = "changeanywhere-libs"
GPU_REQUIREMENT = "onnxruntime-gpu[cuda,cudnn]>=1.17,<2"
PIP_OPTIONS = ["--disable-pip-version-check", "--no-input", "--progress-bar", "off"]


@dataclass
class InstallPlan:
    python: str
    requirements: list[str]
    target: Path | None  # plugin-private folder; None: into the running environment (a venv)
    gpu: bool
    notes: list[str] = field(default_factory=list)  # what the user should know (GPU, CUDA)
    extra_args: list[str] = field(default_factory=list)  # e.g. a local index (tests)

    def pip_args(self, target: Path | None = None) -> list[str]:
        """pip's command line; ``target`` overrides the plan's folder (the task installs beside it first)."""
        where = target or self.target
        location = ["--target", str(where), "--upgrade"] if where is not None else []
        return [self.python, "-m", "pip", "install", *PIP_OPTIONS, *location, *self.extra_args, *self.requirements]

    def command_line(self) -> str:
        """The same command for a terminal."""
        return " ".join(_quote(a) for a in self.pip_args() if a not in ("--no-input", "--progress-bar", "off"))


def _quote(arg: str) -> str:
    return f'"{arg}"' if any(ch in arg for ch in ' <>[;') else arg


# --- where -----------------------------------------------------------------------------------------
def in_virtualenv() -> bool:
    return sys.prefix != getattr(sys, "base_prefix", sys.prefix)


def externally_managed() -> bool:
    """PEP 668: the distribution manages this Python's site-packages (Debian 12+, Ubuntu 23.04+)."""
    import sysconfig

    return not in_virtualenv() and (Path(sysconfig.get_path("stdlib")) / "EXTERNALLY-MANAGED").is_file()


def private_folder(base: Path | str) -> Path:
    """The plugin-private site folder under ``base`` (the QGIS profile's python folder), per Python version."""
    return Path(base) / PRIVATE_FOLDER / f"py{sys.version_info[0]}.{sys.version_info[1]}"


def activate_private_folder(base: Path | str | None) -> Path | None:
    """Put the private folder first on sys.path (its libraries are the ones the engine needs: they win
    over older distribution packages such as Debian 12's shapely 1.8). A finished install that could
    not replace the folder (Windows keeps loaded DLLs locked) is moved into place first."""
    if base is None:
        return None
    folder = private_folder(base)
    staged = folder.with_name(folder.name + ".new")
    if staged.is_dir() and (staged / ".complete").is_file():
        try:
            _swap_into_place(staged, folder)
        except OSError:
            pass  # still locked: the previous folder stays in use
    if not folder.is_dir():
        return None
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    import importlib

    importlib.invalidate_caches()
    return folder


def _swap_into_place(staged: Path, folder: Path) -> None:
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    staged.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


# --- what ------------------------------------------------------------------------------------------
def numpy_requirement() -> str:
    """QGIS's numpy pinned when present; else the major this Python's QGIS builds on (requirements.txt)."""
    try:
        from importlib.metadata import version

        return f"numpy=={version('numpy')}"
    except Exception:  # noqa: BLE001 (not installed, or no metadata)
        return "numpy>=2.1,<3" if sys.version_info >= (3, 13) else "numpy>=1.24,<2"


def requirements(gpu: bool) -> list[str]:
    reqs = [python_environment.REQUIREMENTS[m] for m in python_environment.REQUIREMENTS if m != "numpy"]
    if gpu:
        reqs = [GPU_REQUIREMENT if r.startswith("onnxruntime") else r for r in reqs]
    return reqs + [numpy_requirement()]


# --- the GPU build ---------------------------------------------------------------------------------
def driver_cuda_version(nvidia_smi_output: str) -> tuple[int, int] | None:
    """The newest CUDA the NVIDIA driver supports, from ``nvidia-smi``'s header ("CUDA Version: 12.4")."""
    found = re.search(r"CUDA Version:\s*(\d+)\.(\d+)", nvidia_smi_output)
    return (int(found.group(1)), int(found.group(2))) if found else None


def release_cuda_major(report: dict) -> tuple[str, int | None] | None:
    """(version, CUDA major) of onnxruntime-gpu in a ``pip install --dry-run --report`` answer; the
    major is None for releases that name no CUDA runtime package (before 1.19: the system's CUDA)."""
    for item in report.get("install", []):
        meta = item.get("metadata", {})
        if meta.get("name", "").lower() != "onnxruntime-gpu":
            continue
        for dep in meta.get("requires_dist", []):
            found = re.match(r"nvidia-cuda-runtime(?:-cu\d+)?\s*~=\s*(\d+)", dep)
            if found:
                return meta.get("version", "?"), int(found.group(1))
        return meta.get("version", "?"), None
    return None


def query_release_cuda_major(python: str, extra_args: list[str] | None = None, timeout: float = 120) -> tuple[str, int | None] | None:
    """Ask pip which onnxruntime-gpu it would install, and read the CUDA major from its metadata
    (PyPI serves wheel metadata alone: seconds, no download)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        argv = [python, "-m", "pip", "install", *PIP_OPTIONS, "--dry-run", "--ignore-installed", "--no-deps",
                "--quiet", "--report", str(report), *(extra_args or []), GPU_REQUIREMENT]
        try:
            subprocess.run(argv, capture_output=True, timeout=timeout, check=True, **_no_window())
            return release_cuda_major(json.loads(report.read_text(encoding="utf-8")))
        except (OSError, subprocess.SubprocessError, ValueError):
            return None


def nvidia_smi_output() -> str:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return ""
    try:
        return subprocess.run([exe], capture_output=True, text=True, timeout=20, **_no_window()).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def gpu_choice(has_gpu: bool, release: tuple[str, int | None] | None, driver: tuple[int, int] | None) -> tuple[bool, list[str]]:
    """Whether to install the GPU build, and the lines that tell the user why."""
    if not has_gpu:
        return False, ["No NVIDIA GPU found: installing the CPU build of onnxruntime."]
    if release is None:
        return True, ["NVIDIA GPU found: installing onnxruntime-gpu with its CUDA runtime and cuDNN from pip "
                      "(pip did not say which CUDA major this release needs)."]
    version, major = release
    if major is None:
        return True, [f"NVIDIA GPU found: installing onnxruntime-gpu {version}, which uses the system's CUDA and cuDNN libraries."]
    needs = f"onnxruntime-gpu {version} needs CUDA {major}"
    if driver is not None and driver[0] < major:
        return False, [f"{needs}, but the NVIDIA driver supports CUDA {driver[0]}.{driver[1]} only: installing the CPU "
                       f"build. Update the NVIDIA driver (one that supports CUDA {major}), then install again for the GPU build."]
    have = f" (the driver supports CUDA {driver[0]}.{driver[1]})" if driver else ""
    return True, [f"NVIDIA GPU found: {needs}{have}; its CUDA {major} runtime and cuDNN are installed with it from pip."]


# --- the plan and the run ------------------------------------------------------------------------------
def plan(base: Path | str | None, gpu: bool | None = None, python: str | None = None,
         extra_args: list[str] | None = None) -> InstallPlan:
    """What the action will run. ``base``: the QGIS profile's python folder (None: no profile, e.g.
    outside QGIS: into the running environment). ``gpu`` None: decided here (GPU, driver, release)."""
    python = python or python_environment.qgis_python()
    target = None if in_virtualenv() or base is None else private_folder(base)
    notes: list[str] = []
    if gpu is None:
        has_gpu = python_environment.has_nvidia_gpu()
        release = query_release_cuda_major(python, extra_args) if has_gpu else None
        gpu, notes = gpu_choice(has_gpu, release, driver_cuda_version(nvidia_smi_output()) if has_gpu else None)
    if target is not None and externally_managed():
        notes.append(f"This Python is managed by the distribution (PEP 668): the libraries go to {target}, "
                     "the system's packages stay untouched.")
    return InstallPlan(python, requirements(gpu), target, gpu, notes, list(extra_args or []))


def pip_available(python: str) -> bool:
    try:
        return subprocess.run([python, "-m", "pip", "--version"], capture_output=True, timeout=60, **_no_window()).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def no_pip_message(python: str) -> str:
    if sys.platform.startswith("linux"):
        how = "install it with the distribution's package manager (Debian/Ubuntu: sudo apt install python3-pip)"
    elif sys.platform == "win32":
        how = "in the OSGeo4W installer, select the python3-pip package"
    else:
        how = f"run {python} -m ensurepip --user"
    return f"QGIS's Python ({python}) has no pip: {how}, then click Install dependencies again."


class PipProgress:
    """A fraction for pip's output lines: resolving (Collecting …) up to 60 %, installing 80 %, done 100 %."""

    def __init__(self, expected_packages: int = 40):
        self.expected = expected_packages
        self.collected = 0
        self.fraction = 0.0

    def line(self, text: str) -> float:
        if text.startswith("Collecting "):
            self.collected += 1
            self.fraction = max(self.fraction, 0.6 * min(1.0, self.collected / self.expected))
        elif text.startswith("Installing collected packages"):
            self.fraction = max(self.fraction, 0.8)
        elif text.startswith("Successfully installed"):
            self.fraction = 1.0
        return self.fraction


def run_pip(install: InstallPlan, on_line: Callable[[str], None], on_progress: Callable[[float], None],
            is_cancelled: Callable[[], bool]) -> tuple[bool, str]:
    """Run the plan's pip; every output line to ``on_line``. The private folder is filled beside the
    old one and moved into place only when pip succeeded: a failed or cancelled install leaves
    what was there. Returns (ok, message)."""
    if not pip_available(install.python):
        return False, no_pip_message(install.python)
    staged = None
    if install.target is not None:
        staged = install.target.with_name(install.target.name + ".new")
        shutil.rmtree(staged, ignore_errors=True)
        staged.parent.mkdir(parents=True, exist_ok=True)
    argv = install.pip_args(staged)
    on_line("$ " + " ".join(_quote(a) for a in argv))
    progress = PipProgress()
    env = dict(os.environ, PYTHONUNBUFFERED="1", PIP_NO_INPUT="1")
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                                env=env, **_no_window())
    except OSError as exc:
        return False, f"Cannot run {install.python}: {exc}"
    tail: list[str] = []
    with proc:
        assert proc.stdout is not None
        for raw in proc.stdout:
            text = raw.rstrip()
            if not text:
                continue
            on_line(text)
            tail = (tail + [text])[-8:]
            on_progress(progress.line(text))
            if is_cancelled():
                proc.terminate()
                break
    proc.wait()
    if is_cancelled():
        if staged is not None:
            shutil.rmtree(staged, ignore_errors=True)
        return False, "Installation cancelled; nothing was changed."
    if proc.returncode != 0:
        if staged is not None:
            shutil.rmtree(staged, ignore_errors=True)
        return False, f"pip failed (exit {proc.returncode}); nothing was changed. Its last lines:\n" + "\n".join(tail)
    if staged is not None:
        (staged / ".complete").write_text("pip finished\n", encoding="utf-8")
        try:
            _swap_into_place(staged, install.target)
        except OSError:
            pass  # in use (Windows): activate_private_folder moves it into place at the next start
    on_progress(1.0)
    where = f" into {install.target}" if install.target is not None else f" into {sys.prefix}"
    return True, f"Installed{where}. Restart QGIS to use them."


def _no_window() -> dict:
    """No console window flashing up for each pip call on Windows."""
    if sys.platform == "win32":
        return {"creationflags": getattr(subprocess, "CREATE_NO_WINDOW", 0)}
    return {}

"""Which of the engine's Python libraries QGIS's Python lacks, and the exact command that installs them.

Imports nothing heavy: ``importlib.util.find_spec`` only looks. Used by the algorithms (their
``QgsProcessingException``) and by the plugin at load time (its message bar note).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

# module -> pip requirement; the engine's runtime (requirements.txt).
# numpy<2: the GDAL bindings QGIS ships are built against numpy 1 on many platforms.
REQUIREMENTS = {
    "onnxruntime": "onnxruntime",
    "rasterio": "rasterio",
    "shapely": "shapely",
    "pyogrio": "pyogrio",
    "geopandas": "geopandas",
    "scipy": "scipy",
    "numpy": "numpy<2",
}


def missing_modules() -> list[str]:
    missing = []
    for module in REQUIREMENTS:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(module)
    return missing


def qgis_python() -> str:
    """The Python interpreter QGIS runs (inside QGIS, sys.executable is the QGIS binary)."""
    exe = Path(sys.executable or "")
    if exe.name.lower().startswith("python"):
        return str(exe)
    prefix = Path(sys.exec_prefix)
    for candidate in (prefix / "python.exe", prefix / "bin" / "python3", prefix / "bin" / "python",
                      exe.parent / "python3", exe.parent / "bin" / "python3"):
        if candidate.is_file():
            return str(candidate)
    return "python3"


def has_nvidia_gpu() -> bool:
    return sys.platform.startswith("linux") and (os.path.exists("/proc/driver/nvidia/version") or shutil.which("nvidia-smi") is not None)


def install_command(gpu: bool | None = None) -> str:
    """The pip command that installs the whole engine runtime into QGIS's Python."""
    if gpu is None:
        gpu = has_nvidia_gpu()
    packages = [REQUIREMENTS[m] for m in REQUIREMENTS]
    if gpu:
        packages[0] = "onnxruntime-gpu"
    quoted = " ".join(f'"{p}"' if "<" in p else p for p in packages)
    python = qgis_python()
    if " " in python:
        python = f'"{python}"'
    in_venv = sys.prefix != getattr(sys, "base_prefix", sys.prefix)
    user = " --user" if (sys.platform.startswith("linux") or sys.platform == "darwin") and not in_venv else ""
    return f"{python} -m pip install{user} {quoted}"


def install_hint(missing: list[str] | None = None) -> str:
    """A paragraph for the user: what is missing and the command(s) that fix it."""
    missing = missing_modules() if missing is None else missing
    text = (
        f"ChangeAnywhere needs the Python libraries {', '.join(missing)}, which QGIS's Python lacks. "
        f"Install them from a terminal with:\n    {install_command(gpu=False)}\n"
    )
    if sys.platform.startswith("linux"):
        text += f"With an NVIDIA GPU (CUDA 12, cuDNN 9), install the GPU build instead:\n    {install_command(gpu=True)}\n"
        text += "(On Debian/Ubuntu's system Python, add --break-system-packages.) "
    text += "Then restart QGIS."
    return text

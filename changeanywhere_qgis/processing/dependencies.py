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


def missing_library(exc: ImportError) -> str | None:
    """The engine library an ImportError is about, or None (then it is a bug, not a missing install)."""
    name = (getattr(exc, "name", None) or "").split(".")[0]
    return name if name in REQUIREMENTS else None


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


_PRELOADED = False
# Python packages whose wheels bundle their own GDAL / GEOS / PROJ builds.
NATIVE_WHEELS = ("shapely", "pyproj", "rasterio", "pyogrio")


def _host_exports_gdal_or_geos() -> bool:
    """True inside a QGIS binary (GDAL/GEOS in the global symbol scope); False when Python came first
    (``import qgis`` loads them privately, and the wheels need no help)."""
    import ctypes

    try:
        host = ctypes.CDLL(None)
    except OSError:
        return False
    return any(hasattr(host, symbol) for symbol in ("GEOSversion", "GDALVersionInfo"))


def preload_native_libraries() -> None:
    """Import the engine's GDAL/GEOS-based packages so that they use the libraries they bundle.

    Inside the QGIS binaries (qgis, qgis_process) QGIS's own GDAL and GEOS are already loaded in
    the global symbol scope. On Linux a pip wheel's bundled copy (e.g. shapely's GEOS 3.14) would
    then resolve its calls to QGIS's older copy, which fails ("WKB output dimension must be 2 or 3")
    or crashes. RTLD_DEEPBIND makes each wheel prefer its own libraries. Distribution packages
    (python3-shapely, ...) built against QGIS's libraries are unaffected. Call before the engine
    is imported; later calls do nothing.
    """
    global _PRELOADED
    if _PRELOADED:
        return
    _PRELOADED = True
    if not sys.platform.startswith("linux") or not hasattr(os, "RTLD_DEEPBIND") or not _host_exports_gdal_or_geos():
        return
    flags = sys.getdlopenflags()
    sys.setdlopenflags(flags | os.RTLD_DEEPBIND)
    try:
        for module in NATIVE_WHEELS:
            if module in sys.modules:
                continue
            try:
                importlib.import_module(module)
                if module == "rasterio":
                    importlib.import_module("rasterio.features")
                    importlib.import_module("rasterio.warp")
            except Exception:  # noqa: BLE001 (a missing or broken package is reported by missing_modules / the engine)
                pass
    finally:
        sys.setdlopenflags(flags)


def import_engine() -> None:
    """Import the engine and its native libraries now, in the calling (main) thread.

    A QgsTask runs in a worker thread; GDAL-based wheels (pyogrio, rasterio) first imported and
    initialised there crashed later reads in other threads in our tests. Importing them in the main
    thread before the task starts avoids that.
    """
    preload_native_libraries()
    for module in ("numpy", "scipy.ndimage", "shapely", "pyproj", "rasterio", "rasterio.features", "pyogrio", "geopandas"):
        try:
            importlib.import_module(module)
        except ImportError:
            pass  # reported with the install command when the engine needs it
    importlib.import_module(__package__.rsplit(".", 1)[0] + ".engine.pipeline")

"""Which of the engine's Python libraries QGIS's Python lacks, and how to get them.

Imports nothing heavy: ``importlib.util.find_spec`` only looks. Used by the algorithms (their
``QgsProcessingException``), by the plugin at load time (its message bar note) and by the dock's
"Install dependencies" action (pip_install.py plans and runs pip; gui/install_task.py runs it in a QgsTask).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from . import pip_install
from .python_environment import REQUIREMENTS, has_nvidia_gpu, private_base, qgis_python

__all__ = ["REQUIREMENTS", "activate_installed", "has_nvidia_gpu", "import_engine", "install_command", "install_hint",
           "missing_library", "missing_modules", "preload_native_libraries", "private_base", "qgis_python"]


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


def activate_installed() -> Path | None:
    """Put the libraries that the "Install dependencies" action installed on sys.path (at plugin load)."""
    return pip_install.activate_private_folder(private_base())


def install_command(gpu: bool = False) -> str:
    """The pip command that the "Install dependencies" action runs (CPU or GPU build), for a terminal."""
    return pip_install.plan(private_base(), gpu=gpu).command_line()


def install_hint(missing: list[str] | None = None) -> str:
    """A paragraph for the user: what is missing, the one-click action, and the command that does the same."""
    missing = missing_modules() if missing is None else missing
    text = (
        f"ChangeAnywhere needs the Python libraries {', '.join(missing)}, which QGIS's Python lacks. "
        "Click \"Install dependencies\" in the ChangeAnywhere dock (its toolbar button), or run from a terminal:\n"
        f"    {install_command(gpu=False)}\n"
    )
    if has_nvidia_gpu():
        text += ("The dock's action installs the GPU build (onnxruntime-gpu with the CUDA runtime it needs) "
                 "when the NVIDIA driver supports that CUDA. ")
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


def _preload_pip_cuda() -> None:
    """The GPU build that "Install dependencies" installs (onnxruntime-gpu[cuda,cudnn]) gets CUDA and
    cuDNN as pip packages (nvidia-*), outside the loader's search path: onnxruntime (>= 1.21) loads
    them with preload_dlls() before its CUDA provider needs them. Without them nothing happens."""
    try:
        if importlib.util.find_spec("nvidia") is None:
            return
        import onnxruntime
    except (ImportError, ValueError):
        return
    if hasattr(onnxruntime, "preload_dlls"):
        try:
            onnxruntime.preload_dlls()
        except Exception:  # noqa: BLE001 (no GPU libraries after all: the engine falls back to the CPU and says so)
            pass


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
    _preload_pip_cuda()
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

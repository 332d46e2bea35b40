"""QGIS's Python as the plugin finds it: the engine's requirements, the interpreter QGIS runs, the profile folder
where the "Install dependencies" action puts libraries, and whether an NVIDIA GPU is there.

Facts only, no imports of the plugin's own: dependencies.py (what is missing) and pip_install.py (installing it) both
read them, so neither needs the other's module to know them.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

# module -> pip requirement: the engine's runtime, with requirements.txt's ranges (a test holds them
# equal). numpy is pinned to QGIS's own at install time (pip_install.numpy_requirement).
REQUIREMENTS = {
    "onnxruntime": "onnxruntime>=1.17,<2",
    "rasterio": "rasterio>=1.3.9,<1.5",
    "affine": "affine>=2.4,<3",
    "shapely": "shapely>=2.0,<3",
    "pyogrio": "pyogrio>=0.7,<0.12",
    "geopandas": "geopandas>=0.14,<1.2",
    "scipy": "scipy>=1.10,<1.15",
    "numpy": "numpy>=1.24,<2" if sys.version_info < (3, 13) else "numpy>=2.1,<3",
}


def qgis_python() -> str:
    """The Python interpreter QGIS runs (inside QGIS, sys.executable is the QGIS binary)."""
    exe = Path(sys.executable or "")
    if exe.name.lower().startswith("python"):
        return str(exe)
    prefix = Path(sys.exec_prefix)
    xy = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    # Linux and macOS's QGIS.app: <prefix>/bin/python3.X (the exact version first: /usr/bin/python3 may
    # be another one); Windows (OSGeo4W, the standalone installer): <prefix>\python.exe.
    for candidate in (prefix / "bin" / xy, prefix / "python.exe", prefix / "bin" / "python3", prefix / "bin" / "python",
                      exe.parent / xy, exe.parent / "python3", exe.parent / "bin" / "python3"):
        if candidate.is_file():
            return str(candidate)
    return "python3"


def has_nvidia_gpu() -> bool:
    """An NVIDIA driver is loaded (Linux) or its nvidia-smi is installed (Linux, Windows); never on macOS."""
    if sys.platform == "darwin":
        return False
    if sys.platform.startswith("linux") and os.path.exists("/proc/driver/nvidia/version"):
        return True
    return shutil.which("nvidia-smi") is not None


def private_base() -> Path | None:
    """The QGIS profile's python folder, where the "Install dependencies" action puts the libraries
    (pip_install.private_folder); None outside QGIS."""
    try:
        from qgis.core import QgsApplication
    except ImportError:
        return None
    settings = QgsApplication.qgisSettingsDirPath()
    return Path(settings) / "python" if settings else None

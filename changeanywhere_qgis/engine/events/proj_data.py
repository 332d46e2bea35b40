"""PROJ's data (proj.db) found for a distribution's pyproj even without the ``proj`` program on PATH.

A pyproj wheel carries its data. A distribution's pyproj (Debian's python3-pyproj, which QGIS pulls
in) looks in ``$PROJ_DATA``, then ``sys.prefix/share/proj``, then beside the ``proj`` program. In a
virtual environment over that Python without proj-bin installed, all three miss, every CRS fails
("Valid PROJ data directory not found") and a QGIS run ended in a segfault. Here the distribution's
folder (the one that pyproj's PROJ was built with) is handed to pyproj when nothing else would be.

Only pyproj is told (``pyproj.datadir.set_data_dir``), not the environment: rasterio's and pyogrio's
wheels read ``$PROJ_DATA`` before their own bundled data, and another PROJ version's proj.db can fail
there. A PROJ_DATA / PROJ_LIB that the user set is left alone.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import warnings
from pathlib import Path


def candidate_folders() -> list[Path]:
    """Where distributions and installers put PROJ's data, the closest to this Python first."""
    prefixes = [Path(sys.prefix), Path(getattr(sys, "base_prefix", sys.prefix))]
    folders = [p / "share" / "proj" for p in prefixes] + [p / "Library" / "share" / "proj" for p in prefixes]
    for variable in ("OSGEO4W_ROOT", "CONDA_PREFIX"):
        if os.environ.get(variable):
            folders.append(Path(os.environ[variable]) / "share" / "proj")
    folders += [Path("/usr/share/proj"), Path("/usr/local/share/proj"), Path("/opt/homebrew/share/proj")]
    return folders


def pyproj_has_own_data() -> bool | None:
    """True: a pyproj wheel (its proj_dir holds proj.db); False: another build; None: no pyproj."""
    try:
        spec = importlib.util.find_spec("pyproj")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    return (Path(spec.origin).parent / "proj_dir" / "share" / "proj" / "proj.db").is_file()


def ensure_proj_data(candidates: list[Path] | None = None) -> Path | None:
    """Point pyproj at the distribution's PROJ data when it would find none; the folder, or None
    when nothing was needed (or nothing found). Cheap when nothing is needed: pyproj is not imported."""
    if os.environ.get("PROJ_DATA") or os.environ.get("PROJ_LIB"):
        return None
    if pyproj_has_own_data() is not False:
        return None
    folder = next((f for f in (candidates or candidate_folders()) if (f / "proj.db").is_file()), None)
    if folder is None:
        return None
    with warnings.catch_warnings():  # pyproj warns on import when it has no data folder yet
        warnings.simplefilter("ignore", UserWarning)
        import pyproj.datadir

    try:
        if Path(pyproj.datadir.get_data_dir().split(os.pathsep)[0]).resolve() == folder.resolve():
            return None  # found it itself (e.g. proj on PATH)
    except Exception:  # noqa: BLE001 (pyproj.exceptions.DataDirError: the case this module is for)
        pass
    pyproj.datadir.set_data_dir(str(folder))
    return folder

"""PROJ's data found without the proj program on PATH: a virtual environment over the distribution's
Python and its pyproj (Debian's python3-pyproj, which QGIS pulls in), as users make one, where pyproj
itself finds no proj.db; engine/events/proj_data.py points it at the distribution's folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODULE = REPO / "changeanywhere_qgis" / "engine" / "events" / "proj_data.py"
BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)

CHECK = f"""
import importlib.util, sys
spec = importlib.util.spec_from_file_location("proj_data", {str(MODULE)!r})
proj_data = importlib.util.module_from_spec(spec); spec.loader.exec_module(proj_data)
if sys.argv[1] == "fix":
    print("folder:", proj_data.ensure_proj_data())
import warnings; warnings.simplefilter("ignore")
import pyproj
print("crs:", pyproj.CRS("EPSG:32615").name)
"""


@pytest.fixture(scope="module")
def distro_venv(tmp_path_factory):
    """A venv over the base Python with only the distribution's packages (no pip: made in a second)."""
    probe = subprocess.run([BASE_PYTHON, "-c", "import pyproj, os; print(os.path.dirname(pyproj.__file__))"],
                           capture_output=True, text=True, timeout=60)
    if probe.returncode != 0 or (Path(probe.stdout.strip()) / "proj_dir").exists():
        pytest.skip("the base Python has no distribution pyproj (python3-pyproj)")
    venv = tmp_path_factory.mktemp("distro-venv") / "venv"
    subprocess.run([BASE_PYTHON, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True, timeout=120)
    return venv / "bin" / "python"


def _run(python, mode):
    env = {k: v for k, v in os.environ.items() if k not in ("PROJ_DATA", "PROJ_LIB", "PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = "/nonexistent"  # no proj program to find the data beside
    return subprocess.run([str(python), "-c", CHECK, mode], capture_output=True, text=True, env=env, timeout=120)


def test_the_engine_points_pyproj_at_the_distribution_data(distro_venv):
    plain = _run(distro_venv, "plain")
    if plain.returncode == 0:  # Debian 12's pyproj 3.4 falls back to PROJ's built-in path; 3.7 (Debian 13) does not
        pytest.skip("this distribution's pyproj finds its data without help: nothing to fix here")
    assert "PROJ data directory not found" in plain.stderr  # the failure users met
    ran = _run(distro_venv, "fix")
    assert ran.returncode == 0, ran.stderr
    assert "folder: /usr/share/proj" in ran.stdout and "crs: WGS 84 / UTM zone 15N" in ran.stdout


def test_a_wheel_or_a_user_setting_is_left_alone(monkeypatch):
    from changeanywhere_qgis.engine.events import proj_data

    monkeypatch.setenv("PROJ_DATA", "/somewhere")
    assert proj_data.ensure_proj_data() is None
    monkeypatch.delenv("PROJ_DATA")
    monkeypatch.delenv("PROJ_LIB", raising=False)
    if proj_data.pyproj_has_own_data():
        assert proj_data.ensure_proj_data() is None  # this venv's pyproj wheel carries its data

"""What "Adapt the model to my area" needs outside QGIS's process: the repository's ``model_export``, a Python
that imports PyTorch, the command line it runs, and the user's folder of adapted model packages.

Adaptation trains with PyTorch, which the plugin never imports (tests/test_boundaries.py) and its zip does not
ship (torch alone is ~200 MB). So the algorithm runs ``python -m model_export.adapt`` as a child process of
QGIS's own Python, from a checkout of the repository (docs/guide/adaptation.md says why): found from the
algorithm's "Repository folder", the CHANGEANYWHERE_REPO environment variable, or the folder above the plugin
when the plugin is that checkout's ``changeanywhere_qgis`` (a development install, linked into the profile).
The child runs with the libraries the "Install dependencies" action put in the profile's private folder.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from . import dependencies, pip_install

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
TRAINING_REQUIREMENTS = ["diffusers>=0.30,<0.43", "onnx>=1.16,<1.21"]
REPOSITORY_URL = "https://github.com/changeanywhere-qgis/changeanywhere-qgis"  # metadata.txt's repository
MODELS_FOLDER = ("changeanywhere", "models")  # under the QGIS profile folder
_PERCENT = re.compile(r"(\d{1,3})%\|")


class AdaptationUnavailable(Exception):
    """What is missing for adaptation, and exactly how to get it."""


def has_model_export(folder: Path) -> bool:
    return (folder / "model_export" / "adapt.py").is_file()


def find_repository(given: str | None) -> Path:
    """The checkout that holds model_export/: the given folder, $CHANGEANYWHERE_REPO, or the plugin's parent.

    A folder the user gave is used or refused, never silently replaced by another checkout."""
    if given:
        if has_model_export(Path(given)):
            return Path(given)
        raise AdaptationUnavailable(f"{given} holds no model_export/adapt.py: give the folder of a ChangeAnywhere checkout "
                                    "(the one holding model_export/ and changeanywhere_qgis/).")
    candidates = [Path(os.environ["CHANGEANYWHERE_REPO"])] if os.environ.get("CHANGEANYWHERE_REPO") else []
    candidates.append(Path(__file__).resolve().parents[2])  # <checkout>/changeanywhere_qgis/processing/adaptation.py
    for folder in candidates:
        if has_model_export(folder):
            return folder
    raise AdaptationUnavailable(
        "Adapting the model trains it with PyTorch, which runs from a checkout of the ChangeAnywhere repository, not from "
        f"the plugin zip. Clone it (git clone {REPOSITORY_URL}) and give its folder as \"Repository folder\" (or set the "
        "CHANGEANYWHERE_REPO environment variable to it).")


def child_environment(repository: Path) -> dict:
    """The child's environment: the checkout and the plugin's private library folder on its path."""
    paths = [str(repository)]
    base = dependencies.private_base()
    if base is not None and pip_install.private_folder(base).is_dir():
        paths.append(str(pip_install.private_folder(base)))
    if os.environ.get("PYTHONPATH"):
        paths.append(os.environ["PYTHONPATH"])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "PYTHONUNBUFFERED": "1"}


def torch_install_commands(python: str) -> list[str]:
    """The terminal commands that give this Python the CPU build of PyTorch and the other training libraries."""
    target = None if pip_install.in_virtualenv() else dependencies.private_base()
    where = None if target is None else pip_install.private_folder(target)
    torch_plan = pip_install.InstallPlan(python, ["torch"], where, False, extra_args=["--index-url", CPU_INDEX])
    rest = pip_install.InstallPlan(python, TRAINING_REQUIREMENTS, where, False)
    return [torch_plan.command_line(), rest.command_line()]


def missing_training_libraries(python: str, repository: Path) -> list[str]:
    """The libraries of model_export.adapt that ``python`` cannot import (asked in a child: QGIS never loads torch)."""
    probe = ("import importlib, sys\nmissing = []\nfor m in ('torch', 'diffusers', 'onnx'):\n    try:\n"
             "        importlib.import_module(m)\n    except Exception:\n        missing.append(m)\nprint(','.join(missing))")
    done = subprocess.run([python, "-c", probe], capture_output=True, text=True, env=child_environment(repository),
                          cwd=str(repository), timeout=300, **pip_install._no_window())
    if done.returncode != 0:
        raise AdaptationUnavailable(f"QGIS's Python ({python}) could not be run to look for PyTorch: {done.stderr.strip()[-500:]}")
    return [m for m in done.stdout.strip().split(",") if m]


def require_training(python: str, repository: Path) -> None:
    missing = missing_training_libraries(python, repository)
    if missing:
        commands = "\n".join(f"    {c}" for c in torch_install_commands(python))
        raise AdaptationUnavailable(
            f"Adapting the model needs PyTorch and the training libraries in QGIS's Python ({python}), which lacks "
            f"{', '.join(missing)}. Install the CPU build of PyTorch (and diffusers, onnx) for it from a terminal:\n{commands}\n"
            "then run this algorithm again (no restart needed: it runs in its own process). The rest of the plugin "
            "does not need them.")


def command(python: str, options: dict) -> list[str]:
    """``python -m model_export.adapt`` with the algorithm's options (None and False left out)."""
    argv = [python, "-m", "model_export.adapt"]
    for name, value in options.items():
        if value is None or value is False:
            continue
        argv.append(f"--{name}")
        if value is not True:
            argv.append(str(value))
    return argv


def progress_percent(line: str) -> int | None:
    """The percentage of a tqdm bar line (``adapting:  40%|████  | 2/5 ...``), or None."""
    found = _PERCENT.search(line)
    return int(found.group(1)) if found else None


def user_models_folder() -> Path | None:
    """Where adapted packages go by default, and where the dock looks for them: the QGIS profile's folder."""
    try:
        from qgis.core import QgsApplication
    except ImportError:
        return None
    settings = QgsApplication.qgisSettingsDirPath()
    return Path(settings).joinpath(*MODELS_FOLDER) if settings else None


def model_packages(folder: Path | None) -> list[Path]:
    """The model packages (folders holding model.json) directly in ``folder``, by name; none when it is missing."""
    if folder is None or not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / "model.json").is_file())

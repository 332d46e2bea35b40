"""The "Install dependencies" action: its plan (interpreter, target folder, pins, GPU build) and real pip
runs in QGIS's task manager, installing a fake missing package from a local wheel into a temporary
plugin-private folder (never the real site-packages)."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import zipfile
from pathlib import Path

import pytest
from qgis.core import QgsApplication
from qgis_helpers import wait_until

from changeanywhere_qgis.gui.install_task import InstallDependenciesTask
from changeanywhere_qgis.processing import dependencies, pip_install

REPO = Path(__file__).resolve().parents[2]
FAKE = "changeanywhere_fake_dep"


def _fake_wheel(folder: Path, version: str = "1.0") -> Path:
    """A real (tiny, pure-Python) wheel of a package that no index has."""
    folder.mkdir(parents=True, exist_ok=True)
    dist = f"{FAKE}-{version}.dist-info"
    wheel = folder / f"{FAKE}-{version}-py3-none-any.whl"
    files = {
        f"{FAKE}/__init__.py": f"VERSION = {version!r}\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {FAKE.replace('_', '-')}\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: changeanywhere-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{dist}/RECORD"] = "".join(f"{name},,\n" for name in files) + f"{dist}/RECORD,,\n"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return wheel


@pytest.fixture()
def local_index(tmp_path, monkeypatch):
    """pip sees only a folder with the fake wheel (no configured index, no network)."""
    wheels = tmp_path / "wheels"
    _fake_wheel(wheels)
    for variable in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", str(tmp_path / "no-pip.conf"))
    return ["--no-index", "--find-links", str(wheels)]


@pytest.fixture()
def clean_import():
    saved = list(sys.path)
    yield
    sys.path[:] = saved
    sys.modules.pop(FAKE, None)
    importlib.invalidate_caches()


def _run(task: InstallDependenciesTask) -> dict:
    outcome: dict = {}
    task.done.connect(lambda m: outcome.update(ok=True, message=m))
    task.failed.connect(lambda m: outcome.update(ok=False, message=m))
    progress: list[float] = []
    task.progressChanged.connect(progress.append)
    QgsApplication.taskManager().addTask(task)
    assert wait_until(lambda: "ok" in outcome, timeout=240), "the install task did not finish"
    outcome["progress"] = max(progress, default=0.0)
    return outcome


def test_installs_a_missing_module_into_the_private_folder_in_a_task(tmp_path, local_index, clean_import):
    base = tmp_path / "profile" / "python"
    plan = pip_install.InstallPlan(sys.executable, [FAKE.replace("_", "-")], pip_install.private_folder(base), False,
                                   ["a note for the log"], local_index)
    assert importlib.util.find_spec(FAKE) is None  # missing before
    outcome = _run(InstallDependenciesTask(plan))
    assert outcome["ok"], outcome["message"]
    assert "Restart QGIS" in outcome["message"] and str(plan.target) in outcome["message"]
    assert outcome["progress"] == 100
    assert plan.target == base / "changeanywhere-libs" / f"py{sys.version_info[0]}.{sys.version_info[1]}"
    assert (plan.target / FAKE / "__init__.py").is_file()
    assert not plan.target.with_name(plan.target.name + ".new").exists()
    assert importlib.util.find_spec(FAKE) is None  # nothing went to the real site-packages
    assert pip_install.activate_private_folder(base) == plan.target  # what the plugin does when it loads
    assert sys.path[0] == str(plan.target) and importlib.import_module(FAKE).VERSION == "1.0"


def test_the_log_gets_the_notes_and_every_pip_line(tmp_path, local_index):
    plan = pip_install.InstallPlan(sys.executable, [FAKE.replace("_", "-")], tmp_path / "libs", False, ["GPU note"], local_index)
    task = InstallDependenciesTask(plan)
    assert _run(task)["ok"]
    assert task.lines[0] == "GPU note"
    assert task.lines[1].startswith("$ ") and "--target" in task.lines[1]
    assert any(line.startswith("Successfully installed changeanywhere-fake-dep-1.0") for line in task.lines)


def test_a_failed_install_keeps_what_was_there(tmp_path, local_index):
    target = tmp_path / "libs"
    first = pip_install.InstallPlan(sys.executable, [FAKE.replace("_", "-")], target, False, [], local_index)
    assert _run(InstallDependenciesTask(first))["ok"]
    impossible = pip_install.InstallPlan(sys.executable, [f"{FAKE.replace('_', '-')}==2.0"], target, False, [], local_index)
    outcome = _run(InstallDependenciesTask(impossible))
    assert not outcome["ok"] and "nothing was changed" in outcome["message"]
    assert "2.0" in outcome["message"]  # pip's own last lines say what it could not find
    assert (target / FAKE / "__init__.py").read_text() == "VERSION = '1.0'\n"
    assert not target.with_name(target.name + ".new").exists()


def test_cancel_stops_pip_and_changes_nothing(tmp_path, local_index):
    plan = pip_install.InstallPlan(sys.executable, [FAKE.replace("_", "-")], tmp_path / "libs", False, [], local_index)
    ok, message = pip_install.run_pip(plan, lambda line: None, lambda f: None, lambda: True)
    assert not ok and "cancelled" in message
    assert not (tmp_path / "libs").exists() and not (tmp_path / "libs.new").exists()


def test_a_python_without_pip_gets_the_fix(tmp_path):
    plan = pip_install.InstallPlan("/bin/false", ["numpy"], tmp_path / "libs", False)
    ok, message = pip_install.run_pip(plan, lambda line: None, lambda f: None, lambda: False)
    assert not ok and "has no pip" in message and "Install dependencies again" in message
    if sys.platform.startswith("linux"):
        assert "apt install python3-pip" in message


def test_a_staged_install_is_moved_into_place_at_the_next_start(tmp_path, clean_import):
    folder = pip_install.private_folder(tmp_path)
    staged = folder.with_name(folder.name + ".new")
    (staged / FAKE).mkdir(parents=True)
    (staged / FAKE / "__init__.py").write_text("VERSION = 'staged'\n")
    (staged / ".complete").write_text("")
    (folder / "old").mkdir(parents=True)
    assert pip_install.activate_private_folder(tmp_path) == folder
    assert not staged.exists() and not (folder / "old").exists()
    assert importlib.import_module(FAKE).VERSION == "staged"


def test_no_folder_no_path_change(tmp_path):
    before = list(sys.path)
    assert pip_install.activate_private_folder(tmp_path) is None and pip_install.activate_private_folder(None) is None
    assert sys.path == before


# --- the plan ------------------------------------------------------------------------------------------
def test_outside_a_venv_the_plan_targets_the_profile_and_pins_qgis_numpy(tmp_path, monkeypatch):
    import numpy

    monkeypatch.setattr(sys, "base_prefix", sys.prefix)  # as in QGIS: its Python is no venv
    plan = pip_install.plan(tmp_path, gpu=False)
    assert plan.target == pip_install.private_folder(tmp_path)
    args = plan.pip_args()
    assert args[:4] == [plan.python, "-m", "pip", "install"] and args[args.index("--target") + 1] == str(plan.target)
    assert "--user" not in args and "--break-system-packages" not in args
    assert f"numpy=={numpy.__version__}" in plan.requirements  # GDAL's bindings keep their numpy
    assert "onnxruntime>=1.17,<2" in plan.requirements and not any("gpu" in r for r in plan.requirements)
    import sysconfig

    managed = (Path(sysconfig.get_path("stdlib")) / "EXTERNALLY-MANAGED").is_file()
    assert pip_install.externally_managed() == managed
    assert any("PEP 668" in note for note in plan.notes) == managed
    assert f'"{plan.requirements[0]}"' in plan.command_line()  # quoted for a shell


def test_in_a_venv_the_plan_installs_into_it(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "base_prefix", "/somewhere/else")
    plan = pip_install.plan(tmp_path, gpu=False)
    assert plan.target is None and "--target" not in plan.pip_args()


def test_qgis_python_is_an_interpreter_of_this_version(monkeypatch):
    import subprocess

    monkeypatch.setattr(sys, "executable", str(Path(sys.exec_prefix) / "bin" / "qgis"))  # as inside QGIS
    python = dependencies.qgis_python()
    ran = subprocess.run([python, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True, timeout=60)
    assert ran.stdout.strip() == str(tuple(sys.version_info[:2]))


def test_the_pins_are_requirements_txt():
    from packaging.markers import default_environment
    from packaging.requirements import Requirement

    pinned = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate(default_environment()):
                pinned[req.name] = req.specifier
    for module, text in dependencies.REQUIREMENTS.items():
        req = Requirement(text)
        name = "onnxruntime-gpu" if req.name == "onnxruntime" and "onnxruntime" not in pinned else req.name
        assert req.specifier == pinned[name], f"{module}: {text} but requirements.txt has {name}{pinned[name]}"


# --- the GPU build --------------------------------------------------------------------------------------
REPORT = REPO / "tests" / "data" / "pip_report_onnxruntime_gpu.json"  # pip install --dry-run --report, trimmed


def test_the_cuda_major_comes_from_the_release_metadata():
    report = json.loads(REPORT.read_text())
    assert pip_install.release_cuda_major(report) == ("1.31.1", 13)
    assert pip_install.release_cuda_major({"install": []}) is None
    older = {"install": [{"metadata": {"name": "onnxruntime-gpu", "version": "1.17.1", "requires_dist": ["numpy"]}}]}
    assert pip_install.release_cuda_major(older) == ("1.17.1", None)


def test_the_report_agrees_with_the_installed_release():
    """Where onnxruntime-gpu of the report's version is installed, its build info names the same CUDA."""
    try:
        from importlib.metadata import version

        from onnxruntime.capi import build_and_package_info as info
    except ImportError:
        pytest.skip("no onnxruntime here")
    report = json.loads(REPORT.read_text())
    release, major = pip_install.release_cuda_major(report)
    if getattr(info, "package_name", "") != "onnxruntime-gpu" or version("onnxruntime-gpu") != release:
        pytest.skip(f"onnxruntime-gpu {release} is not the installed release")
    assert int(info.cuda_version.split(".")[0]) == major


def test_driver_cuda_from_nvidia_smi():
    header = ("| NVIDIA-SMI 550.54.15              Driver Version: 550.54.15      CUDA Version: 12.4     |\n"
              "|-----------------------------------------+------------------------+----------------------+\n")
    assert pip_install.driver_cuda_version(header) == (12, 4)
    assert pip_install.driver_cuda_version("") is None


def test_gpu_choice_names_the_cuda_major():
    gpu, notes = pip_install.gpu_choice(True, ("1.31.1", 13), (13, 0))
    assert gpu and "onnxruntime-gpu 1.31.1 needs CUDA 13" in notes[0]
    gpu, notes = pip_install.gpu_choice(True, ("1.31.1", 13), (12, 4))
    assert not gpu and "needs CUDA 13" in notes[0] and "12.4" in notes[0] and "CPU build" in notes[0]
    gpu, notes = pip_install.gpu_choice(False, None, None)
    assert not gpu and "No NVIDIA GPU" in notes[0]
    assert pip_install.requirements(gpu=True)[0] == pip_install.GPU_REQUIREMENT
    assert "[cuda,cudnn]" in pip_install.GPU_REQUIREMENT  # the CUDA runtime and cuDNN come with it


# --- the dock ---------------------------------------------------------------------------------------------
def test_the_dock_offers_the_action_and_runs_it(qgis_iface, clean_project, tmp_path, local_index, monkeypatch, clean_import):
    from changeanywhere_qgis.gui.dock import ChangeAnywhereDock

    monkeypatch.setitem(dependencies.REQUIREMENTS, FAKE, FAKE.replace("_", "-"))
    target = tmp_path / "libs"
    monkeypatch.setattr(pip_install, "plan", lambda base, **kw: pip_install.InstallPlan(
        sys.executable, [FAKE.replace("_", "-")], target, False, [], local_index))
    dock = ChangeAnywhereDock(qgis_iface)
    try:
        assert not dock.install_button.isHidden() and not dock.generate_button.isEnabled()
        assert FAKE in dock.status_label.text() and "Install dependencies" in dock.status_label.text()
        dock.install_button.click()
        assert dock.install_task is not None and dock.install_button.text() == "Cancel installing"
        assert wait_until(lambda: dock.install_task is None, timeout=240), "the install task did not finish"
        assert "Restart QGIS" in dock.status_label.text(), dock.status_label.text()
        assert dock.install_button.text() == "Restart QGIS to finish" and not dock.install_button.isEnabled()
        assert dock.progress.value() == 100
        assert (target / FAKE / "__init__.py").is_file()
        assert any("Restart QGIS" in m for m in qgis_iface.messageBar().get_messages(3))
    finally:
        dock.cleanup()
        dock.deleteLater()


def test_the_dock_hides_the_action_when_nothing_is_missing(qgis_iface, clean_project):
    from changeanywhere_qgis.gui.dock import ChangeAnywhereDock

    dock = ChangeAnywhereDock(qgis_iface)
    try:
        assert dependencies.missing_modules() == [] and dock.install_button.isHidden()
    finally:
        dock.cleanup()
        dock.deleteLater()

"""The boundaries that keep the architecture visible:

- the engine runs where QGIS is absent: no module under engine/ imports qgis;
- the plugin never imports the training side: no module under changeanywhere_qgis/ imports
  model_export or torch (the plugin zip ships neither);
- the engine's rooms talk through each other's ``__init__`` exports, never another room's private helpers;
- the engine's top level holds only the shared parts and the pipeline's entry points, and no two modules of a
  room repeat a topic in their names (no ``dataset_*.py``, no ``*_events.py`` side by side).
"""

import ast
import subprocess
import sys
from pathlib import Path

PLUGIN = Path(__file__).resolve().parents[1] / "changeanywhere_qgis"
ENGINE = PLUGIN / "engine"
ENGINE_TOP_LEVEL = {"__init__.py", "errors.py", "progress.py", "pipeline.py"}


def _imports(path: Path) -> list[tuple[str, int, list[str]]]:
    """(module as written, relative level, imported names) of every import statement in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(a.name, 0, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.module or "", node.level, [a.name for a in node.names]))
    return found


def _absolute(path: Path, module: str, level: int) -> str:
    """The dotted name an import refers to, from the repository root."""
    if level == 0:
        return module
    package = list(path.relative_to(PLUGIN.parent).with_suffix("").parts)[:-1]
    base = package[: len(package) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def test_no_engine_module_imports_qgis():
    offenders = [f"{path.relative_to(ENGINE)}: {module}" for path in ENGINE.rglob("*.py") for module, level, _ in _imports(path)
                 if level == 0 and module.split(".")[0] in ("qgis", "PyQt5", "PyQt6")]
    assert not offenders, offenders


def test_no_plugin_module_imports_the_training_side():
    offenders = [f"{path.relative_to(PLUGIN)}: {module}" for path in PLUGIN.rglob("*.py") for module, level, _ in _imports(path)
                 if level == 0 and module.split(".")[0] in ("model_export", "torch")]
    assert not offenders, offenders


def test_rooms_use_each_others_exports_only():
    """An import into another room names the room (its __init__), and never a name starting with '_'."""
    offenders = []
    for path in ENGINE.rglob("*.py"):
        own = path.relative_to(ENGINE).parts[0] if len(path.relative_to(ENGINE).parts) > 1 else None
        for module, level, names in _imports(path):
            target = _absolute(path, module, level).split(".")
            if target[:2] != ["changeanywhere_qgis", "engine"] or len(target) < 3:
                continue
            room = target[2]
            if room == own or f"{room}.py" in ENGINE_TOP_LEVEL:
                continue
            if len(target) > 3 or any(n.startswith("_") for n in names):
                offenders.append(f"{path.relative_to(ENGINE)}: {'.'.join(target)} {names}")
    assert not offenders, offenders


def test_engine_top_level_and_room_names():
    top = {p.name for p in ENGINE.glob("*.py")}
    assert top <= ENGINE_TOP_LEVEL, f"modules that belong in a room: {sorted(top - ENGINE_TOP_LEVEL)}"
    for room in [p for p in ENGINE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()]:
        assert ast.get_docstring(ast.parse((room / "__init__.py").read_text())), f"{room.name}/__init__.py says what the room is for"
        stems = [p.stem for p in room.glob("*.py") if p.stem != "__init__"]
        repeated = [s for s in stems if s.startswith(room.name + "_") or s.endswith("_" + room.name)]
        assert not repeated, f"{room.name}/: the room already names the topic: {repeated}"
        for word in {part for s in stems for part in s.split("_")}:
            sharing = [s for s in stems if s.startswith(word + "_") or s.endswith("_" + word)]
            assert len(sharing) < 2, f"{room.name}/: {sharing} share the topic {word!r}; give them a room or better names"


def _run_blocked(blocked: tuple[str, ...], imports: str) -> subprocess.CompletedProcess:
    # A meta-path finder that refuses the blocked packages proves the import chain never reaches them.
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, *a):\n"
        f"        if name.split('.')[0] in {blocked!r}: raise ImportError(name + ' is blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        f"import {imports}\n"
        "print('ok')\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PLUGIN.parent)


def test_engine_and_cli_import_with_qgis_blocked():
    done = _run_blocked(("qgis",), "changeanywhere_qgis.engine.pipeline, changeanywhere_qgis.__main__")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_every_plugin_module_outside_qgis_adapters_imports_without_torch():
    modules = sorted(".".join(p.relative_to(PLUGIN.parent).with_suffix("").parts).removesuffix(".__init__")
                     for p in [*ENGINE.rglob("*.py"), *(PLUGIN / "cli").rglob("*.py")])
    done = _run_blocked(("torch", "model_export", "qgis"), ", ".join(modules))
    assert done.returncode == 0, done.stderr

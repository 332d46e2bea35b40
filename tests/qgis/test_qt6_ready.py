"""metadata.txt says supportsQt6=True. No Qt 6 build of QGIS can be installed from Debian's packages
(sid has QGIS 3.44 on Qt 5, experimental none; checked with apt-cache, README "QGIS versions tested"),
so what QGIS 4 needs is checked on the source: every Qt import goes through qgis.PyQt, every enum of Qt
and QGIS is reached through its enum's name (PyQt6 and QGIS 4 drop the short forms), no exec_()."""

from __future__ import annotations

import ast
import configparser
import enum
import importlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "changeanywhere_qgis"
QT_BINDINGS = ("PyQt5", "PyQt6", "PySide2", "PySide6", "sip")


def _sources():
    return sorted(p for p in PLUGIN.rglob("*.py") if "__pycache__" not in p.parts)


def _is_enum_type(obj) -> bool:
    return isinstance(obj, type) and (issubclass(obj, enum.Enum) or type(obj).__name__ == "enumtype")


def _is_enum_member(obj) -> bool:
    return isinstance(obj, enum.Enum) or type(type(obj)).__name__ == "enumtype"


def _qgis_names(tree) -> dict:
    """Names a module imports from qgis.* (Qt through qgis.PyQt, and QGIS's own classes)."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("qgis"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                if hasattr(module, alias.name):
                    names[alias.asname or alias.name] = getattr(module, alias.name)
    return names


def _chain(node):
    """Name.attr.attr... as (name, [attrs]), or None."""
    attrs = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    return (node.id, attrs[::-1]) if isinstance(node, ast.Name) else None


def unscoped_enums(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = _qgis_names(tree)
    found = set()
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or isinstance(parents.get(node), ast.Attribute):
            continue  # only whole chains
        chain = _chain(node)
        if chain is None or chain[0] not in names:
            continue
        obj = names[chain[0]]
        for attr in chain[1]:
            holder, obj = obj, getattr(obj, attr, None)
            if obj is None:
                break
            if _is_enum_member(obj) and not _is_enum_type(holder):
                found.add(f"{path.relative_to(REPO)}:{node.lineno}: {chain[0]}.{'.'.join(chain[1])} "
                          f"(write {chain[0]}.{type(obj).__name__}.{attr})")
                break
    return sorted(found)


def test_every_qt_import_goes_through_qgis_pyqt():
    offenders = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            offenders += [f"{path.relative_to(REPO)}:{node.lineno}: {m}" for m in modules if m.split(".")[0] in QT_BINDINGS]
    assert not offenders, offenders


def test_every_enum_is_scoped():
    offenders = [line for path in _sources() for line in unscoped_enums(path)]
    assert not offenders, offenders


def test_the_scan_finds_short_forms(tmp_path):
    """The scan itself: it flags the short forms that Qt 6 and QGIS 4 reject, and passes the scoped ones."""
    sample = PLUGIN / "_scan_sample_for_tests.py"
    sample.write_text("from qgis.core import Qgis, QgsTask\nfrom qgis.PyQt.QtCore import Qt\n"
                      "a = Qt.AlignLeft\nb = Qgis.Warning\nc = QgsTask.CanCancel\n"
                      "d = Qt.AlignmentFlag.AlignLeft\ne = Qgis.MessageLevel.Warning\nf = QgsTask.Flag.CanCancel\n")
    try:
        found = unscoped_enums(sample)
    finally:
        sample.unlink()
    assert [line.split(": ")[1].split(" ")[0] for line in found] == ["Qt.AlignLeft", "Qgis.Warning", "QgsTask.CanCancel"]


def test_no_exec_underscore():
    offenders = [f"{p.relative_to(REPO)}" for p in _sources() if ".exec_(" in p.read_text(encoding="utf-8")]
    assert not offenders, offenders


def test_metadata_claims_qt6_only_with_these_checks():
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(REPO / "metadata.txt", encoding="utf-8")
    assert parser["general"].get("supportsQt6", "False").strip() == "True"

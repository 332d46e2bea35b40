"""The engine must run where QGIS is absent: no module under engine/ may import qgis."""

import ast
import subprocess
import sys
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "changeanywhere_qgis" / "engine"


def test_no_engine_module_imports_qgis():
    offenders = []
    for path in ENGINE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in ("qgis", "PyQt5", "PyQt6")]
    assert not offenders, offenders


def test_engine_and_cli_import_with_qgis_blocked():
    # A meta-path finder that refuses qgis proves the import chain never reaches it.
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, *a):\n"
        "        if name.split('.')[0] == 'qgis': raise ImportError('qgis is blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import changeanywhere_qgis.engine.pipeline, changeanywhere_qgis.__main__\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ENGINE.parents[1])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"

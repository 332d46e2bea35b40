"""The architecture as contracts that fail a test when broken (`.importlinter`, run by import-linter): the engine
knows nothing of QGIS, Qt or the adapters; the plugin never imports the training side; no import circle at any depth
of either package (every import counts, inside functions too)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_import_contracts_hold():
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint), "--no-cache", str(REPO / ".importlinter")], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    report = done.stdout[done.stdout.find("Contracts"):]  # past the banner
    assert done.returncode == 0, report + done.stderr
    assert "0 broken" in report and "BROKEN" not in report, report

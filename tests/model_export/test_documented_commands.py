"""Every model_export command the repository writes down runs: ``python -m model_export.X`` and
``python model_export/X.py`` as found in the README, docs/, the Makefiles, scripts/, research/, benchmarks/, the
plugin and the tests each answer ``--help``. The old top-level names (``model_export.train``, ``.adapt``,
``export_onnx.py`` ...) are kept as thin entry points into the packages, so this covers them while they are written
anywhere; the packages' own paths are covered where the Makefile and the tests use them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WRITTEN_IN = ["README.md", "Makefile", "model_export/Makefile.inc", "docs", "scripts", "research", "benchmarks",
              "changeanywhere_qgis", "tests"]
TEXT = {".md", ".py", ".sh", ".inc", ".json", ".txt", ""}
MODULE = re.compile(r"-m\W{0,4}(model_export(?:\.\w+)+)")  # `-m model_export.train`, ["-m", "model_export.adapt"]
SCRIPT = re.compile(r"(?:python3?|PY\)|PY\"?)\s+(model_export/[\w/]+\.py)")  # python / $(PY) / "$PY" model_export/X.py


def written_commands() -> tuple[set[str], set[str]]:
    modules, scripts = set(), set()
    for place in WRITTEN_IN:
        path = REPO / place
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file() and p.suffix in TEXT]
        for f in files:
            if "__pycache__" in f.parts or f == Path(__file__):
                continue
            text = f.read_text(errors="replace")
            modules |= set(MODULE.findall(text))
            scripts |= set(SCRIPT.findall(text))
    return modules, scripts


# Each module runs as `python -m` runs it (runpy, __main__), all in one interpreter: torch is imported once.
RUN_ALL = """
import contextlib, io, runpy, sys
for name in sys.argv[1:]:
    sys.argv = [name, "--help"]
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_module(name, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as e:
        code = e.code
    except Exception as e:  # e.g. no such module: reported by name, the others still run
        code = type(e).__name__
    print(name, code, "usage:" in out.getvalue(), flush=True)
"""


def test_the_search_finds_the_commands_users_run():
    modules, scripts = written_commands()
    # the plugin's adaptation, the Makefile's training and the report: if these are missing the search is broken
    assert {"model_export.adapt", "model_export.evaluate"} <= modules, sorted(modules)
    assert "model_export/export_onnx.py" in scripts, sorted(scripts)


def test_every_written_module_command_answers_help():
    modules, _ = written_commands()
    done = subprocess.run([sys.executable, "-c", RUN_ALL, *sorted(modules)], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = dict((line.split()[0], line.split()[1:]) for line in done.stdout.splitlines() if line.startswith("model_export"))
    failed = {name: r for name, r in results.items() if r != ["0", "True"]}
    assert set(results) == modules and not failed, f"commands that do not run: {failed}\n{done.stderr[-3000:]}"


def test_every_written_script_answers_help():
    _, scripts = written_commands()
    for script in sorted(scripts):
        done = subprocess.run([sys.executable, script, "--help"], cwd=REPO, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0 and "usage:" in done.stdout, f"{script}: {done.stderr[-3000:]}"

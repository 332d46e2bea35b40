#!/usr/bin/env python3
"""Two checks of scripts/test_qgis_lts.sh, run with QGIS's own Python (no venv) in the QGIS 3.40 chroot.

  install      the plugin's "Install dependencies" action as QGIS runs it: the plan for this Python
               (Debian 13's is externally managed: a plugin-private folder in the profile) and the
               InstallDependenciesTask in QGIS's task manager, with a headless QgsApplication.
  algorithms   qgis_process with the user's default profile and nothing on PYTHONPATH: the installed
               plugin enabled, then every algorithm of its provider run on the bundled sample. The
               libraries come only from what `install` put in the profile.

Usage: qgis_lts_checks.py install|algorithms --plugin PLUGIN_DIR --tree TESTS_TREE [--profile DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

QGIS_PROCESS = "/usr/bin/qgis_process.bin"


def install(plugin: Path, profile: Path) -> int:
    from qgis.core import QgsApplication
    from qgis.PyQt.QtCore import QCoreApplication

    # QGIS's own names, so that this script's profile is QGIS's default one (the one qgis_process uses next)
    QCoreApplication.setOrganizationName("QGIS")
    QCoreApplication.setApplicationName("QGIS3")
    QgsApplication.setPrefixPath("/usr", True)
    app = QgsApplication([], False)
    app.initQgis()
    sys.path.insert(0, str(plugin.parent))
    from changeanywhere_qgis.gui.install_task import InstallDependenciesTask
    from changeanywhere_qgis.processing import dependencies, pip_install

    base = dependencies.private_base()
    plan = pip_install.plan(base)
    print(f"QGIS's Python: {plan.python}; externally managed: {pip_install.externally_managed()}; target: {plan.target}")
    for note in plan.notes:
        print("note:", note)
    if plan.target is None or not plan.target.is_relative_to(profile):
        print(f"error: the libraries would go to {plan.target}, not into the profile {profile}", file=sys.stderr)
        return 1
    task = InstallDependenciesTask(plan)
    outcome: dict = {}
    task.done.connect(lambda m: outcome.update(ok=True, message=m))
    task.failed.connect(lambda m: outcome.update(ok=False, message=m))
    progress: list[float] = []
    task.progressChanged.connect(progress.append)
    started = time.monotonic()
    QgsApplication.taskManager().addTask(task)
    while "ok" not in outcome and time.monotonic() - started < 900:
        app.processEvents()
        time.sleep(0.05)
    print("\n".join(task.lines[-6:]))
    print(f"task: {outcome} in {time.monotonic() - started:.0f} s, progress reached {max(progress, default=0):.0f} %")
    ok = outcome.get("ok") and (plan.target / "onnxruntime").is_dir() and "Restart QGIS" in outcome.get("message", "")
    app.exitQgis()
    return 0 if ok else 1


def _qgis_process(args: list[str], timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.setdefault("XDG_RUNTIME_DIR", "/tmp/runtime-root")
    Path(env["XDG_RUNTIME_DIR"]).mkdir(mode=0o700, exist_ok=True)
    return subprocess.run([QGIS_PROCESS, *args], env=env, capture_output=True, text=True, timeout=timeout)


def algorithms(plugin: Path, tree: Path, out: Path) -> int:
    samples = plugin / "samples"
    tiny = tree / "tests" / "data" / "tiny_model"
    label, image, changes = samples / "houston_label.tif", samples / "houston_image.tif", samples / "houston_changes.geojson"
    runs = {
        # the bundled model (no MODEL), as a user's first run; 2 steps keep it short
        "changeanywhere:generatechangesample": [
            f"SEMANTIC={label}", f"IMAGE={image}", f"CHANGES={changes}", "CLASS_FIELD=target", "STEPS=2", "SEED=4",
            "DEVICE=1", *(f"OUTPUT_{k}={out / 'generate' / f}" for k, f in (
                ("PRE_IMAGE", "pre.tif"), ("POST_IMAGE", "post.tif"), ("PRE_MAP", "pre_map.tif"),
                ("POST_MAP", "post_map.tif"), ("CHANGE_MASK", "mask.tif")))],
        "changeanywhere:simulatechangeevents": [
            f"SEMANTIC={label}", "RANDOM_EVENTS=true", f"MODEL={tiny}", "SEED=9",
            f"OUTPUT_POST_MAP={out / 'simulate' / 'post_map.tif'}", f"OUTPUT_CHANGE_MASK={out / 'simulate' / 'mask.tif'}",
            f"OUTPUT_CHANGES={out / 'simulate' / 'changes.gpkg'}"],
        "changeanywhere:generatechangedataset": [
            f"SEMANTIC={label}", f"IMAGES={image}", "COUNT=2", "TILE=128", "STEPS=2", f"MODEL={tiny}", "WORKERS=1",
            "DEVICE=1", f"OUTPUT={out / 'dataset'}"],
        "changeanywhere:modelinformation": ["DEVICE=1", f"OUTPUT={out / 'model.txt'}"],
        # the committed tiny detector on the real image and the post-event image generated above (same grid)
        "changeanywhere:detectchanges": [
            f"BEFORE={image}", f"AFTER={out / 'generate' / 'post.tif'}", f"DETECTOR={tree / 'tests' / 'data' / 'tiny_detector'}",
            *(f"OUTPUT_{k}={out / 'detect' / f}" for k, f in (
                ("PROBABILITY", "probability.tif"), ("MASK", "mask.tif"), ("POLYGONS", "changes.gpkg")))],
    }
    # Installed from the zip, the plugin has no repository checkout to train from (and this Python no PyTorch):
    # adaptation must refuse, saying how to get one, and write nothing.
    refusals = {
        "changeanywhere:adaptmodel": ([f"SEMANTIC={label}", f"IMAGE={image}", f"MODEL={tiny}", "STEPS=1",
                                       f"OUTPUT={out / 'adapted'}"], "checkout of the ChangeAnywhere repository"),
        "changeanywhere:traindetector": ([f"DATASET={tiny}", "STEPS=1", f"OUTPUT={out / 'adapted-detector'}"],
                                         "checkout of the ChangeAnywhere repository"),
    }
    enabled = _qgis_process(["plugins", "enable", plugin.name])
    if enabled.returncode != 0 and "already enabled" not in enabled.stdout + enabled.stderr:
        print(enabled.stdout + enabled.stderr, file=sys.stderr)
        return 1
    listed = _qgis_process(["--json", "list"])
    providers = json.loads(listed.stdout).get("providers", {})
    found = sorted(providers.get("changeanywhere", {}).get("algorithms", {}))
    if found != sorted([*runs, *refusals]):
        print(f"error: the provider lists {found}, this check runs {sorted([*runs, *refusals])}: add the new algorithm's "
              "run here", file=sys.stderr)
        return 1
    failed = 0
    for alg, (params, says) in refusals.items():
        ran = _qgis_process(["--json", "run", alg, "--", *params])
        written = [p for p in out.glob("adapted*")]
        if ran.returncode == 0 or says not in ran.stdout + ran.stderr or written:
            failed += 1
            print(f"FAILED {alg}: expected a refusal that says {says!r} and nothing written, got exit {ran.returncode}, "
                  f"files {written}:\n{ran.stdout[-2000:]}\n{ran.stderr[-2000:]}", file=sys.stderr)
        else:
            print(f"ok {alg}: refused as expected ({says})")
    for alg, params in runs.items():
        started = time.monotonic()
        ran = _qgis_process(["--json", "run", alg, "--", *params])
        seconds = time.monotonic() - started
        if ran.returncode != 0:
            failed += 1
            print(f"FAILED {alg} ({seconds:.0f} s):\n{ran.stdout[-3000:]}\n{ran.stderr[-3000:]}", file=sys.stderr)
            continue
        results = json.loads(ran.stdout)["results"]
        files = [v for v in results.values() if isinstance(v, str) and v.startswith(str(out))]
        missing = [f for f in files if not Path(f).exists()]
        if missing or not files:
            failed += 1
            print(f"FAILED {alg}: outputs missing: {missing or 'none reported'}", file=sys.stderr)
            continue
        print(f"ok {alg} ({seconds:.0f} s): {len(files)} outputs")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("check", choices=("install", "algorithms"))
    parser.add_argument("--plugin", type=Path, required=True, help="the installed plugin folder")
    parser.add_argument("--tree", type=Path, required=True, help="the copy of the repository's tests")
    parser.add_argument("--profile", type=Path, default=Path.home() / ".local/share/QGIS/QGIS3/profiles/default",
                        help="the QGIS profile (install: where the libraries go)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/changeanywhere-qgis-process"))
    args = parser.parse_args()
    if args.check == "install":
        return install(args.plugin, args.profile)
    return algorithms(args.plugin, args.tree, args.out)


if __name__ == "__main__":
    sys.exit(main())

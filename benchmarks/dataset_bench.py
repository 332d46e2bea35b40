"""Dataset generation speed for `make bench`: samples per minute with 1 and 2 local workers, and the
projected time of a 100,000-sample dataset at the engine's defaults (sampler, steps, mixing, precision: those a
`dataset` command without options uses) on this machine.

    python -m benchmarks.dataset_bench [--model DIR] [--samples 8] [--workers 1 2] [--steps N] [--sampler S]
                                       [--mixing M] [--precision P] [--out FILE.md]
    python -m benchmarks.dataset_bench --dask-check DATASET [--samples 10]

The 100,000-sample projection of issue #34 comes from a measured 1,000-sample run:
``python -m benchmarks.dataset_bench --samples 1000 --workers 2 --out docs/reference/dataset-benchmark.md``.

``benchmarks/run.py`` calls :func:`dataset_section` and appends the markdown it returns.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from changeanywhere_qgis.engine.dataset import DatasetSettings, generate_dataset
from changeanywhere_qgis.engine.dataset.job import LEGACY_SETTINGS
from changeanywhere_qgis.engine.diffusion import (DEFAULT_MIXING, DEFAULT_PRECISION, DEFAULT_SAMPLER, DEFAULT_STEPS, MIXINGS,
                                                  PRECISIONS, SAMPLERS, default_model_dir, read_manifest)
from changeanywhere_qgis.engine.progress import Progress

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "changeanywhere_qgis" / "samples"
TARGET = 100_000


def measure(model_dir: Path, samples: int = 8, steps: int = DEFAULT_STEPS, tile: int | None = None, workers=(1, 2),
            sampler: str = DEFAULT_SAMPLER, mixing: str = DEFAULT_MIXING, precision: str = DEFAULT_PRECISION) -> dict:
    """Generate the same ``samples`` samples (bundled map and image, the model's tile) with each worker count."""
    manifest = read_manifest(model_dir, verify_hashes=False)
    tile = tile or int(manifest["tile"]["size"])
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in workers:
            settings = DatasetSettings(count=samples, tile=tile, steps=steps, seed=0, sampler=sampler, mixing=mixing,
                                       precision=precision)
            done: list[float] = []  # when each sample finished

            def report(fraction: float, message: str) -> None:
                if "/" in message and message.endswith("samples") and len(done) < int(message.split("/")[0]):
                    done.append(time.perf_counter())

            result = generate_dataset(SAMPLES / "houston_label.tif", Path(tmp) / f"w{n}", settings,
                                      images=SAMPLES / "houston_image.tif", model=model_dir, workers=n, progress=Progress(report))
            # steady state: from the moment every worker has finished its first sample to the last sample
            steady = (len(done) - n) / (done[-1] - done[n - 1]) * 60 if len(done) > n and done[-1] > done[n - 1] else None
            runs[n] = {"seconds": result["seconds"], "samples_per_minute": result["samples_per_minute"],
                       "steady_samples_per_minute": steady, "threads_per_worker": result["threads_per_sample"]}
    rate = lambda r: r["steady_samples_per_minute"] or r["samples_per_minute"]  # noqa: E731
    best = max(rate(r) for r in runs.values())
    return {"model": manifest["name"], "tile": tile, "model_tile": int(manifest["tile"]["size"]), "steps": steps, "sampler": sampler,
            "mixing": mixing, "precision": precision, "samples": samples, "cores": os.cpu_count(), "runs": runs,
            "scaling": rate(runs[workers[-1]]) / rate(runs[workers[0]]) if len(workers) > 1 else None,
            "hours_for_target": TARGET / best / 60.0}


def _setting_words(m: dict) -> str:
    """'50 DDIM steps, latent mixing, float32 denoiser (the engine's defaults)', or '(not the engine's defaults)'."""
    sampler = {"ddim": "DDIM", "dpmpp-2m": "DPM-Solver++ 2M"}.get(m.get("sampler", "ddim"), m.get("sampler"))
    chosen = (m["steps"], m.get("sampler", "ddim"), m.get("mixing", "latent"), m.get("precision", "float32"))
    default = chosen == (DEFAULT_STEPS, DEFAULT_SAMPLER, DEFAULT_MIXING, DEFAULT_PRECISION)
    return (f"{m['steps']} {sampler} steps, {chosen[2]} mixing, {chosen[3]} denoiser"
            + (" (the engine's defaults)" if default else " (not the engine's defaults)"))


def render(m: dict) -> str:
    lines = ["## Dataset generation", "",
             f"`python -m changeanywhere_qgis dataset` on the bundled sample (real pre-event image, post-event image generated), "
             f"model {m['model']}, {m['tile']} px tiles ("
             + ("one model tile each" if m["tile"] <= m["model_tile"] else f"overlapping {m['model_tile']} px model tiles") +
             f"), {_setting_words(m)}, "
             f"{m['samples']} samples per run, {m['cores']} cores. The whole run includes starting the workers and loading "
             "the model; the steady rate counts from the moment every worker has finished its first sample.", "",
             "| local workers | onnxruntime threads each | whole run (s) | samples per minute, whole run | samples per minute, steady |",
             "| --- | --- | --- | --- | --- |"]
    for n, r in m["runs"].items():
        steady = f"{r['steady_samples_per_minute']:.2f}" if r["steady_samples_per_minute"] else "n/a"
        lines.append(f"| {n} | {r['threads_per_worker']} | {r['seconds']:.1f} | {r['samples_per_minute']:.2f} | {steady} |")
    scaling = f"**Scaling 1 → 2 workers (steady): {m['scaling']:.2f}x.** " if m.get("scaling") else ""
    lines += ["", f"{scaling}Projected time for {TARGET:,} samples at the faster "
              f"setting on this machine: **{m['hours_for_target']:.0f} hours** (a Dask cluster divides it by its number of "
              "such machines: `--scheduler`).", ""]
    return "\n".join(lines)


def dask_check(dataset: Path, samples: int = 10, workers: int = 2) -> dict:
    """Make the first ``samples`` samples of a finished dataset again on a Dask LocalCluster (``workers`` worker
    processes, one thread each) and compare them with the dataset's files byte for byte."""
    from distributed import LocalCluster

    from changeanywhere_qgis.engine.dataset import SPEC_FILE, load_records

    spec = json.loads((Path(dataset) / SPEC_FILE).read_text())
    settings = DatasetSettings(count=samples, **{**LEGACY_SETTINGS, **spec["settings"]})  # what a spec without a key meant
    records = load_records(Path(dataset))[:samples]
    with tempfile.TemporaryDirectory() as tmp, LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                            dashboard_address=None) as cluster:
        out = Path(tmp) / "dask"
        result = generate_dataset(spec["semantic"], out, settings, images=spec["images"], model=spec["model"]["path"],
                                  scheduler=cluster.scheduler_address)
        same = differ = 0
        for r in records:
            for rel in r["files"].values():
                if (out / rel).read_bytes() == (Path(dataset) / rel).read_bytes():
                    same += 1
                else:
                    differ += 1
        fields = ("window", "seed", "s", "events", "transitions", "changed_fraction")
        mine = load_records(out)
        records_equal = all(all(a[f] == b[f] for f in fields) for a, b in zip(mine, records))
    return {"samples": samples, "dask_workers": result["workers"], "seconds": result["seconds"],
            "files_identical": same, "files_different": differ, "manifest_records_equal": records_equal}


def dataset_section(model_dir) -> str:
    model_dir = Path(model_dir)
    return render(measure(model_dir))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(default_model_dir()))
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="local worker counts, one run each (default 1 2)")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    p.add_argument("--sampler", choices=SAMPLERS, default=DEFAULT_SAMPLER)
    p.add_argument("--mixing", choices=MIXINGS, default=DEFAULT_MIXING)
    p.add_argument("--precision", choices=PRECISIONS, default=DEFAULT_PRECISION)
    p.add_argument("--tile", type=int)
    p.add_argument("--json", action="store_true")
    p.add_argument("--out", help="write the markdown section to this file (with the command that made it)")
    p.add_argument("--dask-check", metavar="DATASET", help="instead: remake the first --samples samples of DATASET on a "
                   "two-worker Dask LocalCluster and compare them with its files")
    a = p.parse_args()
    if a.dask_check:
        print(json.dumps(dask_check(Path(a.dask_check), a.samples), indent=2))
        return
    m = measure(Path(a.model), a.samples, a.steps, a.tile, tuple(a.workers), a.sampler, a.mixing, a.precision)
    text = json.dumps(m, indent=2) if a.json else render(m)
    if a.out:
        import shlex
        import sys

        command = "python -m benchmarks.dataset_bench " + shlex.join(sys.argv[1:])
        Path(a.out).write_text(f"# Dataset generation speed\n\nMade by `{command}` on this machine.\n\n" + text.replace("## Dataset generation\n\n", "", 1))
    print(text)


if __name__ == "__main__":
    main()

"""`make bench`: speed, memory and seam figures of the engine, written to docs/reference/benchmarks.md.

Every figure is measured here, in one run, on this machine: timings are given as ratios of
things measured side by side, since shared machines are noisy.

    python -m benchmarks.run [--out docs/reference/benchmarks.md] [--model DIR] [--only denoiser,end_to_end,sampler,denoiser_variants,int8_end_to_end,memory,memory_stages,memory_large,memory_prepare_untimed,memory_prepare,seams,inpaint]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio

from changeanywhere_qgis.engine.diffusion import default_model_dir, load_model_package
from changeanywhere_qgis.engine.pipeline import ChangeSpec, GenerateSettings, generate
from changeanywhere_qgis.engine.quality import seam_score

from benchmarks.inpaint_bench import bench_inpaint, render_inpaint
from benchmarks.detection_bench import bench_detection, render_detection
from benchmarks.sampler_bench import bench_sampler, render_sampler
from benchmarks.denoiser_variants import (bench_denoiser_variants, bench_int8_end_to_end, render_denoiser_variants,
                                         render_int8_end_to_end)
from benchmarks.estimate_bench import bench_estimates, render_estimates

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "changeanywhere_qgis" / "samples"
HOUSTON_LABEL = REPO / "data" / "train" / "oem" / "labels" / "houston_16.tif"
THREADS = 2


def machine() -> str:
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    import onnxruntime

    return f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, onnxruntime {onnxruntime.__version__}"


def bench_denoiser(model_dir: Path, repeats: int = 20) -> dict:
    """ONNX Runtime vs PyTorch eager on the same denoiser weights, same threads, interleaved rounds."""
    import torch

    from benchmarks.torch_twin import export_twin, twin_denoiser

    torch.set_num_threads(THREADS)
    pkg = load_model_package(model_dir, device="cpu", threads=THREADS)
    net, weights = twin_denoiser()
    size = pkg.tile_size // pkg.downsample
    labels = rasterio.open(SAMPLES / "houston_label.tif").read(1, window=((0, pkg.tile_size), (0, pkg.tile_size)))
    latent = torch.randn(1, pkg.latent_channels, size, size)
    timestep = torch.tensor([500], dtype=torch.int64)
    semantic = torch.from_numpy(pkg.scheme.one_hot(labels))
    session = export_twin(net, latent, timestep, semantic, THREADS)
    feeds = {"latent": latent.numpy(), "timestep": timestep.numpy(), "semantic": semantic.numpy()}
    with torch.inference_mode():
        diff = float(np.abs(session.run(None, feeds)[0] - net(latent, timestep, semantic).numpy()).max())
        for _ in range(3):  # warm-up both
            session.run(None, feeds), net(latent, timestep, semantic)
        ort_times, torch_times = [], []
        for _ in range(repeats):
            start = time.perf_counter(); session.run(None, feeds); ort_times.append(time.perf_counter() - start)
            start = time.perf_counter(); net(latent, timestep, semantic); torch_times.append(time.perf_counter() - start)
    o, p = float(np.median(ort_times)), float(np.median(torch_times))
    return {"tile": f"{size}x{size} latent ({pkg.tile_size} px), batch 1", "threads": THREADS, "weights": weights,
            "onnxruntime_ms": 1e3 * o, "pytorch_ms": 1e3 * p, "speedup": p / o, "max_abs_diff": diff, "repeats": repeats}


def bench_end_to_end(model_dir: Path, steps: int = 50) -> dict:
    settings = GenerateSettings(steps=steps, seed=7, device="cpu", threads=THREADS)  # the engine's sampler and mixing
    with tempfile.TemporaryDirectory() as tmp:
        result = generate(SAMPLES / "houston_label.tif", Path(tmp) / "out",
                          ChangeSpec(vector=str(SAMPLES / "houston_changes.geojson"), class_field="target"),
                          image=SAMPLES / "houston_image.tif", model=model_dir, settings=settings)
    megapixels = result["grid"]["width"] * result["grid"]["height"] / 1e6
    seconds = sum(result["timings"].values())
    return {"raster": f"{result['grid']['width']}x{result['grid']['height']} (bundled sample, with its image)",
            "steps": steps, "sampler": settings.sampler, "mixing": settings.mixing, "tiles": result["tiles"], "seconds": seconds,
            "seconds_per_megapixel": seconds / megapixels}


def _mirrored_label(size: int, path: Path) -> None:
    """A size x size land-cover raster made of mirrored copies of the real 1024 px houston_16 label (tiled, deflate),
    written one copy at a time: a 40,000 px map is never whole in memory."""
    from rasterio.windows import Window

    with rasterio.open(HOUSTON_LABEL) as src:
        label, profile = src.read(1), src.profile
    n = label.shape[0]
    flips = {(i % 2, j % 2): label[:: -1 if i % 2 else 1, :: -1 if j % 2 else 1] for i in (0, 1) for j in (0, 1)}
    profile.update(width=size, height=size, nodata=0, tiled=True, blockxsize=256, blockysize=256, compress="deflate")
    with rasterio.open(path, "w", **profile) as dst:
        for i in range(-(-size // n)):
            for j in range(-(-size // n)):
                h, w = min(n, size - i * n), min(n, size - j * n)
                dst.write(flips[i % 2, j % 2][:h, :w], 1, window=Window(j * n, i * n, w, h))


def _probe_each_size(sizes, probe_args) -> dict:
    """The last JSON line of a probe run in a fresh process on a mirrored houston_16 label of each size:
    ``probe_args(label, tmp)`` gives the probe's command line after the interpreter."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            label = Path(tmp) / f"label_{size}.tif"
            _mirrored_label(size, label)
            done = subprocess.run([sys.executable, *probe_args(label, Path(tmp))], capture_output=True, text=True, cwd=REPO, check=True)
            out[size] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def bench_memory(model_dir: Path, sizes=(1024, 4096)) -> dict:
    """Peak RSS of a whole run (fresh process each), one diffusion step: memory does not depend on steps."""
    out = _probe_each_size(sizes, lambda label, tmp: ["-m", "benchmarks.memory_probe", str(label), str(tmp / f"out_{label.stem}"),
                                                      "--model", str(model_dir)])
    small, large = out[sizes[0]]["peak_rss_mb"], out[sizes[-1]]["peak_rss_mb"]
    return {"runs": out, "ratio": large / small, "pixels_ratio": (sizes[-1] / sizes[0]) ** 2}


def bench_memory_stages(model_dir: Path, sizes=(1024, 4096)) -> dict:
    """Bytes per pixel of each stage of the simulate path (fresh process each): what still grows with the raster."""
    return {"runs": _probe_each_size(sizes, lambda label, tmp: ["-m", "benchmarks.memory_stages", str(label)])}


def bench_memory_large(model_dir: Path, sizes=(1024, 4096, 16384), largest: int = 40000) -> dict:
    """Peak RSS of simulate (fresh process each, one at a time), and on a ``largest`` px square map: what a large map
    costs now that its whole-raster arrays are files read by window (generate's preparation: ``memory_prepare``)."""
    out = {}
    for kind, kind_sizes in (("simulate", (*sizes, largest)),):
        out[kind] = _probe_each_size(kind_sizes, lambda label, tmp, kind=kind: ["-m", "benchmarks.memory_large", kind, str(label),
                                                                                 str(tmp / f"out_{kind}_{label.stem}")])
    small, large = sizes[0], sizes[-1]
    return {"runs": out, "sizes": list(sizes), "largest": largest,
            "ratio": {k: out[k][large]["peak_rss_mb"] / out[k][small]["peak_rss_mb"] for k in out}}


def bench_memory_prepare_untimed(model_dir: Path, sizes=(1024, 16384)) -> dict:
    """generate's preparation without the estimate's timed network calls (onnxruntime's memory for one tile batch)."""
    return {"runs": _probe_each_size(sizes, lambda label, tmp: ["-m", "benchmarks.memory_large", "prepare-untimed", str(label),
                                                                str(tmp / f"out_{label.stem}")])}


def bench_memory_prepare(model_dir: Path, sizes=(1024, 16384)) -> dict:
    """generate's preparation with the time estimate's network calls at both sizes (fresh process each): on the small
    map they are forced (a short run makes none), so the two differ only in the raster."""
    out = {}
    for size in sizes:
        kind = "prepare-estimated" if size == sizes[0] else "prepare"
        out[size] = _probe_each_size((size,), lambda label, tmp, kind=kind: ["-m", "benchmarks.memory_large", kind, str(label),
                                                                            str(tmp / f"out_{label.stem}")])[size]
    return {"runs": out, "ratio": out[sizes[-1]]["peak_rss_mb"] / out[sizes[0]]["peak_rss_mb"]}


def bench_seams(model_dir: Path, steps: int = 20) -> dict:
    """Seam score of a 1024 px image generated from a map: fused tiles vs tiles with no overlap."""
    scores = {}
    with tempfile.TemporaryDirectory() as tmp:
        for overlap in (64, 0):
            out = Path(tmp) / f"o{overlap}"
            result = generate(HOUSTON_LABEL, out, ChangeSpec(random=True), model=model_dir,
                              settings=GenerateSettings(steps=steps, seed=3, device="cpu", threads=THREADS, tile_overlap_px=overlap))
            with rasterio.open(out / "t1_image.tif") as ds:
                image = ds.read()
            pkg_tile = load_model_package(model_dir, device="cpu").tile_size
            scores[overlap] = {**seam_score(image, pkg_tile, overlap), "tiles": result["tiles"]}
    return {"steps": steps, "fused_overlap_64": scores[64], "no_overlap": scores[0]}


def render(results: dict, model_dir: Path) -> str:
    lines = ["# Benchmarks", "", f"Made by `make bench` (`python -m benchmarks.run`) on {machine()}.",
             f"Model: `{model_dir.relative_to(REPO) if model_dir.is_relative_to(REPO) else model_dir}`. "
             "Each section's figures come from one run of the command (`--only SECTION` remeasures one section); "
             "rerun it to check them.", ""]
    if "denoiser" in results:
        d = results["denoiser"]
        lines += ["## Denoiser step: ONNX Runtime vs PyTorch eager", "",
                  f"The same weights in both ({d['weights']}; exported with the project's exporter), {d['threads']} threads each, "
                  f"{d['tile']}, median of {d['repeats']} interleaved runs.", "",
                  "| runtime | ms per step |", "| --- | --- |",
                  f"| ONNX Runtime | {d['onnxruntime_ms']:.1f} |", f"| PyTorch eager | {d['pytorch_ms']:.1f} |", "",
                  f"**ONNX Runtime is {d['speedup']:.2f}x as fast** (max abs difference of outputs {d['max_abs_diff']:.1e}).", ""]
    if "end_to_end" in results:
        e = results["end_to_end"]
        lines += ["## End to end", "", f"One change sample at default settings ({e.get('sampler', 'ddim').upper()} {e['steps']}, "
                  f"{e.get('mixing', 'latent')} mixing) on {e['raster']}, "
                  f"{e['tiles']} tiles, {THREADS} threads: **{e['seconds']:.1f} s, {e['seconds_per_megapixel']:.0f} s per megapixel**.", ""]
    if "sampler" in results:
        lines += render_sampler(results["sampler"])
    if "denoiser_variants" in results:
        lines += render_denoiser_variants(results["denoiser_variants"])
    if "int8_end_to_end" in results:
        lines += render_int8_end_to_end(results["int8_end_to_end"])
    if "memory" in results:
        m = results["memory"]
        lines += ["## Memory: bounded by tiles, not by the raster", "",
                  "Peak resident memory of a whole run in a fresh process (random events, pre-event image generated, "
                  "one DDIM step: memory does not depend on the step count) on land-cover rasters built from mirrored copies "
                  "of the real houston_16 label.", "", "| raster | tiles | peak RSS (MB) |", "| --- | --- | --- |"]
        lines += [f"| {s}x{s} | {r['tiles']} | {r['peak_rss_mb']:.0f} |" for s, r in m["runs"].items()]
        lines += ["", f"**Ratio {m['ratio']:.2f}** for {m['pixels_ratio']:.0f}x the pixels (target: at most 1.5).", ""]
    if "memory_stages" in results:
        runs = results["memory_stages"]["runs"]
        sizes = list(runs)
        lines += ["## Memory by stage: what still grows with the raster", "",
                  "The simulate path on the same mirrored houston_16 rasters, each stage's peak of newly allocated memory "
                  "(tracemalloc) in bytes per pixel of the raster (`benchmarks/memory_stages.py`). A figure that stays the "
                  "same from one size to the next is a whole-raster array: at 40,000 px a side each byte per pixel is 1.6 GB.", "",
                  "| stage | " + " | ".join(f"{s}x{s}" for s in sizes) + " |", "| --- |" + " --- |" * len(sizes)]
        for stage in runs[sizes[0]]["bytes_per_pixel"]:
            lines.append(f"| {stage} | " + " | ".join(f"{runs[s]['bytes_per_pixel'][stage]:.1f}" for s in sizes) + " |")
        lines += ["| held at the end (maps, mask, validity) | " + " | ".join(f"{runs[s]['held_at_end_bytes_per_pixel']:.1f}" for s in sizes) + " |",
                  "| peak RSS of the process (MB) | " + " | ".join(f"{runs[s]['peak_rss_mb']:.0f}" for s in sizes) + " |", ""]
    if "memory_large" in results:
        m = results["memory_large"]
        runs = {k: {int(size): r for size, r in v.items()} for k, v in m["runs"].items()}
        sizes, largest = m["sizes"], m["largest"]
        lines += ["## Memory on large maps: bounded by the windows", "",
                  "Peak resident memory (VmHWM) of `simulate --random-events` on the same mirrored houston_16 rasters, "
                  "each in its own process (`python -m benchmarks.memory_large simulate MAP OUT`; the section: "
                  "`python -m benchmarks.run --only memory_large`). Maps above 4096x4096 px keep their whole-raster arrays in "
                  "files of the output's temporary folder, read and written by window (`engine/io/scratch.py`). "
                  "`generate`'s preparation: the next section.", "",
                  "| raster | simulate: peak RSS (MB) | simulate: s |", "| --- | --- | --- |"]
        for size in (*sizes, largest):
            sim = runs["simulate"][size]
            lines.append(f"| {size}x{size} | {sim['peak_rss_mb']:.0f} | {sim['seconds']:.0f} |")
        lines += ["", f"**Ratio {sizes[-1]}² / {sizes[0]}²: simulate {m['ratio']['simulate']:.2f}** for "
                  f"{(sizes[-1] / sizes[0]) ** 2:.0f}x the pixels (target: at most 2); "
                  f"{largest}² simulate: **{runs['simulate'][largest]['peak_rss_mb'] / 1024:.2f} GiB** (target: under 4 GB). "
                  "Seconds are wall time on this shared machine (2 cores, other jobs running).", ""]
    if "memory_prepare" in results:
        runs = {int(k): v for k, v in results["memory_prepare"]["runs"].items()}
        a, b = min(runs), max(runs)
        lines += ["## Memory: generate's preparation with the estimate", "",
                  "Peak resident memory (VmHWM) of `generate`'s preparation with the time estimate's timed network calls "
                  "(model loaded, map read, change events, change mask, estimate; stopped at the first network stage), "
                  f"each in its own process: {a}² with the estimate forced (`python -m benchmarks.memory_large prepare-estimated "
                  f"MAP OUT`: a short run makes no timing call), {b}² as a user runs it (`... prepare MAP OUT`; the section: "
                  "`python -m benchmarks.run --only memory_prepare`). The estimate times one tile on the CPU and hands "
                  "onnxruntime's arena back after each timed call (`engine/diffusion/estimate.py`).", "",
                  "| raster | peak RSS (MB) |", "| --- | --- |"]
        lines += [f"| {s}x{s} | {r['peak_rss_mb']:.0f} |" for s, r in sorted(runs.items())]
        lines += ["", f"**Ratio {b}² / {a}²: {results['memory_prepare']['ratio']:.2f}** for {(b / a) ** 2:.0f}x the pixels "
                  "(target: at most 2).", ""]
        if "memory_prepare_untimed" in results:
            u = {int(k): v for k, v in results["memory_prepare_untimed"]["runs"].items()}
            lines += ["Without the timed calls (`benchmarks.memory_large prepare-untimed`; `--only memory_prepare_untimed`): "
                      + ", ".join(f"{s}² {u[s]['peak_rss_mb']:.0f} MB" for s in sorted(u))
                      + f", **ratio {u[max(u)]['peak_rss_mb'] / u[min(u)]['peak_rss_mb']:.2f}**. Against the {min(u)}² "
                      f"preparation as a user runs it (a short run: no timed call), the {b}² one with its estimate is "
                      f"{runs[b]['peak_rss_mb'] / u[min(u)]['peak_rss_mb']:.2f} times as large.", ""]
    if "seams" in results:
        s = results["seams"]
        f, n = s["fused_overlap_64"], s["no_overlap"]
        lines += ["## Seams", "", f"A 1024x1024 image generated from the houston_16 map ({s['steps']} steps). The seam score "
                  "is the mean absolute pixel jump across tile boundaries divided by the mean jump everywhere else "
                  "(`engine/quality/seams.py`): 1 means the boundaries cannot be told apart.", "",
                  "| tiling | tiles | boundary jump | interior jump | seam score |", "| --- | --- | --- | --- | --- |",
                  f"| overlap 64 px, predictions fused every step (default) | {f['tiles']} | {f['boundary']:.2f} | {f['interior']:.2f} | **{f['ratio']:.2f}** |",
                  f"| no overlap (for comparison) | {n['tiles']} | {n['boundary']:.2f} | {n['interior']:.2f} | {n['ratio']:.2f} |", ""]
    if "inpaint" in results:
        lines += render_inpaint(results["inpaint"])
    lines += render_detection(results)
    if "estimates" in results:
        lines += render_estimates(results["estimates"])
    for extra in results.get("extra_sections", []):
        lines += [extra, ""]
    return "\n".join(lines)


SECTIONS = {"denoiser": bench_denoiser, "end_to_end": bench_end_to_end, "sampler": bench_sampler, "memory": bench_memory,
            "memory_stages": bench_memory_stages, "memory_large": bench_memory_large,
            "memory_prepare_untimed": bench_memory_prepare_untimed, "memory_prepare": bench_memory_prepare, "seams": bench_seams,
            "inpaint": bench_inpaint}
SECTIONS["detection"] = bench_detection  # benchmarks/detection_bench.py (issue #37)

SECTIONS["estimates"] = bench_estimates  # benchmarks/estimate_bench.py (issue #36)
SECTIONS["denoiser_variants"] = bench_denoiser_variants  # benchmarks/denoiser_variants.py (issue #34)
SECTIONS["int8_end_to_end"] = bench_int8_end_to_end


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(REPO / "docs" / "reference" / "benchmarks.md"))
    p.add_argument("--model", default=str(default_model_dir()))
    p.add_argument("--only", help="comma-separated sections to remeasure (the others are kept from the last run): "
                   + ",".join([*SECTIONS, "dataset"]))
    a = p.parse_args()
    model_dir = Path(a.model).resolve()
    wanted = a.only.split(",") if a.only else list(SECTIONS) + ["dataset"]
    # Raw figures are kept beside the page, so `--only` remeasures some sections and keeps the rest.
    raw = Path(a.out).with_suffix(".json")
    results = json.loads(raw.read_text()) if a.only and raw.is_file() else {}
    for name in [w for w in wanted if w in SECTIONS]:
        print(f"== {name}", flush=True)
        results[name] = SECTIONS[name](model_dir)
        print(json.dumps(results[name], indent=1, default=str), flush=True)
    if "dataset" in wanted:
        from benchmarks.dataset_bench import dataset_section

        print("== dataset", flush=True)
        results["extra_sections"] = [dataset_section(model_dir)]
    raw.write_text(json.dumps(results, indent=1, default=str))
    Path(a.out).write_text(render(results, model_dir))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()

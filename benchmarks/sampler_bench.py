"""`make bench`, sampler section: check S2's reference (DDIM 50, the paper's latent mixing, model tiles) against its arms
(docs/research/map-following-checks.md): DDIM 50 with prediction mixing, DPM-Solver++ 2M at 10, 15 and 20 steps
with prediction mixing at model tiles and at 512 px tiles, on the same bundled sample in one run; and the denoiser's
achieved GFLOP/s beside a numpy sgemm.

The denoiser's FLOPs are counted once with ``torch.utils.flop_counter.FlopCounterMode`` on its PyTorch twin
(benchmarks/torch_twin.py: the bundled model's architecture, so the same FLOPs whatever its weights); the
time is the bundled package's own onnxruntime session, one guided call (conditional and unconditional halves,
batch 2), as the sampler makes it. The counter counts matrix products and convolutions (2 FLOPs per
multiply-add), not normalisations or activations, so the figure is a slight undercount of the work done.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio

from changeanywhere_qgis.engine.diffusion import load_model_package
from changeanywhere_qgis.engine.pipeline import ChangeSpec, GenerateSettings, generate

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "changeanywhere_qgis" / "samples"
RUNS = (("DDIM, 50 steps, latent mixing, model tiles (check S2's reference; the default before it)", {"sampler": "ddim", "steps": 50, "mixing": "latent"}),
        ("DDIM, 50 steps, prediction mixing, model tiles (the default since check S2)", {"sampler": "ddim", "steps": 50, "mixing": "prediction"}),
        *((f"DPM-Solver++ 2M, {n} steps, prediction mixing, {tiles}",
           {"sampler": "dpmpp-2m", "steps": n, "mixing": "prediction", **({"tile_size": 512} if tiles != "model tiles" else {})})
          for tiles in ("model tiles", "512 px tiles") for n in (10, 15, 20)))


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def sgemm_gflops(n: int = 2048, repeats: int = 5) -> float:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
    return 2 * n**3 / _median_seconds(lambda: a @ b, repeats) / 1e9


def denoiser_flops(pkg, latent_px: int) -> tuple[float, str]:
    """FLOPs of one guided denoiser call (batch 2) on a latent_px x latent_px latent, counted on the PyTorch twin."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from benchmarks.torch_twin import twin_denoiser

    net, weights = twin_denoiser()
    f = pkg.downsample
    latent = torch.randn(2, pkg.latent_channels, latent_px, latent_px)
    semantic = torch.zeros(2, len(pkg.scheme.classes), latent_px * f, latent_px * f)
    semantic[0, 0] = 1.0
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        net(latent, torch.tensor([500, 500]), semantic)
    params = sum(p.numel() for p in net.parameters())
    return float(counter.get_total_flops()), f"{weights}, {params:,} parameters"


def denoiser_seconds(pkg, latent_px: int, repeats: int = 10) -> float:
    """One guided call of the package's own session, as the sampler makes it."""
    with rasterio.open(SAMPLES / "houston_label.tif") as ds:
        size = latent_px * pkg.downsample
        labels = ds.read(1, window=((0, size), (0, size)))
    condition = pkg.condition(pkg.scheme.one_hot(labels))
    x = np.random.default_rng(0).standard_normal((1, pkg.latent_channels, latent_px, latent_px), dtype=np.float32)
    return _median_seconds(lambda: pkg.denoise_with(x, np.array([500], dtype=np.int64), condition), repeats)


def end_to_end(model_dir: Path, threads: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, (label, kw) in enumerate(RUNS):
            result = generate(SAMPLES / "houston_label.tif", Path(tmp) / f"out{k}",
                              ChangeSpec(vector=str(SAMPLES / "houston_changes.geojson"), class_field="target"),
                              image=SAMPLES / "houston_image.tif", model=model_dir,
                              settings=GenerateSettings(seed=7, device="cpu", threads=threads, **kw))
            megapixels = result["grid"]["width"] * result["grid"]["height"] / 1e6
            seconds = sum(result["timings"].values())
            rows.append({"run": label, **kw, "tiles": result["tiles"], "tile_size_px": result["tile_size_px"], "seconds": seconds,
                         "timings": result["timings"],
                         "seconds_per_megapixel": seconds / megapixels,
                         "raster": f"{result['grid']['width']}x{result['grid']['height']}"})
    base = rows[0]["seconds_per_megapixel"]
    for row in rows:
        row["speedup_vs_ddim50"] = base / row["seconds_per_megapixel"]
    return rows


def bench_sampler(model_dir: Path, threads: int = 2) -> dict:
    import torch

    torch.set_num_threads(threads)
    pkg = load_model_package(model_dir, device="cpu", threads=threads)
    sgemm = sgemm_gflops()
    calls = []
    for tile_px in (pkg.tile_size, 2 * pkg.tile_size):
        latent_px = tile_px // pkg.downsample
        flops, twin = denoiser_flops(pkg, latent_px)
        seconds = denoiser_seconds(pkg, latent_px)
        calls.append({"tile_px": tile_px, "latent": f"{latent_px}x{latent_px}", "gflop": flops / 1e9, "ms": 1e3 * seconds,
                      "gflops": flops / seconds / 1e9, "twin": twin})
    return {"threads": threads, "sgemm_2048_gflops": sgemm, "denoiser_calls": calls, "runs": end_to_end(model_dir, threads),
            "guidance_scale": pkg.guidance_scale}


def render_sampler(s: dict) -> list[str]:
    runs = s["runs"]
    lines = ["## Sampler: check S2's reference and arms", "",
             f"One change sample of the bundled sample ({runs[0]['raster']}, with its image and its change polygons, seed 7) "
             f"for each row, in one run, {s['threads']} threads, guidance scale {s['guidance_scale']:g} (two denoiser halves "
             "per call). `python -m benchmarks.run --only sampler`; the ratios are of runs made minutes apart in the same process, "
             "so they hold on idle cores only. Speed only: whether a setting keeps DDIM 50's fidelity is check S2 of "
             "docs/research/map-following-checks.md: it found no DPM-Solver++ setting here that does (the sampler stays DDIM 50), "
             "and made prediction mixing the default.", "",
             "The seconds are the whole run; of them, the pre-event image (the real image encoded and redrawn: no "
             "sampling) and the post-event image (sampling, then decoding) are given apart: only the sampling depends on "
             "the solver and its steps.", "",
             "| run | tiles | tile (px) | seconds | of which pre-event | of which post-event | s per megapixel | speed-up vs DDIM 50 |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['run']} | {r['tiles']} | {r['tile_size_px']} | {r['seconds']:.1f} | {r['timings']['pre_event_s']:.1f} | "
              f"{r['timings']['post_event_s']:.1f} | {r['seconds_per_megapixel']:.0f} | **{r['speedup_vs_ddim50']:.2f}x** |" for r in runs]
    lines += ["", "The denoiser's achieved arithmetic rate: FLOPs of one guided call counted once with PyTorch's "
              "`FlopCounterMode` on the PyTorch twin (`benchmarks/torch_twin.py`: " + s["denoiser_calls"][0]["twin"] + "; matrix "
              "products and convolutions, 2 FLOPs per multiply-add), timed on the bundled package's onnxruntime session "
              "(median of 10), beside a 2048^3 float32 numpy matrix product measured in the same run (the goal of issue #34: "
              "the denoiser at 60 % or more of it).", "",
              "| denoiser call | GFLOP per call | ms per call | GFLOP/s | share of the sgemm's rate |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {c['latent']} latent ({c['tile_px']} px), batch 2 | {c['gflop']:.2f} | {c['ms']:.0f} | {c['gflops']:.0f} | "
              f"{100 * c['gflops'] / s['sgemm_2048_gflops']:.0f} % |" for c in s["denoiser_calls"]]
    lines += [f"| numpy sgemm 2048^3 | {2 * 2048**3 / 1e9:.1f} | {2 * 2048**3 / s['sgemm_2048_gflops'] / 1e6:.0f} | "
              f"{s['sgemm_2048_gflops']:.0f} | 100 % |", ""]
    return lines

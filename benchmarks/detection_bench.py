"""`make bench`'s detection rows: a 4096 x 4096 pair on the CPU (goal: under a minute) and its peak memory against a
1024 x 1024 pair's (goal: at most 1.5 times).

The pairs are mirrored copies of the real 1024 px OpenEarthMap image houston_16 (A) and of the same image turned half a
turn (B: every pixel differs, so the polygons are many). The detector is the training command's default architecture
(FC-Siam-diff, widths 16-128, 256 px tiles overlapping by 32) with untrained weights: time and memory do not depend on
the weights. Each size runs in a fresh process (detection_probe.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

REPO = Path(__file__).resolve().parents[1]
IMAGE = REPO / "data" / "train" / "oem" / "images" / "houston_16.tif"
THREADS = 2
SIZES = (1024, 4096)


def _mirrored_image(size: int, path: Path, turn: bool) -> None:
    with rasterio.open(IMAGE) as src:
        image, profile = src.read((1, 2, 3)), src.profile
    if turn:
        image = image[:, ::-1, ::-1]
    n = image.shape[1]
    profile.update(width=size, height=size, count=3, tiled=True, blockxsize=256, blockysize=256, compress="deflate")
    with rasterio.open(path, "w", **profile) as dst:
        for i in range(-(-size // n)):
            for j in range(-(-size // n)):
                h, w = min(n, size - i * n), min(n, size - j * n)
                block = image[:, :: -1 if i % 2 else 1, :: -1 if j % 2 else 1]
                dst.write(np.ascontiguousarray(block[:, :h, :w]), window=Window(j * n, i * n, w, h))


def _untrained_package(folder: Path) -> Path:
    import torch

    from model_export.detector.export import write_package
    from model_export.detector.train import make_net

    torch.manual_seed(0)
    out = folder / "detector"
    write_package(make_net((16, 32, 64, 128)).eval(), out, {
        "name": "untrained FC-Siam-diff (benchmark)", "input": {"bands": 3, "scale": "x / 127.5 - 1"},
        "tile": {"size": 256, "overlap": 32, "multiple_of": 16}, "threshold": {"value": 0.5}})
    return out


def bench_detection(model_dir=None) -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        package = _untrained_package(tmp)
        for size in SIZES:
            a, b = tmp / f"a_{size}.tif", tmp / f"b_{size}.tif"
            _mirrored_image(size, a, turn=False)
            _mirrored_image(size, b, turn=True)
            done = subprocess.run([sys.executable, "-m", "benchmarks.detection_probe", str(a), str(b), str(package),
                                   str(tmp / f"out_{size}"), "--threads", str(THREADS)], capture_output=True, text=True, cwd=REPO,
                                  check=True)
            out[size] = json.loads(done.stdout.strip().splitlines()[-1])
    small, large = out[SIZES[0]], out[SIZES[-1]]
    return {"runs": out, "memory_ratio": large["peak_rss_mb"] / small["peak_rss_mb"], "threads": THREADS}


def render_detection(results: dict) -> list[str]:
    d = results.get("detection")
    if not d:
        return []
    runs = {int(k): v for k, v in d["runs"].items()}
    lines = ["## Change detection (`detect`)", "",
             f"A pair of real-image mosaics (benchmarks/detection_bench.py), the training command's default detector "
             f"architecture, {d['threads']} onnxruntime threads, each size in a fresh process; goals: 4096² under a minute, "
             "peak memory at most 1.5 times the 1024² pair's.", "",
             "| pair | tiles | time (s) | peak RSS (MB) | polygons |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {s}x{s} | {r['tiles']} | {r['seconds']:.1f} | {r['peak_rss_mb']:.0f} | {r['polygons']} |" for s, r in sorted(runs.items())]
    lines += ["", f"Peak memory, 4096² against 1024²: **{d['memory_ratio']:.2f}** times.", ""]
    return lines

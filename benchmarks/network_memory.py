"""The networks' working memory per tile: each graph of a model called on a batch of zero tiles, in a fresh process,
its peak (VmHWM) above what the loaded model held (engine/diffusion/estimate.py's NETWORK_BYTES_PER_TILE).

Usage: python -m benchmarks.network_memory [--model DIR] [--batches 1 4]
Each (graph, batch) runs in its own process, twice in a row (onnxruntime's arena grows on the first call and is
reused by the second: the figure is what a run keeps).
"""

import argparse
import json
import subprocess
import sys

import numpy as np


def _status(field: str) -> float:
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return int(status[field].split()[0]) / 1024


def probe(model: str | None, graph: str, batch: int) -> dict:
    from changeanywhere_qgis.engine.diffusion import default_model_dir, load_model_package

    pkg = load_model_package(model or default_model_dir(), "cpu", None)
    tile, f, k = pkg.tile_size, pkg.downsample, len(pkg.scheme.classes)
    loaded = _status("VmRSS")
    latent = np.zeros((batch, pkg.latent_channels, tile // f, tile // f), dtype=np.float32)
    for _ in range(2):
        if graph == "denoiser":
            pkg.denoise_with(latent, np.zeros(batch, dtype=np.int64), pkg.condition(np.zeros((batch, k, tile, tile), dtype=np.float32)))
        elif graph == "decoder":
            pkg.decode(latent)
        else:
            pkg.encode(np.zeros((batch, 3, tile, tile), dtype=np.float32))
    extra = _status("VmHWM") - loaded
    return {"graph": graph, "batch": batch, "tile_px": tile, "guidance": pkg.guidance_scale, "loaded_mb": loaded,
            "extra_mb": extra, "extra_mb_per_tile": extra / batch}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    p.add_argument("--one", nargs=2, metavar=("GRAPH", "BATCH"), help=argparse.SUPPRESS)  # the child's part
    a = p.parse_args()
    if a.one:
        print(json.dumps(probe(a.model, a.one[0], int(a.one[1]))))
        return
    for graph in ("denoiser", "decoder", "encoder"):
        for batch in a.batches:
            command = [sys.executable, "-m", "benchmarks.network_memory", "--one", graph, str(batch)]
            command += ["--model", a.model] if a.model else []
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            print(done.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()

"""The GPU check that scripts/gpu_check.sh runs: CUDA provider, CPU/GPU agreement of the three graphs, one 1024 px sample.

Steps (each prints one line; the figures go to $OUT/gpu_check.json):
 1. the environment: Python, onnxruntime, the GPU that nvidia-smi names;
 2. the bundled model on the CPU, and the CPU reference outputs of its three graphs on one real 256 px tile
    (the houston_16 image and map of data/train, the same inputs for both devices);
 3. onnxruntime's CUDA provider: present in this build, and its library loads (with onnxruntime.preload_dlls()
    first where it exists, so pip's nvidia-* libraries are found). Without it the check stops here and says exactly
    what to install; on a machine with no NVIDIA GPU at all this is the expected end (exit 0, "stopped before the
    CUDA part"); with a GPU it is a failure (exit 1);
 4. the same three graphs on the GPU against the CPU: max |gpu - cpu| at most TOLERANCE[graph] (the outputs are of
    order 1; CUDA convolutions may use TF32, about 3 decimal digits);
 5. the time of one 1024x1024 change sample on the GPU (random events on the real 1024 px houston_16 map, seed 1):
    DDIM 50 at the model's tiles (today's default), and DPM-Solver++ 2M at 20 steps with 512 px tiles.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from changeanywhere_qgis.engine.diffusion import cuda_unavailable_reason, default_model_dir, load_model_package  # noqa: E402
from changeanywhere_qgis.engine.pipeline import ChangeSpec, GenerateSettings, generate  # noqa: E402

OUT = Path(os.environ.get("OUT") or REPO / "build" / "gpu-check")
IMAGE = REPO / "data" / "train" / "oem" / "images" / "houston_16.tif"
LABEL = REPO / "data" / "train" / "oem" / "labels" / "houston_16.tif"
TOLERANCE = {"encoder": 2e-2, "decoder": 2e-2, "denoiser": 2e-2}  # max abs difference, outputs of order 1
RUNS = (("DDIM 50, model tiles (default)", {"sampler": "ddim", "steps": 50}),
        ("DPM-Solver++ 2M 20, 512 px tiles", {"sampler": "dpmpp-2m", "steps": 20, "tile_size": 512}))


def say(report: dict, key: str, value, line: str) -> None:
    report[key] = value
    print(line, flush=True)
    (OUT / "gpu_check.json").write_text(json.dumps(report, indent=2, default=str))


def gpu_name() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return None
    done = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                          capture_output=True, text=True)
    return done.stdout.strip() or None if done.returncode == 0 else None


def cuda_fix(reason: str, version: str) -> str:
    """What to install: onnxruntime-gpu with its [cuda,cudnn] extras (pip's CUDA runtime and cuDNN for that release, as
    the plugin's install action does), and a driver for the CUDA major the release was built for (named by the library
    it missed, e.g. libcublasLt.so.13)."""
    major = next((m for m in ("13", "12", "11") if f".so.{m}" in reason), None)
    driver = f"an NVIDIA driver that supports CUDA {major} (nvidia-smi's header)" if major else "an NVIDIA driver"
    return (f"pip install 'onnxruntime-gpu[cuda,cudnn]=={version}' (about 284 MB, plus the CUDA and cuDNN wheels its extras "
            f"bring; onnxruntime.preload_dlls() finds them) and {driver}; then rerun this script")


def reference_inputs(pkg) -> dict:
    n = pkg.tile_size
    with rasterio.open(IMAGE) as ds:
        image = ds.read((1, 2, 3), window=((0, n), (0, n))).astype(np.float32)[None] / 127.5 - 1
    with rasterio.open(LABEL) as ds:
        labels = ds.read(1, window=((0, n), (0, n)))
    latent = pkg.encode(image)
    return {"encoder": {"image": image}, "decoder": {"latent": latent},
            "denoiser": {"latent": np.random.default_rng(0).standard_normal(latent.shape, dtype=np.float32),
                         "timestep": np.array([500], dtype=np.int64), "semantic": pkg.scheme.one_hot(labels)}}


def run_graphs(pkg, inputs: dict) -> dict:
    return {graph: pkg.sessions[graph].run(None, feeds)[0] for graph, feeds in inputs.items()}


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    report: dict = {"date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}
    import onnxruntime as ort

    gpu = gpu_name()
    say(report, "environment", {"python": platform.python_version(), "onnxruntime": ort.__version__, "gpu": gpu},
        f"1. Python {platform.python_version()}, onnxruntime {ort.__version__}, GPU: {gpu or 'none (no nvidia-smi answer)'}")

    clock = time.perf_counter()
    cpu = load_model_package(default_model_dir(), device="cpu")
    inputs = reference_inputs(cpu)
    reference = run_graphs(cpu, inputs)
    say(report, "cpu_reference", {g: list(v.shape) for g, v in reference.items()},
        f"2. CPU reference of the three graphs on one real {cpu.tile_size} px tile: "
        + ", ".join(f"{g} {list(v.shape)}" for g, v in reference.items()) + f" ({time.perf_counter() - clock:.1f} s)")

    if hasattr(ort, "preload_dlls"):
        try:
            ort.preload_dlls()  # pip's nvidia-* CUDA/cuDNN libraries, or torch's, where present
        except Exception as exc:  # noqa: BLE001 - a failed preload is reported by the check below
            print(f"   (onnxruntime.preload_dlls: {exc})")
    reason = cuda_unavailable_reason()
    if reason is not None:
        fix = cuda_fix(reason, ort.__version__)
        say(report, "cuda", {"available": False, "reason": reason, "install": fix},
            f"3. CUDA provider: NOT usable: {reason}.\n   To install: {fix}")
        if gpu is None:
            print("stopped before the CUDA part: this machine has no NVIDIA GPU, so steps 4 and 5 did not run (expected on a CPU machine)")
            return 0
        print("FAILED: a GPU is here but onnxruntime cannot use it; steps 4 and 5 did not run")
        return 1
    say(report, "cuda", {"available": True}, "3. CUDA provider: present and its library loads")

    clock = time.perf_counter()
    cuda = load_model_package(default_model_dir(), device="cuda")
    on_gpu = run_graphs(cuda, inputs)
    agreement = {g: {"max_abs_diff": float(np.abs(on_gpu[g] - reference[g]).max()),
                     "mean_abs_diff": float(np.abs(on_gpu[g] - reference[g]).mean()), "tolerance": TOLERANCE[g]}
                 for g in reference}
    ok = all(a["max_abs_diff"] <= a["tolerance"] for a in agreement.values())
    say(report, "agreement", agreement, "4. GPU against CPU: " + "; ".join(
        f"{g} max {a['max_abs_diff']:.1e} (tolerance {a['tolerance']:.0e})" for g, a in agreement.items())
        + (" - agree" if ok else " - DISAGREE") + f" ({time.perf_counter() - clock:.1f} s with loading)")

    timings = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, (label, kw) in enumerate(RUNS):
            clock = time.perf_counter()
            result = generate(LABEL, Path(tmp) / f"s{k}", ChangeSpec(random=True), model=cuda,
                              settings=GenerateSettings(seed=1, correlation=0.8, device="cuda", **kw))
            wall = time.perf_counter() - clock
            timings.append({"run": label, **kw, "tiles": result["tiles"], "wall_s": wall, "timings": result["timings"],
                            "device": result["device"]})
            say(report, "sample_1024", timings, f"5. one 1024x1024 change sample, {label}: {wall:.2f} s on {result['device']} "
                f"({result['tiles']} tiles)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Training throughput: images (crops) per second of `model_export.training.train` for a config, on one rank and on N
ranks (`torchrun`, gloo on CPUs), measured side by side in one run and written to docs/reference/training-throughput.md.

    python -m benchmarks.training_throughput [--config model_export/configs/default.toml] [--steps 40] [--ranks 2]
        [--device cpu|cuda] [--out docs/reference/training-throughput.md]

Each stage runs a fresh, short run (``--max-steps``) in a temporary folder; the rate is what the run's
``summary.json`` records (``images_per_second``: steps between the first and the last step over their time, times
the batch and the ranks), so the setting-up (reading tiles, the denoiser's latent cache) is not counted. On one
rank the run gets all the threads; on N ranks each rank gets its share, so both use the same cores.
The denoiser stage trains on the latents of the one-rank autoencoder run just made (a short run's autoencoder
changes what the latents hold, not what a step costs).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = ["data/train/oem", "data/train/loveda@loveda"]


def run_stage(stage: str, config: str, steps: int, ranks: int, threads: int, device: str, out: Path,
              autoencoder: Path | None = None) -> dict:
    """One short training run; its summary.json."""
    train = ["-m", "model_export.training.train", "--stage", stage, "--config", config, "--data", *DATA, "--out", str(out),
             "--max-steps", str(steps), "--threads", str(threads), "--device", device, "--seed", "0"]
    if autoencoder is not None:
        train += ["--autoencoder", str(autoencoder)]
    if ranks > 1:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(ranks), *train]
    else:
        command = [sys.executable, *train]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OMP_WAIT_POLICY="PASSIVE")
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads((out / "summary.json").read_text())


def measure(config: str, steps: int, ranks: int, device: str, threads: int) -> list[dict]:
    batches = tomllib.loads((REPO / config).read_text())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for stage in ("autoencoder", "diffusion"):
            for n in sorted({1, ranks}):
                clock = time.perf_counter()
                summary = run_stage(stage, config, steps, n, max(1, threads // n), device, Path(tmp) / f"{stage}-{n}",
                                    Path(tmp) / "autoencoder-1" if stage == "diffusion" else None)
                rows.append({"stage": stage, "ranks": n, "threads_per_rank": max(1, threads // n),
                             "batch_per_rank": batches[stage]["batch_size"],
                             "images_per_second": summary["images_per_second"],
                             "wall_seconds": round(time.perf_counter() - clock, 1)})
                print(f"{stage}, {n} rank(s): {rows[-1]['images_per_second']} images/s", file=sys.stderr, flush=True)
    return rows


def render(rows: list[dict], config: str, steps: int, device: str, machine: str) -> str:
    lines = [
        "# Training throughput",
        "",
        f"`python -m benchmarks.training_throughput --config {config} --steps {steps} --device {device}` "
        f"({time.strftime('%Y-%m-%d')}; {machine}). Images are training crops per second over all ranks, from each run's "
        "summary.json (set-up not counted); the ratio is against one rank of the same stage, measured in the same run.",
        "",
        "| stage | ranks | threads per rank | batch per rank | images/s | ratio | whole run (s) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    base = {r["stage"]: r["images_per_second"] for r in rows if r["ranks"] == 1}
    for r in rows:
        ratio = r["images_per_second"] / base[r["stage"]] if base.get(r["stage"]) else float("nan")
        lines.append(f"| {r['stage']} | {r['ranks']} | {r['threads_per_rank']} | {r['batch_per_rank']} | {r['images_per_second']:.2f} | "
                     f"{ratio:.2f}x | {r['wall_seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def machine_line(device: str) -> str:
    import platform

    import torch

    if device == "cuda":
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="model_export/configs/default.toml")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="all ranks together")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--out", type=Path, default=REPO / "docs" / "reference" / "training-throughput.md")
    args = p.parse_args(argv)
    rows = measure(args.config, args.steps, args.ranks, args.device, args.threads)
    text = render(rows, args.config, args.steps, args.device, machine_line(args.device))
    tmp = args.out.with_name(f".{args.out.name}.partial")
    tmp.write_text(text)
    tmp.replace(args.out)
    (args.out.with_suffix(".json")).write_text(json.dumps(rows, indent=1) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`make bench`'s estimate section: the engine's memory and time estimates against one real run at each size
(`benchmarks/estimate_probe.py`, a fresh process per size, on the mirrored houston_16 maps of the other sections).

``python -m benchmarks.run --only estimates`` measures 512, 4096 and 16384 px, each generated whole (random events,
pre-event image generated, ESTIMATE_STEPS steps). At 16384 px that is hours on a 2-core machine: with
``CHANGEANYWHERE_BENCH_BUDGET=16384=600`` (SIZE=SECONDS, comma-separated) a size's run stops that many seconds into
its network stages, and its time is projected as its progress bar projects it (the page marks such rows). A stopped
run has not yet held every graph's working memory (the decoder's comes after the pre-event image's sampling), so such
a size's memory is measured by a second, whole run at one step (the memory does not depend on the steps; at 16384 px
about two hours on 2 cores, most of it the decoder's two passes over the raster).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ESTIMATE_SIZES = (512, 4096, 16384)
ESTIMATE_STEPS = 50  # the default; the peak does not depend on the steps, and a denoising-dominated run is what users wait for


def bench_estimates(model_dir: Path, sizes=ESTIMATE_SIZES, steps: int = ESTIMATE_STEPS) -> dict:
    from benchmarks.run import _probe_each_size

    budgets = dict(item.split("=") for item in os.environ.get("CHANGEANYWHERE_BENCH_BUDGET", "").split(",") if "=" in item)
    runs = {}
    for size in sizes:
        extra = ["--budget", budgets[str(size)]] if str(size) in budgets else []
        runs.update(_probe_each_size((size,), lambda label, tmp: ["-m", "benchmarks.estimate_probe", str(label),
                                                                  str(tmp / f"out_{label.stem}"), "--model", str(model_dir),
                                                                  "--steps", str(steps), *extra]))
        if extra:  # the time run stopped early: the peak from a whole run of one step
            peak = _probe_each_size((size,), lambda label, tmp: ["-m", "benchmarks.estimate_probe", str(label),
                                                                 str(tmp / f"peak_{label.stem}"), "--model", str(model_dir),
                                                                 "--steps", "1"])[size]
            runs[size]["peak_run"] = {k: peak[k] for k in ("peak_rss_mb", "estimate_mb", "steps", "finished")}
    return {"steps": steps, "runs": runs}


def render_estimates(result: dict) -> list[str]:
    lines = ["## Estimates against measured runs", "",
             "Each size generated in its own process (`python -m benchmarks.estimate_probe MAP OUT --steps N`; the "
             "section: `python -m benchmarks.run --only estimates`), random events, pre-event "
             "image generated. Memory: the estimate `--max-memory` limits (the whole process's peak) against the measured "
             "peak (VmHWM); target within 30 %. Time: the estimate the run prints against the run's wall time; target "
             "within a factor 1.5. A row marked *projected* was stopped some minutes into its network stages (too long for "
             "the session that measured it): its time is projected as its progress bar projects it (`--budget`), and its "
             "memory comes from a second, whole run of one step (the memory does not depend on the steps).", "",
             "| raster | steps | memory estimate (MB) | measured peak (MB) | ratio | time estimate (s) | measured (s) | ratio |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for size, run in sorted(((int(k), v) for k, v in result["runs"].items())):
        finished = run.get("finished", True)
        est_s, s = run.get("estimated_seconds"), run.get("seconds") or run.get("projected_seconds")
        time_cells = (f"{est_s:.0f} | {s:.0f} | {est_s / s:.2f}" if est_s and s else
                      f"{est_s:.0f} | – | –" if est_s else "– | – | –")
        memory = run.get("peak_run", run if finished else None)  # a stopped run's peak is the one-step run's
        memory_cells = (f"{memory['estimate_mb']:.0f} | {memory['peak_rss_mb']:.0f} | {memory['estimate_mb'] / memory['peak_rss_mb']:.2f}"
                        if memory else f"{run['estimate_mb']:.0f} | – | –")  # a stopped run has not reached its peak
        lines.append(f"| {size}x{size}{'' if finished else ' (*projected*)'} | {run['steps']} | {memory_cells} | {time_cells} |")
    missing = [s for s in ESTIMATE_SIZES if str(s) not in {str(k) for k in result["runs"]}]
    if missing:
        lines += ["", "Not measured in the run that made this table: " + ", ".join(f"{s}x{s}" for s in missing)
                  + " (hours on a 2-core machine; `CHANGEANYWHERE_BENCH_BUDGET=16384=600 python -m benchmarks.run --only "
                  "estimates` measures it, its time projected)."]
    lines += ["", f"Machine: {sys.platform}, {os.cpu_count()} CPU cores. The time columns need idle cores (the estimate's "
              "timed calls and the run must meet the same load); the memory columns do not depend on the load.", ""]
    return lines

"""The engine's estimates against what one run measures, in this process (`make bench`'s estimate section).

Usage: python -m benchmarks.estimate_probe SEMANTIC.tif OUT_DIR [--steps N] [--model DIR] [--prepare-only | --budget S]

Runs the real ``generate`` (random events, pre-event image generated) and prints one JSON line: the memory
estimate the run made (the whole process's peak, as ``--max-memory`` limits it), the peak it reached (VmHWM), the
time estimate it printed (the estimate's timed calls are made whatever the map's size) and the seconds it took.
``--prepare-only`` stops at the first network stage (a map too large to generate whole in the session's time:
the memory figures are then the preparation's, the time estimate is made all the same). ``--budget S`` stops the run
S seconds into its network stages and projects its time as its progress bar does: the preparation's seconds plus
the network seconds so far times all the run's work units over those done (a run too long to finish; the peak is
then the one reached so far, the networks' memory included).
"""

import argparse
import json
import time

from changeanywhere_qgis.engine import pipeline
from changeanywhere_qgis.engine.diffusion import estimate
from changeanywhere_qgis.engine.errors import Cancelled
from changeanywhere_qgis.engine.pipeline import ChangeSpec, GenerateSettings, generate
from changeanywhere_qgis.engine.progress import Progress


class _Recorder(Progress):
    def __init__(self, stop_at_networks: bool, budget: float | None) -> None:
        super().__init__()
        self.stop, self.budget, self.lines = stop_at_networks, budget, []
        self.clock, self.networks_from, self.last = time.perf_counter(), None, None

    def info(self, text: str) -> None:
        self.lines.append(text)

    def stage(self, name: str) -> None:
        if name.startswith(("generating", "encoding")):
            if self.stop:
                raise Cancelled(name)
            if self.networks_from is None:
                self.networks_from = time.perf_counter()
        super().stage(name)

    def advance(self, units: int = 1) -> None:
        super().advance(units)
        if self.networks_from is not None:
            self.last = (time.perf_counter(), self.done)
            if self.budget is not None and self.last[0] - self.networks_from > self.budget:
                raise Cancelled("budget")

    def projected_seconds(self) -> float | None:
        if self.networks_from is None or self.last is None or not self.last[1]:
            return None
        prepare = self.networks_from - self.clock
        return prepare + (self.last[0] - self.networks_from) * self.total / self.last[1]


def _status(field: str) -> int:
    """A /proc/self/status figure in kB."""
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return int(status[field].split()[0])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("semantic")
    p.add_argument("out")
    p.add_argument("--model")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--prepare-only", action="store_true")
    p.add_argument("--budget", type=float, help="seconds of network stages before the run is stopped and its time projected")
    a = p.parse_args()
    seen: dict = {}
    check, timed = pipeline.check_memory, pipeline.estimate_seconds

    def recording_check(*args, **kwargs):
        seen["rss_at_check_mb"] = _status("VmRSS") / 1024
        seen["memory"] = check(*args, **kwargs)
        return seen["memory"]

    def recording_seconds(*args, **kwargs):
        seen["seconds"] = timed(*args, **kwargs)
        return seen["seconds"]

    pipeline.check_memory, pipeline.estimate_seconds = recording_check, recording_seconds
    estimate.LONG_WORK_TILE_CALLS = 0  # the time estimate on every map, small ones too
    progress = _Recorder(a.prepare_only, a.budget)
    clock = time.perf_counter()
    try:
        generate(a.semantic, a.out, ChangeSpec(random=True), model=a.model, overwrite=True, progress=progress,
                 settings=GenerateSettings(steps=a.steps, seed=1, device="cpu"))
        finished = True
    except Cancelled:
        finished = False
    seconds = time.perf_counter() - clock
    memory = seen["memory"]
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over from the parent across fork + exec.
    print(json.dumps({"peak_rss_mb": _status("VmHWM") / 1024, "rss_at_check_mb": seen["rss_at_check_mb"], "estimate_mb": memory.needed / 2**20,
                      "estimate_parts_mb": {k: v / 2**20 for k, v in getattr(memory, "parts", {}).items()},
                      "estimated_seconds": seen.get("seconds"), "seconds": seconds if finished else None,
                      "projected_seconds": None if finished else progress.projected_seconds(),
                      "finished": finished, "steps": a.steps, "estimate_line": next((x for x in progress.lines if x.startswith("estimate:")), None)}))


if __name__ == "__main__":
    main()

"""Peak RSS of `simulate --random-events`, or of `generate`'s preparation, on one land-cover raster, in this process
(used by `make bench`'s large-memory section).

Usage: python -m benchmarks.memory_large simulate|prepare|prepare-estimated|prepare-untimed SEMANTIC.tif OUT_DIR

``prepare`` runs the real ``generate`` (model loaded, map read, change events, change mask, plan) and stops it at the
first network stage, by cancelling it there: its peak is the preparation's, before any latent canvas exists.
On a map with 1000 tile passes or more the preparation includes the estimate's timed network calls on one tile
batch (onnxruntime's working memory); ``prepare-estimated`` makes them on any map (a small map's preparation with the
estimate, to compare like with like), ``prepare-untimed`` skips them, to tell the two apart.
"""

import json
import sys
import time

from changeanywhere_qgis.engine.diffusion import estimate
from changeanywhere_qgis.engine.errors import Cancelled
from changeanywhere_qgis.engine.pipeline import ChangeSpec, GenerateSettings, generate, simulate
from changeanywhere_qgis.engine.progress import Progress


class _StopAtTheModel(Progress):
    def stage(self, name: str) -> None:
        if name.startswith(("generating", "encoding")):
            raise Cancelled(name)
        super().stage(name)


def main() -> None:
    kind, semantic, out = sys.argv[1:4]
    clock = time.perf_counter()
    if kind == "simulate":
        simulate(semantic, out, ChangeSpec(random=True), seed=5, overwrite=True)
    else:
        if kind == "prepare-untimed":
            estimate.LONG_WORK_TILE_CALLS = 1 << 62  # no timed network call before the estimate
        elif kind == "prepare-estimated":
            estimate.LONG_WORK_TILE_CALLS = 0  # the timed network calls even on a short run
        try:
            generate(semantic, out, ChangeSpec(random=True), overwrite=True, progress=_StopAtTheModel(),
                     settings=GenerateSettings(steps=1, seed=1, device="cpu"))
        except Cancelled:
            pass
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over from the parent across fork + exec.
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    print(json.dumps({"peak_rss_mb": int(status["VmHWM"].split()[0]) / 1024, "seconds": time.perf_counter() - clock}))


if __name__ == "__main__":
    main()

"""Where a run's memory goes, stage by stage, per pixel of the raster (used by `make bench`'s memory_stages section).

Usage: python -m benchmarks.memory_stages SEMANTIC.tif

The simulate path (read, change events, change mask and polygons), measured with tracemalloc (numpy's
arrays are traced): each stage's peak of newly allocated bytes above what was held before it, divided by
the raster's pixels. A stage whose figure stays the same from one raster size to the next holds
whole-raster arrays: that is the memory still growing with the raster (issue 18).
"""

from __future__ import annotations

import json
import sys
import tracemalloc

import numpy as np

from changeanywhere_qgis.engine.diffusion import default_model_dir, read_manifest
from changeanywhere_qgis.engine.events import change_mask, change_polygons, random_events
from changeanywhere_qgis.engine.io import read_semantic
from changeanywhere_qgis.engine.landcover import ClassScheme


def main() -> None:
    semantic = sys.argv[1]
    scheme = ClassScheme.from_manifest(read_manifest(default_model_dir(), verify_hashes=False))
    stages = {}
    tracemalloc.start()

    def measure(name, pixels, run):
        held = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        value = run()
        stages[name] = (tracemalloc.get_traced_memory()[1] - held) / pixels
        return value

    sem = measure("read the land-cover map", 1, lambda: read_semantic(semantic, scheme))
    pixels = sem.grid.width * sem.grid.height
    stages["read the land-cover map"] /= pixels
    result = measure("random change events", pixels, lambda: random_events(sem.labels, scheme, np.random.default_rng([5, 0]),
                                                                           nodata=scheme.nodata_code))
    measure("change mask", pixels, lambda: change_mask(sem.labels, result.post, nodata=scheme.nodata_code))
    measure("change polygons", pixels, lambda: change_polygons(sem.labels, result.post, sem.grid.transform, nodata=scheme.nodata_code))
    held = tracemalloc.get_traced_memory()[0] / pixels
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    print(json.dumps({"pixels": pixels, "bytes_per_pixel": stages, "held_at_end_bytes_per_pixel": held,
                      "peak_rss_mb": int(status["VmHWM"].split()[0]) / 1024}))


if __name__ == "__main__":
    main()

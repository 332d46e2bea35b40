"""A large map simulated under a hard memory limit: the whole-raster arrays live in files read by window, so
`simulate --random-events` on a 6144 x 6144 px map (made of mirrored copies of the real sample) finishes inside an
address-space limit (RLIMIT_AS) that whole-raster arrays exceed, and leaves its scratch files nowhere.

The limit is the address space the same command takes on the 512 px sample (the interpreter, numpy, GDAL,
geopandas and their threads: about 600 MB here, more on machines with more cores) plus 200 MB. Measured with
this test's commands (VmPeak): the windowed path takes 65 MB more on the 6144 px map; the whole-raster arrays of
5c04eb0 took 330 MB more, and its run failed with a MemoryError under this limit."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

REPO = Path(__file__).resolve().parents[2]
SIZE = 6144
HEADROOM = 200 << 20  # bytes of address space over the small map's
# Runs the command line and prints the process's peak address space (VmPeak, kB) on its last stderr line.
PEAK = ("import atexit, runpy, sys\n"
        "atexit.register(lambda: print('VmPeak', open('/proc/self/status').read().split('VmPeak:')[1].split()[0], file=sys.stderr))\n"
        "sys.argv = ['changeanywhere_qgis', *sys.argv[1:]]\n"
        "runpy.run_module('changeanywhere_qgis', run_name='__main__')\n")


def _mirrored_map(source: Path, size: int, path: Path) -> None:
    with rasterio.open(source) as src:
        label, profile = src.read(1), src.profile
    n = label.shape[0]
    profile.update(width=size, height=size, tiled=True, blockxsize=256, blockysize=256, compress="deflate")
    with rasterio.open(path, "w", **profile) as dst:
        for i in range(-(-size // n)):
            for j in range(-(-size // n)):
                tile = label[:: -1 if i % 2 else 1, :: -1 if j % 2 else 1]
                h, w = min(n, size - i * n), min(n, size - j * n)
                dst.write(tile[:h, :w], 1, window=Window(j * n, i * n, w, h))


def _simulate(label: Path, out: Path, limit: int | None = None):
    def limited():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return subprocess.run([sys.executable, "-c", PEAK, "simulate", "--semantic", str(label), "--random-events", "--seed", "5",
                           "--out", str(out)], capture_output=True, text=True, cwd=REPO, timeout=600,
                          preexec_fn=limited if limit else None)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS is enforced, and VmPeak read, on Linux")
def test_a_large_map_is_simulated_under_a_memory_limit(houston_label_path, tmp_path):
    small = _simulate(houston_label_path, tmp_path / "small")
    assert small.returncode == 0, small.stderr[-3000:]
    limit = int(small.stderr.strip().splitlines()[-1].split()[1]) * 1024 + HEADROOM
    label = tmp_path / "large.tif"
    _mirrored_map(houston_label_path, SIZE, label)
    out = tmp_path / "out"
    done = _simulate(label, out, limit)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["change_mask.tif", "changes.gpkg", "events.json", "t1_semantic.tif",
                                                     "t2_semantic.tif"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary or scratch folder left
    record = json.loads((out / "events.json").read_text())
    assert len(record["events"]) > 100 and 0 < record["changed_fraction"] <= 0.3
    with rasterio.open(label) as pre_ds, rasterio.open(out / "t2_semantic.tif") as post_ds, rasterio.open(out / "change_mask.tif") as m:
        window = Window(4000, 4000, 1024, 1024)
        pre, post, mask = pre_ds.read(1, window=window), post_ds.read(1, window=window), m.read(1, window=window)
    assert np.array_equal(mask == 1, (pre != post) & (pre != 0))

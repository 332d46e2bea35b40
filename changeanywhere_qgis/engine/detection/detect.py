"""``detect``: change between two co-registered images by a change-detector package, on image A's grid.

The images are cut into the detector's tiles (its size, overlapping by its overlap), run a batch of tiles at a time,
and the tiles' probabilities blended with feathered weights where they overlap (the generator's tiling,
diffusion/tiling.py), so no tile edge shows. Only one band of tile rows is held in memory, and the outputs are
written by whole rows as the band moves down: memory is bounded by the tile batch and the raster's width, not its
size. Everything is written into an OutputFolder: the outputs appear whole, or not at all.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..diffusion import TileGrid, canvas_size, fuse
from ..errors import InputError
from ..io import OutputFolder
from ..progress import Progress
from .outputs import DETECTION_FOLDER, MASK, POLYGONS, PROBABILITY, REPORT, VECTOR_ROWS, MapWriter, write_polygons
from .package import DetectorPackage, check_threshold, load_detector
from .pair import open_pair

DEFAULT_BATCH = 4


def _canvas(length: int, tile: int, multiple: int) -> int:
    """Rows (or columns) the tiles cover: the raster itself when it is at least a tile (the last tile is pushed back to
    the edge), else the raster padded up to the detector's size granule (one smaller tile)."""
    return length if length >= tile else canvas_size(length, multiple)


def detect_changes(before: str | Path, after: str | Path, detector: str | Path | DetectorPackage, out_dir: str | Path, *,
                   threshold: float | None = None, resample: bool = False, overwrite: bool = False, batch_size: int = DEFAULT_BATCH,
                   threads: int | None = None, polygons: bool = True, progress: Progress | None = None) -> dict:
    """Detect change from ``before`` (A) to ``after`` (B); writes into ``out_dir`` and returns detection.json's content."""
    progress = progress or Progress()
    check_threshold(threshold)
    if batch_size < 1:
        raise InputError(f"The tile batch must be at least 1, got {batch_size}.")
    start = time.monotonic()
    package = detector if isinstance(detector, DetectorPackage) else load_detector(detector, threads=threads)
    inputs = [before, after, package.path]
    folder = OutputFolder(out_dir, overwrite=overwrite, owned=DETECTION_FOLDER, inputs=inputs)
    pair = open_pair(before, after, package.bands, resample=resample)
    try:
        t = package.threshold if threshold is None else float(threshold)
        g = pair.grid
        tile = package.tile_size
        grid = TileGrid(_canvas(g.height, tile, package.multiple_of), _canvas(g.width, tile, package.multiple_of), tile,
                        package.overlap)
        batches = grid.batches(batch_size)
        vector_bands = -(-g.height // VECTOR_ROWS) if polygons else 0
        progress.start(len(grid.tiles) + vector_bands)
        if pair.resampled:
            progress.info(f"Image B is resampled onto image A's grid (bilinear): {'; '.join(pair.differences)}.")
        progress.stage(f"detecting change ({len(grid.tiles)} tiles of {grid.tile_shape[0]} px)")

        def run(index: int, batch):
            reads = [pair.read(tl.row, tl.col, tl.size_y, tl.size_x) for tl in batch]
            a = np.stack([r[0] for r in reads])
            b = np.stack([r[1] for r in reads])
            return package.probability(a, b)[:, None]

        # GDAL does not fail on a full disk reliably (output_folder.py): the worst case, uncompressed, is checked first
        folder.require_space(5 * g.width * g.height, "the change probability and mask")
        with folder:
            writer = MapWriter(folder.temp, g, t, pair.valid)
            try:
                fuse(grid, batches, run, writer, progress)
            finally:
                writer.close()
            count = None
            if polygons:
                progress.stage("change polygons")
                count = write_polygons(folder.temp, g, progress)
            report = {
                "detector": {"name": package.name, "path": str(Path(package.path).resolve()),
                             "sha256": package.manifest["files"]["detector"]["sha256"]},
                "before": str(Path(before).resolve()), "after": str(Path(after).resolve()),
                "resampled": pair.resampled, "grid_differences": pair.differences,
                "threshold": t, "threshold_source": "the detector's" if threshold is None else "given for this run",
                "size": [g.width, g.height], "crs": g.crs.to_string() if g.crs else None, "transform": list(g.transform)[:6],
                "tile": {"size": grid.tile_shape[0], "overlap": package.overlap, "tiles": len(grid.tiles), "batch": batch_size},
                "valid_pixels": writer.valid_pixels, "changed_pixels": writer.changed,
                "changed_share": writer.changed / writer.valid_pixels if writer.valid_pixels else 0.0,
                "polygons": count,
                "files": {"probability": PROBABILITY, "mask": MASK, **({"polygons": POLYGONS} if polygons else {})},
                "seconds": round(time.monotonic() - start, 2),
            }
            (folder.temp / REPORT).write_text(json.dumps(report, indent=2), encoding="utf-8")
    finally:
        pair.close()
    return {**report, "out": str(Path(out_dir))}

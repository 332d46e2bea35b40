"""``detect``: change between two images by a change-detector package (docs/guide/detecting-change.md).

The handler returns an exit code; engine errors (InputError, ModelError, Cancelled) are printed by ``main``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .progress_bar import progress_bar


def add_detect_command(sub) -> None:
    d = sub.add_parser("detect", help="detect change between two images with a change-detector package",
                       description="Detect change from image A (before) to image B (after) with a change-detector package "
                                   "(python -m model_export.detector train makes one). Writes change_probability.tif, "
                                   "change_mask.tif, changes.gpkg and detection.json on A's grid and CRS.")
    d.add_argument("--before", required=True, metavar="A.tif", help="image A, before (its grid and CRS are the outputs')")
    d.add_argument("--after", required=True, metavar="B.tif", help="image B, after, on A's grid (or see --resample)")
    d.add_argument("--detector", required=True, metavar="PACKAGE", help="change-detector package folder (detector.json + detector.onnx)")
    d.add_argument("--out", required=True, help="output folder")
    d.add_argument("--threshold", type=float, help="change probability above which a pixel is changed (default: the detector's own)")
    d.add_argument("--resample", action="store_true", help="warp B onto A's grid (bilinear) when the grids differ; default: refuse")
    d.add_argument("--no-polygons", dest="polygons", action="store_false", help="write no change polygons")
    d.add_argument("--batch-size", type=int, default=4, help="tiles per network call (default 4): memory grows with it")
    d.add_argument("--threads", type=int, help="onnxruntime threads (default: all cores)")
    d.add_argument("--overwrite", action="store_true", help="replace the folder if it holds an earlier detection of this tool and nothing else")
    d.set_defaults(handler=run_detect)


def run_detect(args) -> int:
    from ..engine.detection import detect_changes

    progress, bar = progress_bar()
    try:
        result = detect_changes(args.before, args.after, args.detector, args.out, threshold=args.threshold, resample=args.resample,
                                overwrite=args.overwrite, batch_size=args.batch_size, threads=args.threads,
                                polygons=args.polygons, progress=progress)
    finally:
        bar.close()
    polygons = f", {result['polygons']} change polygons" if result["polygons"] is not None else ""
    print(f"Wrote {Path(result['out'])}: {100 * result['changed_share']:.2f} % of the valid pixels changed (threshold "
          f"{result['threshold']:g}){polygons}; {result['seconds']:.1f} s.", file=sys.stdout)
    return 0

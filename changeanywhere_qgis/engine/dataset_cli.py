"""Command line of the dataset job: ``python -m changeanywhere_qgis dataset | evaluate``.

``__main__.build_parser`` calls :func:`add_dataset_commands`; each command's handler returns an exit
code. Engine errors (InputError, ModelError, Cancelled) are raised and printed by ``__main__``.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from .layouts import FORMATS, LAYOUTS
from .model_package import DEVICES
from .cli_options import add_sampler_arguments


def add_dataset_commands(sub) -> None:
    ds = sub.add_parser("dataset", help="a change-detection dataset: many tiles with random change events (LEVIR-CD / SECOND layouts)",
                        description="Cut tiles from land-cover maps, simulate random change events on each and generate the "
                                    "image pair. Rerunning the same command resumes an unfinished dataset.")
    ds.add_argument("--semantic", nargs="+", required=True, metavar="SEM", help="land-cover raster(s)")
    ds.add_argument("--image", nargs="+", metavar="IMG", help="pre-event RGB image(s), one per raster, same grids (default: generated from the maps)")
    ds.add_argument("--count", type=int, required=True, help="number of samples")
    ds.add_argument("--tile", type=int, default=256, help="tile size in pixels (default 256)")
    ds.add_argument("--out", required=True, help="dataset folder")
    ds.add_argument("--layout", choices=LAYOUTS, default="levir", help="levir (A/B/label/list), second (im1/im2/label1/label2) or both (default levir)")
    ds.add_argument("--format", dest="fmt", choices=FORMATS, default="png", help="png or tif (GeoTIFF, georeferenced); default png")
    ds.add_argument("--seed", type=int, default=0, help="dataset seed (default 0): the same seed gives the same dataset")
    run = ds.add_mutually_exclusive_group()
    run.add_argument("--workers", type=int, help="local worker processes (default: one per CPU core)")
    run.add_argument("--scheduler", metavar="ADDRESS", help="run on a Dask distributed cluster, e.g. tcp://host:8786 (shared file system)")
    add_sampler_arguments(ds)
    ds.add_argument("--transitions", metavar="JSON", help="transition table for the change events (default: OpenEarthMap rules)")
    ds.add_argument("--max-nodata", type=float, default=0.5, help="skip tiles with more nodata than this fraction (default 0.5)")
    ds.add_argument("--band", type=int, default=1, help="band of the land-cover rasters (default 1)")
    ds.add_argument("--remap", help="remap the rasters' codes into the model's: 'loveda' or a JSON file")
    ds.add_argument("--model", help="model package folder (default: the bundled model)")
    ds.add_argument("--device", choices=DEVICES, default="cpu", help="cpu (default), cuda or auto")
    ds.add_argument("--threads", type=int, help="onnxruntime threads per worker (default: cores / workers)")
    ds.add_argument("--batch-size", type=int, default=4, help="model tiles per network call (default 4)")
    ds.add_argument("--overwrite", action="store_true", help="delete the folder and start again")
    ds.set_defaults(handler=run_dataset)

    ev = sub.add_parser("evaluate", help="quality report of a generated dataset (markdown with figures)")
    ev.add_argument("dataset", help="dataset folder (made by the dataset command, LEVIR-CD layout for the change-detection test)")
    ev.add_argument("--report", help="markdown file to write (default: DATASET/evaluation/report.md)")
    ev.add_argument("--figures", help="folder for the figures (default: a 'figures' folder beside the report)")
    ev.add_argument("--levir", default="data/levir-cd", help="real LEVIR-CD pairs for the change-detection test (default data/levir-cd)")
    ev.add_argument("--segmentation", help="segmentation checkpoint (model_export.segmentation); default: train one now on --seg-data")
    ev.add_argument("--seg-data", nargs="+", default=["data/train/oem", "data/train/loveda@loveda"], help="real image/label folders for the segmentation net")
    ev.add_argument("--cd-epochs", type=int, default=20, help="training epochs of the change-detection net (default 20)")
    ev.add_argument("--max-minutes", type=float, default=10.0, help="time limit of each network's training (default 10)")
    ev.add_argument("--no-torch", action="store_true", help="skip the parts that need PyTorch (segmentation, change detection)")
    ev.add_argument("--note", action="append", default=[], metavar="MARKDOWN", help="a paragraph to put at the top of the report (repeatable)")
    ev.add_argument("--notes-file", metavar="FILE", help="markdown to put at the top of the report")
    ev.add_argument("--rerender", action="store_true", help="write the report again from the figures' results.json (new notes; measures nothing)")
    ev.add_argument("--threads", type=int, help="PyTorch threads (default: PyTorch's choice; 1 is fastest on a busy machine)")
    ev.add_argument("--seed", type=int, default=0)
    ev.set_defaults(handler=run_evaluate)


def _progress():
    from tqdm import tqdm

    from .progress import Progress

    state = {"bar": None}

    def report(fraction: float, message: str) -> None:
        if state["bar"] is None:
            state["bar"] = tqdm(total=1000, bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}", file=sys.stderr)
        bar = state["bar"]
        bar.set_description_str(message, refresh=False)
        bar.update(int(fraction * 1000) - bar.n)

    def close() -> None:
        if state["bar"] is not None:
            state["bar"].close()

    return Progress(report), close


def run_dataset(args) -> int:
    from .dataset import DatasetSettings, generate_dataset

    settings = DatasetSettings(count=args.count, tile=args.tile, layout=args.layout, fmt=args.fmt, seed=args.seed,
                               steps=args.steps, eta=args.eta, guidance=args.guidance, max_nodata=args.max_nodata, transitions=args.transitions,
                               band=args.band, remap=args.remap, batch_size=args.batch_size)
    progress, close = _progress()
    try:
        result = generate_dataset(args.semantic, args.out, settings, images=args.image, model=args.model, workers=args.workers,
                                  scheduler=args.scheduler, device=args.device, threads=args.threads,
                                  overwrite=args.overwrite, progress=progress)
    except KeyboardInterrupt:
        close()
        print(f"cancelled: the finished samples are kept in {args.out}; rerun the same command to finish the rest",
              file=sys.stderr)
        return 130
    finally:
        close()
    splits = ", ".join(f"{k} {v}" for k, v in result["splits"].items())
    where = f"Dask at {result['scheduler']} ({result['workers']} workers)" if result["backend"] == "dask" else f"{result['workers']} local worker(s)"
    print(f"Wrote {Path(result['out'])}: {result['count']} samples ({splits}); "
          f"{result['generated']} generated now, {result['skipped']} already there; {where}.")
    if result["samples_per_minute"]:
        print(f"{result['samples_per_minute']:.2f} samples per minute; mean changed land "
              f"{100 * result['statistics']['changed_fraction']['mean']:.1f} %.")
    return 0


def run_evaluate(args) -> int:
    from .errors import InputError
    from .evaluate import EvaluateSettings, evaluate_dataset

    notes = list(args.note)
    if args.notes_file:
        try:
            notes.insert(0, Path(args.notes_file).read_text(encoding="utf-8").strip())
        except OSError as exc:
            raise InputError(f"Cannot read the notes file {args.notes_file} ({exc}).") from exc

    settings = EvaluateSettings(levir=args.levir, segmentation=args.segmentation, seg_data=args.seg_data,
                                cd_epochs=args.cd_epochs, max_minutes=args.max_minutes, use_torch=not args.no_torch, seed=args.seed, threads=args.threads, notes=notes, rerender=args.rerender,
                                command="python -m changeanywhere_qgis " + shlex.join(sys.argv[1:]))
    progress, close = _progress()
    try:
        result = evaluate_dataset(args.dataset, report=args.report, figures=args.figures, settings=settings, progress=progress)
    finally:
        close()
    print(f"Wrote {result['report']}")
    for line in result["summary"]:
        print(f"  {line}")
    return 0

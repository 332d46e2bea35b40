"""``dataset``: a change-detection dataset of many samples (``python -m model_export.evaluate`` judges one).

The handler returns an exit code; engine errors (InputError, ModelError, Cancelled) are printed by ``main``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..engine.diffusion import DEVICES
from ..engine.dataset import SPLIT_FRACTIONS
from ..engine.io import FORMATS, LAYOUTS
from .options import (add_post_event_arguments, add_pre_event_argument, add_precision_argument, add_sampler_arguments,
                      add_series_arguments, add_style_arguments,
                      post_event_settings, remap_help)
from .progress_bar import progress_bar


def add_dataset_command(sub) -> None:
    ds = sub.add_parser("dataset", help="a change-detection dataset: many tiles with random change events (LEVIR-CD / SECOND layouts)",
                        description="Cut tiles from land-cover maps, simulate random change events on each and generate the "
                                    "image pair. Rerunning the same command resumes an unfinished dataset.")
    ds.add_argument("--semantic", nargs="+", required=True, metavar="SEM", help="land-cover raster(s)")
    ds.add_argument("--image", nargs="+", metavar="IMG", help="pre-event RGB image(s), one per raster, same grids (default: generated from the maps)")
    add_pre_event_argument(ds)
    add_post_event_arguments(ds)
    ds.add_argument("--count", type=int, required=True, help="number of samples")
    ds.add_argument("--tile", type=int, default=256, help="tile size in pixels (default 256)")
    ds.add_argument("--out", required=True, help="dataset folder")
    ds.add_argument("--layout", choices=LAYOUTS, default="levir", help="levir (A/B/label), second (im1/im2/label1/label2 in SECOND's palette, with index and full maps), both, "
                                                                           "classes (LEVIR-CD + class1/class2 in the model's classes) or all (default levir); docs/reference/dataset-layouts.md")
    ds.add_argument("--split-folders", action="store_true",
                    help="one folder per split (train/A, val/A, ...; SECOND: train/im1, ...) as the official releases, open-cd, "
                         "torchgeo and SCanNet read them; default: flat folders with list/train.txt, val.txt, test.txt (BIT, ChangeFormer)")
    ds.add_argument("--splits", nargs=3, type=float, metavar=("TRAIN", "VAL", "TEST"), default=SPLIT_FRACTIONS,
                    help="shares of the samples in train, val and test (default 0.7 0.1 0.2; SECOND's release has no val: 0.8 0 0.2); "
                         "no split gets fewer than 2 samples")
    ds.add_argument("--second-classes", metavar="JSON",
                    help="mapping of the model's classes into SECOND's six, {\"our class\": \"SECOND class\"} (default: the "
                         "built-in table, e.g. road and developed space -> ground), for the layouts second, both and all")
    ds.add_argument("--skip-hidden-change", action="store_true",
                    help="leave out samples with change the SECOND mapping hides (e.g. road -> developed space: both ground)")
    ds.add_argument("--appearance-shift", action=argparse.BooleanOptionalAction, default=None,
                    help="give each post-event image B a random appearance shift drawn from its sample's seed, as real unchanged "
                         "land between two dates has: colour, brightness, haze, misregistration of up to 2 px (recorded in "
                         "manifest.jsonl; A and the labels stay as without it). Default: off (check U5 of docs/research/usefulness-checks.md: "
                         "with the bundled model they cost the change detector precision on real pairs); series (--dates 3 "
                         "or more) take none yet")
    add_style_arguments(ds)
    ds.add_argument("--format", dest="fmt", choices=FORMATS, default="png", help="png or tif (GeoTIFF, georeferenced); default png")
    ds.add_argument("--seed", type=int, default=0, help="dataset seed (default 0): the same seed gives the same dataset")
    run = ds.add_mutually_exclusive_group()
    run.add_argument("--workers", type=int, help="local worker processes (default: one per CPU core)")
    run.add_argument("--scheduler", metavar="ADDRESS", help="run on a Dask distributed cluster, e.g. tcp://host:8786 (shared file system)")
    add_sampler_arguments(ds)
    ds.add_argument("--transitions", metavar="TABLE", help="transition table for the change events: a built-in one (oem, the default: OpenEarthMap rules; buildings: new and demolished buildings only, as building change-detection sets such as LEVIR-CD label change) or a JSON file")
    ds.add_argument("--max-nodata", type=float, default=0.5, help="skip tiles with more nodata than this fraction (default 0.5)")
    ds.add_argument("--band", type=int, default=1, help="band of the land-cover rasters (default 1)")
    ds.add_argument("--remap", help=remap_help("the rasters'"))
    ds.add_argument("--model", help="model package folder (default: the bundled model)")
    ds.add_argument("--device", choices=DEVICES, default="cpu", help="cpu (default), cuda or auto")
    add_precision_argument(ds)
    ds.add_argument("--threads", type=int, help="onnxruntime threads per worker (default: cores / workers)")
    ds.add_argument("--batch-size", type=int, default=4, help="model tiles per network call (default 4)")
    ds.add_argument("--overwrite", action="store_true",
                    help="start again: replace the folder if it holds an earlier dataset of this tool and nothing else")
    add_series_arguments(ds, dataset=True)
    ds.set_defaults(handler=run_dataset)


def run_dataset(args) -> int:
    from dataclasses import replace

    from ..engine.dataset import DatasetSettings, generate_dataset
    from ..engine.errors import WorkersLost

    settings = DatasetSettings(count=args.count, tile=args.tile, layout=args.layout, fmt=args.fmt, seed=args.seed,
                               steps=args.steps, eta=args.eta, guidance=args.guidance, max_nodata=args.max_nodata, transitions=args.transitions,
                               band=args.band, remap=args.remap, batch_size=args.batch_size, pre_event=args.pre_event,
                               sampler=args.sampler, sampler_tile=args.tile_size, mixing=args.mixing,
                               precision=args.precision)
    # the layout's options, kept apart from the line above so that other settings can join it there
    settings = replace(settings, split_fractions=tuple(args.splits), split_folders=args.split_folders,
                       second_classes=args.second_classes, skip_hidden_change=args.skip_hidden_change,
                       dates=args.dates, appearance_shift=args.appearance_shift, style=args.style,
                       style_strength=args.style_strength, **post_event_settings(args))
    progress, bar = progress_bar()
    try:
        result = generate_dataset(args.semantic, args.out, settings, images=args.image, model=args.model, workers=args.workers,
                                  scheduler=args.scheduler, device=args.device, threads=args.threads,
                                  overwrite=args.overwrite, progress=progress)
    except KeyboardInterrupt:
        bar.close()
        if not Path(args.out).is_dir():  # stopped before the dataset's folder was made (e.g. reaching a scheduler)
            print("cancelled: nothing was written", file=sys.stderr)
        else:
            print(f"cancelled: the finished samples are kept in {args.out}; rerun the same command to finish the rest:\n"
                  f"    {getattr(args, 'resume_command', 'the same command')}", file=sys.stderr)
        return 130
    except WorkersLost as exc:
        bar.close()
        print(f"error: {exc}\nTo finish the rest:\n    {getattr(args, 'resume_command', 'the same command')}", file=sys.stderr)
        return 2
    finally:
        bar.close()
    splits = ", ".join(f"{k} {v}" for k, v in result["splits"].items())
    for note in result["split_notes"]:
        print(f"note: {note}")
    if result["skipped_hidden_change"]:
        print(f"note: {result['skipped_hidden_change']} of the {result['drawn']} samples drawn were skipped: the SECOND mapping "
              "hides part of their change.")
    where = f"Dask at {result['scheduler']} ({result['workers']} workers)" if result["backend"] == "dask" else f"{result['workers']} local worker(s)"
    print(f"Wrote {Path(result['out'])}: {result['count']} samples ({splits}); "
          f"{result['generated']} generated now, {result['skipped']} already there; {where}.")
    if result["samples_per_minute"]:
        print(f"{result['samples_per_minute']:.2f} samples per minute; mean changed land "
              f"{100 * result['statistics']['changed_fraction']['mean']:.1f} %.")
    return 0

"""``generate``, ``simulate`` and ``info``: one change sample, change events only, and the model report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..engine.diffusion import DEVICES
from .options import (add_post_event_arguments, add_pre_event_argument, add_precision_argument, add_sampler_arguments,
                      add_series_arguments, add_style_arguments,
                      post_event_settings, remap_help)
from .progress_bar import progress_bar


def _common_inputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--semantic", required=True, help="land-cover raster (GeoTIFF or any GDAL raster)")
    p.add_argument("--band", type=int, default=1, help="band of the semantic raster (default 1)")
    p.add_argument("--remap", help=remap_help("the raster's"))
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--changes", metavar="POLYS", help="change polygons: any OGR vector file (GeoPackage, GeoJSON, Shapefile)")
    source.add_argument("--random-events", action="store_true", help="simulate random object-level change events instead")
    p.add_argument("--class-field", help="field of the change polygons holding the target class (code or name)")
    p.add_argument("--layer", help="layer of a multi-layer vector file")
    p.add_argument("--only-from", nargs="+", metavar="CLASS", help="only land of these classes changes")
    p.add_argument("--transitions", metavar="TABLE", help="transition table for random events: a built-in one (oem, the default: OpenEarthMap rules; buildings: new and demolished buildings only, as building change-detection sets such as LEVIR-CD label change) or a JSON file")
    p.add_argument("--model", help="model package folder (default: the bundled model)")
    p.add_argument("--seed", type=int, help="random seed (default: a fresh one, recorded in the outputs)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the output folder if it holds an earlier sample of this tool and nothing else")
    p.add_argument("--max-memory", metavar="SIZE", help="refuse a run whose process is estimated to peak above this, e.g. 4G "
                                                       "(the whole process: the model and the networks' working memory "
                                                       "included; default: refuse what does not fit in the memory free)")


def add_sample_commands(sub) -> None:
    gen = sub.add_parser("generate", help="make a bi-temporal change sample (pre/post images, maps, change mask)")
    _common_inputs(gen)
    gen.add_argument("--image", help="pre-event RGB image on the same grid (default: generated from the map)")
    add_pre_event_argument(gen)
    add_post_event_arguments(gen)
    add_style_arguments(gen)
    add_sampler_arguments(gen)
    gen.add_argument("--correlation", type=float, help="content correlation s in [0, 1] (default: drawn in [0.7, 1])")
    gen.add_argument("--device", choices=DEVICES, default="auto")
    add_precision_argument(gen)
    gen.add_argument("--threads", type=int, help="CPU threads for onnxruntime (default: all cores)")
    gen.add_argument("--batch-size", type=int, default=4, help="tiles per network call (default 4)")
    add_series_arguments(gen)
    gen.set_defaults(handler=run_generate)

    sim = sub.add_parser("simulate", help="change events only: post-event map, change mask and change polygons")
    _common_inputs(sim)
    add_series_arguments(sim)
    sim.set_defaults(handler=run_simulate)

    info = sub.add_parser("info", help="model and device report")
    info.add_argument("--model", help="model package folder (default: the bundled model)")
    info.add_argument("--device", choices=DEVICES, default="auto")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(handler=run_info)


def run_info(args) -> int:
    from ..engine.diffusion import load_model_package

    report = load_model_package(args.model, args.device).describe()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"model:   {report['model']}  ({report['path']})")
    print(f"licence: {report['license']}")
    print(f"device:  {report['device']}  ({report['device_note']})")
    print(f"tile:    {report['tile']['size']} px, latent {report['latent']['channels']} channels / {report['latent']['downsample']}")
    d = report["diffusion"]
    print(f"sampler: guidance scale {report['guidance_scale']:g} (--guidance changes it), "
          f"{d['num_train_timesteps']} training steps, {d['prediction']}")
    print("classes: " + ", ".join(f"{c['code']}={c['name']}" for c in report["classes"]))
    sizes = report["file_sizes_bytes"]
    print("graphs:  " + ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in sizes.items()))
    return 0


def _change_spec(args):
    from ..engine.pipeline import ChangeSpec

    return ChangeSpec(vector=args.changes, class_field=args.class_field, layer=args.layer,
                      random=args.random_events, only_from=args.only_from, transitions=args.transitions,
                      date_field=getattr(args, "date_field", None))


def _max_memory(args) -> int | None:
    from ..engine.diffusion import parse_size

    return parse_size(args.max_memory) if args.max_memory else None


def run_generate(args) -> int:
    from ..engine.pipeline import GenerateSettings, generate

    settings = GenerateSettings(steps=args.steps, eta=args.eta, sampler=args.sampler, mixing=args.mixing, tile_size=args.tile_size,
                                guidance=args.guidance,
                                seed=args.seed, correlation=args.correlation,
                                device=args.device, precision=args.precision, threads=args.threads, batch_size=args.batch_size,
                                pre_event=args.pre_event,
                                max_memory=_max_memory(args), dates=args.dates, style=args.style,
                                style_strength=args.style_strength, **post_event_settings(args))
    progress, bar = progress_bar()
    try:
        result = generate(args.semantic, args.out, _change_spec(args), image=args.image, model=args.model,
                          remap=args.remap, band=args.band, overwrite=args.overwrite, settings=settings, progress=progress)
    finally:
        bar.close()
    return _report(args.out, result)


def run_simulate(args) -> int:
    from ..engine.pipeline import simulate

    progress, bar = progress_bar()
    try:
        result = simulate(args.semantic, args.out, _change_spec(args), model=args.model, remap=args.remap,
                          band=args.band, seed=args.seed, overwrite=args.overwrite, progress=progress,
                          max_memory=_max_memory(args), dates=args.dates)
    finally:
        bar.close()
    return _report(args.out, result)


def _report(out: str, result: dict) -> int:
    print(f"Wrote {Path(out).resolve()}:")
    for name in result["outputs"]:
        print(f"  {name}")
    changed = 100 * result["changed_fraction"]
    extra = f", device {result['device']} ({result['device_note']})" if "device" in result else ""
    print(f"seed {result['seed']}, {changed:.1f} % of the land changed{extra}")
    return 0

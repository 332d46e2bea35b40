"""Evidence that generated datasets are good: ``python -m model_export.evaluation.dataset_report DATASET [DATASET ...] --report REPORT.md``.

It lives on the training side because its judges are PyTorch networks; the plugin never imports it.
Each dataset (one per source of land-cover maps, say) is measured on its own, with the engine's numpy
measures (``changeanywhere_qgis/engine/quality``, no torch):

* unchanged land stays consistent: PSNR and SSIM between the pre- and post-event images inside the
  unchanged area, beside the same figures inside the changed area;
* no seams: the engine's seam score (``quality/seams.py``) on tiles larger than the model's tile.

With PyTorch (``--no-torch`` skips these), also:

* generated images follow their maps, per dataset: the segmentation net of ``model_export/evaluation/segmentation.py``
  labels the generated images; mIoU against the conditioning map, against the map rotated 180 degrees (the
  floor), and on a real held-out window (the ceiling);
* usefulness, on all the datasets together (``usefulness.py``): FC-Siam-diff trained only on the generated
  data, tested zero-shot on every real test set against the same net untrained, image differencing and
  "everything changed"; few-shot: pre-trained on the generated data and fine-tuned on k real pairs against the
  same net trained on those k pairs alone; and, with ``--compare-pre-event``, the same with every generated
  pre-event image redrawn by the model's autoencoder (what ``--pre-event redrawn`` makes); with
  ``--compare-appearance-shift``, once more with every generated post-event image shifted in appearance, each by its
  sample's own draw (what ``dataset --appearance-shift`` makes).
  ``--baseline NAME=DIR,...`` adds arms made without the model (``baselines/``); ``--arm NAME=DIR,...`` adds generated arms
  made another way (e.g. ``--post-event inpaint``), each trained on its own samples and reported among the generated ones;
  ``--compare-arm-appearance-shift NAME`` trains such an arm once more with its post-event images shifted as above.
  Each net's figures go to one JSON file in FIGURES/nets (``net_cache.py``) as soon as they are known; a rerun with the
  same data and settings reads them and trains only the missing nets.

The report is markdown with PNG figures; ``results.json`` beside the figures holds every number.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from changeanywhere_qgis.engine.dataset import SPEC_FILE, dataset_command, load_records, sample_maps
from changeanywhere_qgis.engine.errors import ChangeAnywhereError, InputError
from changeanywhere_qgis.engine.io import read_change, read_raster
from changeanywhere_qgis.engine.progress import Progress
from changeanywhere_qgis.engine.quality import MIN_REGION_PX, region_consistency, seam_score

REPO = Path(__file__).resolve().parents[2]
HELD_OUT = {"image": "data/train/oem/images/houston_16.tif", "label": "data/train/oem/labels/houston_16.tif",
            "rows": (768, 1024), "cols": (768, 1024)}  # never used to train the bundled models
MAX_JUDGED = 400  # samples the segmentation judge labels, per dataset
DEFAULT_TEST_SETS = ["data/levir-cd", "data/whu-cd"]
DEFAULT_SEG_DATA = ["data/train/oem", "data/train/loveda@loveda", "data/train/dubai@data/train/dubai/training_remap.json",
                    "data/train/flair@flair"]


@dataclass
class EvaluateSettings:
    test_sets: list = field(default_factory=lambda: list(DEFAULT_TEST_SETS))  # folders of real A/B/label pairs
    segmentation: str | None = None  # checkpoint folder; None: model_export/runs/default/segmentation, or train one
    seg_data: list = field(default_factory=lambda: list(DEFAULT_SEG_DATA))
    use_segmentation: bool = True
    cd_epochs: int = 20
    max_minutes: float = 10.0
    few_shot_k: tuple = (1, 3, 5)
    few_shot_splits: int = 3
    few_shot_steps: int = 150
    compare_pre_event: bool = False  # also train on the pre-event images redrawn by the model's autoencoder
    compare_appearance_shift: bool = False  # and on the post-event images as --appearance-shift shifts them
    nets_per_arm: int = 1  # change-detection nets per arm, each from its own seed: figures are means over them
    # arm name -> folders of a baseline made without the model (model_export/evaluation/baselines): more arms of the
    # usefulness test, trained and judged as the generated ones
    baselines: dict = field(default_factory=dict)
    # arm name -> folders of datasets generated another way (e.g. --post-event inpaint): arms reported among the generated
    # ones, each trained on its own samples
    arms: dict = field(default_factory=dict)
    # names of some of those arms: each is trained once more with its post-event images shifted in appearance, as
    # compare_appearance_shift does for the generated datasets
    shift_arms: list = field(default_factory=list)
    # one JSON file per change-detection net (net_cache.py): a rerun trains only the nets whose file is missing or stale;
    # None: a "nets" folder in the figures folder
    nets_folder: str | None = None
    use_torch: bool = True
    seed: int = 0
    threads: int | None = None
    command: str | None = None  # the command line, recorded in the report
    notes: list = field(default_factory=list)  # paragraphs put at the top of the report
    rerender: bool = False  # write the report again from the figures' results.json, measuring nothing


def _summary(values: list) -> dict:
    v = np.array([x for x in values if x is not None], dtype=np.float64)
    if not v.size:
        return {"n": 0, "mean": None, "median": None, "std": None}
    return {"n": int(v.size), "mean": float(v.mean()), "median": float(np.median(v)), "std": float(v.std())}


# ----------------------------------------------------------------------------------------------
# figures


def colourise(labels: np.ndarray, classes: list[dict]) -> np.ndarray:
    lut = np.zeros((256, 3), np.uint8)
    for c in classes:
        lut[c["code"]] = c["color"]
    return np.moveaxis(lut[labels], -1, 0)


def save_figure(path: Path, image: np.ndarray) -> None:
    """A uint8 [3, H, W] figure as JPEG (quality 90): mosaics of aerial images barely compress as PNG, and the
    repository (which a GPU run carries whole) must stay small."""
    from PIL import Image

    Image.fromarray(np.ascontiguousarray(np.moveaxis(image, 0, -1))).save(path, quality=90)


def mosaic(rows: list[list[np.ndarray]], gap: int = 4) -> np.ndarray:
    """uint8 [3, H, W] images in a grid with white gaps."""
    lines = []
    for row in rows:
        h = row[0].shape[1]
        parts = []
        for img in row:
            parts += [img, np.full((3, h, gap), 255, np.uint8)]
        lines += [np.concatenate(parts[:-1], axis=2), None]
    width = max(x.shape[2] for x in lines if x is not None)
    lines = [np.full((3, gap, width), 255, np.uint8) if x is None else x for x in lines[:-1]]
    return np.concatenate(lines, axis=1)


# ----------------------------------------------------------------------------------------------
# measuring


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def _roles(record: dict) -> tuple[str, str, str | None]:
    files = record["files"]
    if "A" in files:
        return files["A"], files["B"], files["label"]
    return files["im1"], files["im2"], None


def _open_dataset(path) -> tuple[Path, dict, list[dict]]:
    root = Path(path)
    if not (root / SPEC_FILE).is_file() and (root / "baseline.json").is_file():
        raise InputError(f"{root} is a baseline made without the model, not a generated dataset: give it as an arm of its own, "
                         f"--baseline NAME={root}.")
    if not (root / SPEC_FILE).is_file():
        raise InputError(f"{root} is not a dataset made by the dataset command (no {SPEC_FILE}). Give the dataset folder.")
    records = load_records(root)
    if not records:
        raise InputError(f"{root} holds no finished sample yet. Generate the dataset first.")
    dates = json.loads((root / SPEC_FILE).read_text())["settings"].get("dates", 2)
    if dates != 2:  # its samples are series, each written as several pairs: the measures here are a pair's
        raise InputError(f"{root} is a dataset of series of {dates} dates; the evaluation judges datasets of change pairs. "
                         "Make a dataset without --dates to evaluate (its samples are the series' first pairs).")
    return root, json.loads((root / SPEC_FILE).read_text()), records


def _names(roots: list[Path]) -> list[str]:
    """A short name per dataset for the report: the folder name, made unique."""
    names = []
    for root in roots:
        name = root.name
        while name in names:
            name = f"{root.parent.name}/{name}"
        names.append(name)
    return names


def _measure(root: Path, spec: dict, records: list[dict], progress: Progress) -> tuple[dict, list, list]:
    """Consistency, seams and the rebuilt-map check of one dataset; (results, maps for the judge, gallery rows)."""
    per_sample, mismatched, seams_t1, seams_t2, gallery, maps = [], 0, [], [], [], []
    model_tile, overlap = spec["model_tile"]["size"], spec["model_tile"]["overlap_px"]
    seams_apply = spec["settings"]["tile"] > model_tile
    for record in records:
        a_path, b_path, _ = _roles(record)
        t1, t2 = read_raster(root / a_path)[:3], read_raster(root / b_path)[:3]
        pre, post, valid = sample_maps(root, record)
        changed = (pre != post) & valid
        stored = read_change(root, record["files"])
        mismatched += int(not np.array_equal(stored, changed))
        per_sample.append(region_consistency(t1, t2, changed, valid))
        if seams_apply:
            seams_t2.append(seam_score(t2, model_tile, overlap)["ratio"])
            seams_t1.append(seam_score(t1, model_tile, overlap)["ratio"])
        if len(maps) < MAX_JUDGED:
            maps.append((t1, t2, pre, post, valid))
        if len(gallery) < 2 and changed.any():
            gallery.append([colourise(pre, spec["classes"]), t1, colourise(post, spec["classes"]), t2,
                            np.repeat((changed * 255).astype(np.uint8)[None], 3, 0)])
        progress.advance()
    st = spec["settings"]
    result = {
        "path": str(root), "samples": len(records), "tile": st["tile"], "settings": st, "model": spec["model"],
        "real_pre_event_images": bool(spec["images"]), "pre_event": st.get("pre_event", "real") if spec["images"] else "generated",
        "sources": len(spec["semantic"]), "command": dataset_command(spec, len(records), str(root)),
        "maps_rebuilt_mismatch": mismatched,
        "consistency": {region: {m: _summary([s[region][m] for s in per_sample]) for m in ("psnr", "ssim")}
                        for region in ("unchanged", "changed")},
        "seams": {"applies": seams_apply, "model_tile": model_tile, "overlap_px": overlap, "t2": _summary(seams_t2), "t1": _summary(seams_t1)},
        "_per_sample": per_sample,
    }
    return result, maps, gallery


def evaluate_dataset(datasets, report=None, figures=None, settings: EvaluateSettings | None = None,
                     progress: Progress | None = None) -> dict:
    """Measure one dataset or several (a list), write the report; returns {"report", "results", "summary"}."""
    settings = settings or EvaluateSettings()
    progress = progress or Progress()
    opened = [_open_dataset(d) for d in ([datasets] if isinstance(datasets, (str, Path)) else datasets)]
    if not opened:
        raise InputError("Give at least one dataset folder.")
    redrawn = [str(root) for root, spec, _ in opened if spec["settings"].get("pre_event") == "redrawn"]
    if settings.compare_pre_event and redrawn:
        raise InputError(f"--compare-pre-event redraws real pre-event images, but {', '.join(redrawn)} already hold redrawn ones. "
                         "Make the datasets with --pre-event real, or leave --compare-pre-event out.")
    shifted = [str(root) for root, spec, _ in opened if spec["settings"].get("appearance_shift")]
    if settings.compare_appearance_shift and shifted:
        raise InputError(f"--compare-appearance-shift shifts the post-event images, but {', '.join(shifted)} already hold "
                         "shifted ones. Make the datasets without --appearance-shift, or leave --compare-appearance-shift out.")
    if settings.nets_per_arm < 1:
        raise InputError(f"--nets-per-arm must be at least 1, not {settings.nets_per_arm}.")
    baselines = _baselines(settings.baselines)  # a wrong folder fails now, not after hours of training
    arms = _arms(settings.arms)
    _check_shift_arms(settings.shift_arms, arms)
    modes = sorted({spec["settings"].get("post_event", "full") for _, spec, _ in opened})
    if len(modes) > 1:
        raise InputError(f"The generated datasets were made with different --post-event modes ({', '.join(modes)}): one net "
                         "trained on all of them would mix the arms. Give the datasets of one mode, and the others as an arm "
                         "of their own, e.g. --arm inpaint=DIR,DIR.")
    # the change-detection nets read LEVIR-CD's flat folders with list/<split>.txt
    levir_layouts = [root for root, spec, _ in opened
                     if spec["settings"]["layout"] != "second" and not spec["settings"].get("split_folders")]
    trains_nets = bool(levir_layouts) and settings.use_torch and not settings.rerender
    stored_arm = _stored_arm([spec for root, spec, _ in opened if root in levir_layouts]) if trains_nets else None
    first = opened[0][0]
    report = Path(report) if report else first / "evaluation" / "report.md"
    figures = Path(figures) if figures else report.parent / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    report.parent.mkdir(parents=True, exist_ok=True)
    if settings.rerender:
        saved = figures / "results.json"
        if not saved.is_file():
            raise InputError(f"No {saved} to write the report from. Run evaluate without --rerender first.")
        results = json.loads(saved.read_text())
        report.write_text(render(results, settings, report, figures))
        return {"report": str(report), "results": results, "summary": _short(results)}
    use_torch = settings.use_torch and torch_available()
    total = sum(len(r) for _, _, r in opened)
    progress.start(total * (2 if use_torch else 1) + (total if use_torch else 0))
    names = _names([root for root, _, _ in opened])
    results: dict = {"datasets": {}, "samples": total, "classes": opened[0][1]["classes"]}
    judged, gallery = {}, []
    for name, (root, spec, records) in zip(names, opened):
        progress.stage(f"{name}: measuring consistency and seams")
        measured, maps, rows = _measure(root, spec, records, progress)
        results["datasets"][name] = measured
        judged[name] = (spec, maps)
        gallery += rows
    everything = [s for d in results["datasets"].values() for s in d.pop("_per_sample")]
    results["overall"] = {"consistency": {region: {m: _summary([s[region][m] for s in everything]) for m in ("psnr", "ssim")}
                                          for region in ("unchanged", "changed")}}
    save_figure(figures / "samples.jpg", mosaic(gallery))

    notes = []
    if not use_torch:
        why = "--no-torch was given" if not settings.use_torch else "PyTorch is not importable here"
        notes.append(f"The segmentation and change-detection checks were skipped: {why}. Install requirements-dev.txt and rerun.")
    else:
        if settings.use_segmentation:
            checkpoint, trained_now = _judge(settings, progress, report.parent, opened[0][1])
            for name, (spec, maps) in judged.items():
                progress.stage(f"{name}: segmenting the generated images")
                results["datasets"][name]["segmentation"] = _segmentation(checkpoint, trained_now, spec, maps)
                progress.advance(len(maps))
            results["held_out_real"] = _held_out(checkpoint)
        else:
            notes.append("The map-following check (segmentation judge) was skipped: --no-segmentation was given.")
        if settings.compare_pre_event and len({spec["model"]["path"] for _, spec, _ in opened}) > 1:
            raise InputError("--compare-pre-event redraws the pre-event images with the datasets' model: give datasets made "
                             "with one model package, or leave --compare-pre-event out.")
        test_sets = {Path(t).name: _resolve(t) for t in settings.test_sets}
        missing = [str(p) for p in test_sets.values() if not (p / "A").is_dir()]
        if not levir_layouts:
            notes.append("The change-detection check needs the LEVIR-CD layout with list/ (flat folders); these datasets "
                         "have SECOND's folders only or one folder per split.")
        elif missing:
            raise InputError(f"No real change pairs (A/, B/, label/) at {', '.join(missing)}. Give --test-sets folders that hold them.")
        else:
            progress.stage("training FC-Siam-diff on the generated data, testing on the real pairs")
            from model_export.evaluation.usefulness import evaluate_change_detection

            cd = evaluate_change_detection(
                levir_layouts, test_sets, epochs=settings.cd_epochs, max_minutes=settings.max_minutes, seed=settings.seed,
                nets_per_arm=settings.nets_per_arm, stored=stored_arm,
                threads=settings.threads, few_shot_k=tuple(settings.few_shot_k), few_shot_splits=settings.few_shot_splits,
                few_shot_steps=settings.few_shot_steps, redraw=_redrawer(opened[0][1]) if settings.compare_pre_event else None,
                shift=_shifter() if settings.compare_appearance_shift or settings.shift_arms else None,
                shift_generated=settings.compare_appearance_shift,
                shifted_arms={arms[n]["variant"]: arms[n]["shifted_variant"] for n in settings.shift_arms},
                baselines={name: b["datasets"] for name, b in baselines.items()},
                arms={a["variant"]: a["datasets"] for a in arms.values()},
                cache_dir=Path(settings.nets_folder) if settings.nets_folder else figures / "nets",
                log=lambda m: progress.stage(m))
            figure = cd.pop("figure")
            if figure is not None:  # None: the first net was read from its file, and its figure was written with it
                save_figure(figures / "real_predictions.jpg", figure)
            elif not (figures / "real_predictions.jpg").is_file():
                notes.append(f"The figure of predictions on the real pairs is missing: the first arm's first net was read "
                             f"from its file in {settings.nets_folder or figures / 'nets'}, and the figure is drawn only when "
                             "that net is trained. Delete that net's file and rerun to draw it.")
            cd["baselines"] = baselines
            cd["arms"] = arms
            results["change_detection"] = cd
        progress.advance(total)
    results["notes"] = notes
    results["command"] = settings.command
    results["measured_on"] = {"machine": f"{platform.node() or 'this machine'} ({platform.machine()})",
                              "date": time.strftime("%Y-%m-%d", time.gmtime())}
    (figures / "results.json").write_text(json.dumps(results, indent=2, default=str))
    report.write_text(render(results, settings, report, figures))
    return {"report": str(report), "results": results, "summary": _short(results)}


def _baselines(given: dict) -> dict:
    """{arm name: what the report says of it} for the baseline arms, each folder checked to be a finished baseline."""
    from .baselines import load_baseline

    out = {}
    for name, folders in given.items():
        specs, records = [], []
        for folder in folders:
            spec, recs = load_baseline(Path(folder))
            specs.append(spec)
            records += recs
        out[name] = {"datasets": [str(f) for f in folders], "method": sorted({s["method"] for s in specs}),
                     "after": sorted({s["after"] for s in specs}), "samples": len(records),
                     "changed_fraction_mean": float(np.mean([r["changed_fraction"] for r in records])),
                     "commands": [s["command"] for s in specs]}
    return out


def _arms(given: dict) -> dict:
    """{arm name: what the report says of it} for the generated arms made another way (``--arm``): each folder a finished
    dataset in the LEVIR-CD layout, all of one arm made with one --post-event mode and one pre-event arm."""
    out = {}
    for name, folders in given.items():
        opened = [_open_dataset(f) for f in folders]
        by_mode: dict = {}
        for root, spec, _ in opened:
            by_mode.setdefault(spec["settings"].get("post_event", "full"), []).append(str(root))
        if len(by_mode) > 1:
            raise InputError(f"--arm {name}: its datasets were made with different --post-event modes ("
                             + "; ".join(f"{mode}: {', '.join(roots)}" for mode, roots in sorted(by_mode.items()))
                             + "). Give each mode as an arm of its own, e.g. --arm inpaint=DIR,DIR.")
        flat = [str(root) for root, spec, _ in opened if spec["settings"]["layout"] == "second" or spec["settings"].get("split_folders")]
        if flat:
            raise InputError(f"--arm {name}: {', '.join(flat)} are not in the LEVIR-CD layout with list/ that the change-detection "
                             "nets read. Make them with --layout levir.")
        stored = _stored_arm([spec for _, spec, _ in opened])
        out[name] = {"datasets": [str(f) for f in folders], "post_event": next(iter(by_mode)), "pre_event": stored,
                     "samples": sum(len(r) for _, _, r in opened), "variant": f"{name} (pre-event {stored})",
                     "commands": [dataset_command(spec, len(r), str(root)) for root, spec, r in opened]}
    return out


def _check_shift_arms(names: list, arms: dict) -> None:
    """--compare-arm-appearance-shift NAME: NAME is an --arm whose post-event images are not shifted yet; each such arm
    gets the name of its shifted copy."""
    for name in names:
        if name not in arms:
            raise InputError(f"--compare-arm-appearance-shift {name}: no --arm is named {name!r} "
                             f"({', '.join(arms) or 'none given'}). Give the arm with --arm {name}=DIR[,DIR...] as well.")
        if "B appearance-shifted" in arms[name]["pre_event"]:
            raise InputError(f"--compare-arm-appearance-shift {name}: its datasets already hold shifted post-event images "
                             f"({', '.join(arms[name]['datasets'])}). Make them without --appearance-shift, or leave the option out.")
        arms[name]["shifted_variant"] = f"{name} (pre-event {arms[name]['pre_event']}, B appearance-shifted)"


def _resolve(path) -> Path:
    p = Path(path)
    if p.is_absolute() or (Path.cwd() / p).exists():
        return p
    return REPO / p


def _stored_arm(specs: list[dict]) -> str:
    """The arm the datasets' own images make: how their pre-event images were made, and whether B was shifted."""
    def arm(spec):
        st = spec["settings"]
        pre = st.get("pre_event", "real") if spec["images"] else "generated"
        return pre + (", B appearance-shifted" if st.get("appearance_shift") else "")
    arms = sorted({arm(spec) for spec in specs})
    if len(arms) > 1:
        raise InputError(f"The datasets' pre-event images were made in different ways ({'; '.join(arms)}): one change-detection "
                         "net trained on all of them would mix the arms. Give datasets made with the same --pre-event and "
                         "appearance-shift settings.")
    return arms[0]


def _redrawer(spec: dict):
    """uint8 [3,H,W] -> the dataset model's autoencoder copy (exactly the pre-event image of --pre-event redrawn)."""
    from changeanywhere_qgis.engine.diffusion import autoencoder_copy, load_model_package

    pkg = load_model_package(spec["model"]["path"], "cpu")
    return lambda image: autoencoder_copy(pkg, image)


def _shifter():
    """(uint8 [3,H,W] image B, sample seed) -> image B exactly as ``dataset --appearance-shift`` writes it."""
    from changeanywhere_qgis.engine.dataset import appearance_shift

    return appearance_shift


def _judge(settings: EvaluateSettings, progress: Progress, workdir: Path, spec: dict) -> tuple[Path, bool]:
    from model_export.evaluation.usefulness import train_segmentation

    if settings.threads:
        import torch

        torch.set_num_threads(settings.threads)
    checkpoint = Path(settings.segmentation) if settings.segmentation else REPO / "model_export" / "runs" / "default" / "segmentation"
    if (checkpoint / "segmentation.pt").is_file():
        return checkpoint, False
    if settings.segmentation:
        raise InputError(f"No segmentation.pt in {checkpoint}. Train one with python -m model_export.evaluation.segmentation.")
    progress.stage("training the segmentation judge on the real labelled tiles")
    # The judge also sees the training tiles as this dataset's model redraws them: its images come out of that decoder.
    return train_segmentation(workdir / "segmentation", settings.seg_data, min(settings.max_minutes or 6.0, 6.0), settings.seed,
                              settings.threads or 2, redrawn_by=spec["model"]["path"]), True


def _segmentation(checkpoint: Path, trained_now: bool, spec: dict, maps) -> dict:
    from model_export.evaluation.usefulness import segmentation_miou
    from model_export.evaluation.segmentation import read_record, recipe

    nodata = spec["nodata_code"]

    def masked(labels, valid):
        return np.where(valid, labels, nodata)

    out = {"checkpoint": str(checkpoint), "trained_now": trained_now, "recipe": recipe(read_record(checkpoint))}
    out["post_generated"] = segmentation_miou(checkpoint, [(t2, masked(post, v)) for _, t2, _, post, v in maps])
    out["post_generated_vs_rotated_map"] = segmentation_miou(checkpoint, [(t2, masked(post, v)[::-1, ::-1]) for _, t2, _, post, v in maps])
    key = "pre_real" if spec["images"] else "pre_generated"
    out[key] = segmentation_miou(checkpoint, [(t1, masked(pre, v)) for t1, _, pre, _, v in maps])
    return out


def _held_out(checkpoint: Path) -> dict | None:
    from model_export.evaluation.usefulness import segmentation_miou

    held = REPO / HELD_OUT["image"]
    if not held.is_file():
        return None
    import rasterio

    (r0, r1), (c0, c1) = HELD_OUT["rows"], HELD_OUT["cols"]
    with rasterio.open(held) as src:
        image = src.read((1, 2, 3), window=((r0, r1), (c0, c1)))
    with rasterio.open(REPO / HELD_OUT["label"]) as src:
        label = src.read(1, window=((r0, r1), (c0, c1)))
    return segmentation_miou(checkpoint, [(image, label)])


# ----------------------------------------------------------------------------------------------
# the report


def _fmt(v, pattern="{:.2f}") -> str:
    return "n/a" if v is None else pattern.format(v)


def _short(r: dict) -> list[str]:
    c = r["overall"]["consistency"]
    lines = [f"{len(r['datasets'])} dataset(s), {r['samples']} samples: PSNR unchanged {_fmt(c['unchanged']['psnr']['mean'])} dB vs "
             f"changed {_fmt(c['changed']['psnr']['mean'])} dB; SSIM unchanged {_fmt(c['unchanged']['ssim']['mean'], '{:.3f}')} vs "
             f"changed {_fmt(c['changed']['ssim']['mean'], '{:.3f}')}"]
    for name, d in r["datasets"].items():
        if d["seams"]["applies"]:
            lines.append(f"{name}: seam score of the post-event images {_fmt(d['seams']['t2']['mean'])} (1 = no seams)")
        if "segmentation" in d:
            lines.append(f"{name}: segmentation mIoU on generated post-event images {_fmt(d['segmentation']['post_generated']['miou'], '{:.3f}')}")
    for test, rows in r.get("change_detection", {}).get("zero_shot", {}).items():
        for method, v in rows.items():
            lines.append(f"{test} zero-shot, {method}: F1 {v['f1']:.3f}")
    for test, by_k in r.get("change_detection", {}).get("few_shot", {}).items():
        for k, methods in by_k.items():
            lines.append(f"{test} few-shot k={k}: " + "; ".join(f"{m} F1 {v['f1_mean']:.3f}" for m, v in methods.items()))
    return lines


def _consistency_rows(name: str, c: dict, samples: int | str) -> list[str]:
    rows = []
    for region in ("unchanged", "changed"):
        p, s = c[region]["psnr"], c[region]["ssim"]
        rows.append(f"| {name} | {region} | {p['n']} | {_fmt(p['mean'])} ± {_fmt(p['std'])} | "
                    f"{_fmt(s['mean'], '{:.3f}')} ± {_fmt(s['std'], '{:.3f}')} |")
    return rows


def render(r: dict, settings: EvaluateSettings, report: Path, figures: Path) -> str:
    rel = lambda p: Path(p).resolve().relative_to(report.parent.resolve()).as_posix() if Path(p).resolve().is_relative_to(report.parent.resolve()) else str(p)  # noqa: E731
    datasets = r["datasets"]
    any_d = next(iter(datasets.values()))
    lines = ["# Quality of generated change-detection datasets", ""]
    measured = r.get("command") if settings.rerender else settings.command
    if measured:
        lines += [f"Measured by `{measured}`" + (f"; this text written by `{settings.command}`." if settings.rerender and settings.command else "."), ""]
    for note in settings.notes:
        lines += [note, ""]
    where = r.get("measured_on", {})
    lines += [f"{len(datasets)} dataset(s), {r['samples']} samples in all, model **{any_d['model']['name']}**; measured on "
              f"{where.get('machine', 'this machine')}, {where.get('date', '')}.", "",
              "| dataset | samples | source maps | tile | DDIM steps | pre-event image | made by |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, d in datasets.items():
        lines.append(f"| {name} | {d['samples']} | {d['sources']} | {d['tile']} px | {d['settings']['steps']} | {d['pre_event']} | `{d['command']}` |")
    lines += ["", f"![samples]({rel(figures / 'samples.jpg')})", "",
              "Two samples of each dataset; columns: pre-event map, pre-event image (A), post-event map, post-event image (B), change mask.", ""]

    lines += ["## Unchanged land stays consistent", "",
              "PSNR and SSIM between the pre- and post-event images, inside the land the events left unchanged and inside "
              f"the land they changed (per sample, then mean ± std over samples; regions under {MIN_REGION_PX} px are left out). "
              "Good samples keep the unchanged land close (high PSNR/SSIM) and redraw the changed land (low).", "",
              "| dataset | region | samples | PSNR (dB) | SSIM |", "| --- | --- | --- | --- | --- |"]
    for name, d in datasets.items():
        lines += _consistency_rows(name, d["consistency"], d["samples"])
    if len(datasets) > 1:
        lines += _consistency_rows("**all**", r["overall"]["consistency"], r["samples"])
    mismatch = sum(d["maps_rebuilt_mismatch"] for d in datasets.values())
    lines += ["", f"The maps were rebuilt from each sample's window and seed; {mismatch} of {r['samples']} "
              "disagreed with the stored change mask.", ""]

    lines += ["## No seams", ""]
    seam_rows = [(n, d) for n, d in datasets.items() if d["seams"]["applies"]]
    if seam_rows:
        lines += [f"Tiles larger than the model's {any_d['seams']['model_tile']} px tile are generated as overlapping model tiles "
                  f"({any_d['seams']['overlap_px']} px overlap, fused at every step). Seam score (`engine/quality/seams.py`, as in "
                  "`make bench`): mean pixel jump across the model-tile boundaries over the mean jump elsewhere; 1 means the "
                  "boundaries cannot be told apart.", "",
                  "| dataset | images | samples | seam score mean | median |", "| --- | --- | --- | --- | --- |"]
        for name, d in seam_rows:
            s = d["seams"]
            lines += [f"| {name} | post-event (generated) | {s['t2']['n']} | {_fmt(s['t2']['mean'])} | {_fmt(s['t2']['median'])} |",
                      f"| {name} | pre-event ({d['pre_event']}) | {s['t1']['n']} | {_fmt(s['t1']['mean'])} | {_fmt(s['t1']['median'])} |"]
        lines.append("")
    else:
        lines += [f"Not measured: the tiles are no larger than the model's tile ({any_d['seams']['model_tile']} px), "
                  "so each sample is one model tile and has no internal boundary.", ""]

    judged = [(n, d["segmentation"]) for n, d in datasets.items() if "segmentation" in d]
    if judged:
        s0 = judged[0][1]
        lines += ["## Generated images follow their maps", "",
                  f"A small segmentation network (`model_export/evaluation/segmentation.py`, {s0.get('recipe', 'trained on the real labelled tiles')}; "
                  f"checkpoint `{s0['checkpoint']}`{', trained for this report' if s0['trained_now'] else ''}) labels each image; "
                  "mIoU against the map the image was generated from (classes present in the map; nodata ignored), and against the "
                  "same map rotated 180° (what an image that ignores its map scores).", "",
                  "| dataset | post-event vs its map | vs the map rotated 180° | ratio | pre-event vs its map |", "| --- | --- | --- | --- | --- |"]
        for name, s in judged:
            own, rot = s["post_generated"]["miou"], s["post_generated_vs_rotated_map"]["miou"]
            pre = s.get("pre_real", s.get("pre_generated", {})).get("miou")
            ratio = own / rot if rot and own == own and rot == rot else None
            lines.append(f"| {name} | **{_fmt(own, '{:.3f}')}** | {_fmt(rot, '{:.3f}')} | {_fmt(ratio, '{:.2f}x')} | {_fmt(pre, '{:.3f}')} |")
        if r.get("held_out_real"):
            lines += ["", f"The same judge on the real held-out window (houston_16 rows and columns 768-1023, never trained on): "
                      f"mIoU {_fmt(r['held_out_real']['miou'], '{:.3f}')}."]
        lines.append("")

    if "change_detection" in r:
        cd = r["change_detection"]
        t = cd["train"]
        lines += ["## Usefulness: trained on generated data, tested on real change pairs", "",
                  f"FC-Siam-diff (`model_export/evaluation/usefulness.py`, widths {t['widths']}) trained only on the generated datasets' "
                  f"train and val splits ({t['samples']} samples, random {t['crop']} px crops, "
                  + (f"up to {t['epochs']} epochs or {t.get('max_minutes', settings.max_minutes):g} min)."
                     if t.get("max_minutes", settings.max_minutes)  # results before it was recorded: this run's
                     else f"{t['epochs']} epochs, no time limit: the figures do not depend on the machine's speed).")]
        if cd.get("baselines"):
            lines += ["", "Baseline arms, made without any model from the same real maps and images (the dataset command's "
                      "windows; `model_export/evaluation/baselines`), trained the same way on their own train and val splits, "
                      "each net's threshold picked on its own arm's test split:", "",
                      "| arm | after | samples | changed pixels | folders (each one's command in its README.md) |",
                      "| --- | --- | --- | --- | --- |"]
            for name, b in cd["baselines"].items():  # the commands list every map: results.json holds them, not the table
                folders = ", ".join(f"`{f}`" for f in b["datasets"])
                lines.append(f"| {name} | {', '.join(b['after'])} | {b['samples']} | {b['changed_fraction_mean']:.1%} | {folders} |")
            lines.append("")
        if cd.get("arms"):
            lines += ["", "More generated arms, made by the dataset command in another way and trained the same way on their own "
                      "train and val splits (their rows are among the generated data's; the gains over the baselines count them):", "",
                      "| arm | post-event | samples | folders (each one's command in its README.md) |", "| --- | --- | --- | --- |"]
            for name, a in cd["arms"].items():
                folders = ", ".join(f"`{f}`" for f in a["datasets"])
                lines.append(f"| {a['variant']} | {a['post_event']} | {a['samples']} | {folders} |")
                if a.get("shifted_variant"):  # --compare-arm-appearance-shift: the same samples, B shifted when read
                    lines.append(f"| {a['shifted_variant']} | {a['post_event']}, B shifted by each sample's draw here | "
                                 f"{a['samples']} | the same |")
            lines.append("")
        seeds = t.get("net_seeds", [settings.seed])
        if len(seeds) > 1:
            lines.append(f"{len(seeds)} nets per arm, each from its own initial weights and crops (seeds {seeds[0]}-{seeds[-1]}); "
                         "every F1 below is their mean, ± their spread (std) where they differ, and few-shot spreads are over "
                         "nets and splits together.")
        for variant, info in t["variants"].items():
            for net_seed, one in zip(seeds, info.get("per_net", [info])):
                arm = (f"Baseline {variant[len('baseline: '):]}" if variant.startswith("baseline: ") else
                       f"Generated arm {variant[len('arm: '):]}" if variant.startswith("arm: ") else f"Pre-event images {variant}")
                lines.append(f"{arm}{f' (seed {net_seed})' if len(seeds) > 1 else ''}: {one['epochs_run']} epochs, "
                             f"{one['steps']} steps, {one['seconds'] / 60:.1f} min, stopped by {one['stopped_by']}; "
                             f"loss {_fmt(one['loss_first'], '{:.3f}')} → {_fmt(one['loss_last'], '{:.3f}')}.")
        lines += ["", "Real test sets (never used for training or for any threshold in the zero-shot rows):", "",
                  "| test set | pairs | changed pixels | folder |", "| --- | --- | --- | --- |"]
        for name, ts in cd["test_sets"].items():
            lines.append(f"| {name} | {ts['pairs']} | {ts['changed_share']:.1%} | `{ts['path']}` |")
        lines += ["", "### Zero-shot", "", f"Thresholds picked on the generated test split ({cd['threshold_samples']} samples). "
                  "Scores over all pixels of each test set.", ""]
        for name, rows in cd["zero_shot"].items():
            lines += [f"**{name}**", "", "| method | F1 | IoU | precision | recall |", "| --- | --- | --- | --- | --- |"]
            for method, v in rows.items():
                # image differencing and "everything changed" are the same for every net: no spread to show
                f1 = f"{v['f1']:.3f}" + (f" ± {v['f1_std']:.3f}" if v.get("f1_std") else "")
                lines.append(f"| {method} | {f1} | {v['iou']:.3f} | {v['precision']:.3f} | {v['recall']:.3f} |")
            lines.append("")
        fs = cd["few_shot_settings"]
        if not any(cd["few_shot"].values()):  # --few-shot with no k: say so rather than print empty tables
            lines += ["### Few-shot", "", "Not run (`--few-shot` was given no k).", ""]
        else:
            lines += ["### Few-shot", "",
                      f"For each test set and k, {fs['splits']} random splits (seeded): k real pairs train, the other pairs test. The net "
                      f"pre-trained on the generated data is fine-tuned on the k pairs; a net from the same initial weights trains on them "
                      f"from scratch; both for {fs['steps']} steps, scored at threshold {fs['threshold']}. F1 mean ± std over the splits"
                      f"{' and nets' if len(seeds) > 1 else ''}.", ""]
            for name, by_k in cd["few_shot"].items():
                methods = list(next(iter(by_k.values())).keys()) if by_k else []
                # the gains are the best generated arm's; a baseline arm's row is one to beat, not a gain
                baseline_rows = [m for m in methods if "baseline (no model)" in m]
                extra = " | gain over the best baseline" if baseline_rows else ""
                lines += [f"**{name}**", "", "| k | " + " | ".join(methods) + f" | gain over scratch{extra} |",
                          "| --- | " + " | ".join("---" for _ in methods) + " | ---" + (" | ---" if baseline_rows else "") + " |"]
                for k, row in by_k.items():
                    cells = [f"{row[m]['f1_mean']:.3f} ± {row[m]['f1_std']:.3f}" for m in methods]
                    best = max((row[m]["f1_mean"] for m in methods if m != "from scratch" and m not in baseline_rows), default=None)
                    gain = None if best is None else best - row["from scratch"]["f1_mean"]
                    over = (f" | {_fmt(None if best is None else best - max(row[m]['f1_mean'] for m in baseline_rows), '{:+.3f}')}"
                            if baseline_rows else "")
                    lines.append(f"| {k} | " + " | ".join(cells) + f" | {_fmt(gain, '{:+.3f}')}{over} |")
                lines.append("")
        lines += [f"![predictions on the first real test set]({rel(figures / 'real_predictions.jpg')})", "",
                  "Columns: " + ", ".join(cd["figure_columns"]) + ".", ""]
    if r["notes"]:
        lines += ["## Not measured", ""] + [f"- {n}" for n in r["notes"]] + [""]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    ev = argparse.ArgumentParser(prog="python -m model_export.evaluation.dataset_report", description="Quality report of generated datasets (markdown with figures).")
    ev.add_argument("dataset", nargs="+", help="dataset folder(s) made by the dataset command (LEVIR-CD layout for the change-detection test)")
    ev.add_argument("--report", help="markdown file to write (default: FIRST_DATASET/evaluation/report.md)")
    ev.add_argument("--figures", help="folder for the figures (default: a 'figures' folder beside the report)")
    ev.add_argument("--test-sets", nargs="+", default=DEFAULT_TEST_SETS, metavar="DIR",
                    help=f"folders of real change pairs (A/, B/, label/) for the usefulness test (default {' '.join(DEFAULT_TEST_SETS)})")
    ev.add_argument("--segmentation", help="segmentation checkpoint (model_export.evaluation.segmentation); default: train one now on --seg-data")
    ev.add_argument("--seg-data", nargs="+", default=DEFAULT_SEG_DATA, help="real image/label folders for the segmentation net")
    ev.add_argument("--no-segmentation", action="store_true", help="skip the map-following judge")
    ev.add_argument("--cd-epochs", type=int, default=20, help="training epochs of the change-detection net (default 20)")
    ev.add_argument("--max-minutes", type=float, default=10.0,
                    help="time limit of each network's training (default 10; 0: none, the change-detection nets stop after "
                         "--cd-epochs, so that a busy machine does not change a figure)")
    ev.add_argument("--few-shot", nargs="*", type=int, default=[1, 3, 5], metavar="K", help="real training pairs of the few-shot runs (default 1 3 5; none: skip)")
    ev.add_argument("--few-shot-splits", type=int, default=3, help="random splits per k (default 3)")
    ev.add_argument("--few-shot-steps", type=int, default=150, help="training steps of each few-shot net (default 150)")
    ev.add_argument("--compare-pre-event", action="store_true",
                    help="also train on the generated pre-event images redrawn by the model's autoencoder (--pre-event redrawn)")
    ev.add_argument("--compare-appearance-shift", action="store_true",
                    help="and once more with every generated post-event image shifted in appearance by its sample's draw "
                         "(dataset --appearance-shift): colour, brightness, haze, a pixel or two of misregistration")
    ev.add_argument("--nets-per-arm", type=int, default=1, metavar="N",
                    help="change-detection nets per arm, each from its own seed (SEED, SEED+1, ...); the figures are their means "
                         "and spreads (default 1; each costs the arm's training time and its few-shot runs again)")
    ev.add_argument("--baseline", action="append", default=[], metavar="NAME=DIR[,DIR...]",
                    help="one more arm of the usefulness test: a baseline made without the model (python -m "
                         "model_export.evaluation.baselines copy-paste|random-pairing), its datasets joined by commas; repeatable")
    ev.add_argument("--arm", action="append", default=[], metavar="NAME=DIR[,DIR...]",
                    help="one more generated arm, made by the dataset command another way (e.g. --post-event inpaint), its "
                         "datasets joined by commas; trained on its own samples and reported among the generated arms (not a "
                         "baseline); all of one arm's datasets must share one --post-event mode; repeatable")
    ev.add_argument("--compare-arm-appearance-shift", action="append", default=[], metavar="NAME",
                    help="train the --arm named NAME once more with every post-event image shifted in appearance by its "
                         "sample's draw, as --compare-appearance-shift does for the generated datasets; repeatable")
    ev.add_argument("--nets-folder", metavar="DIR",
                    help="one JSON file per change-detection net with its figures (default: FIGURES/nets); a rerun with the "
                         "same data and settings reads them and trains only the missing nets, so a long run resumes across "
                         "sessions and machines")
    ev.add_argument("--no-torch", action="store_true", help="skip the parts that need PyTorch (segmentation, change detection)")
    ev.add_argument("--note", action="append", default=[], metavar="MARKDOWN", help="a paragraph to put at the top of the report (repeatable)")
    ev.add_argument("--notes-file", metavar="FILE", help="markdown to put at the top of the report")
    ev.add_argument("--rerender", action="store_true", help="write the report again from the figures' results.json (new notes; measures nothing)")
    ev.add_argument("--threads", type=int, help="PyTorch threads (default: PyTorch's choice; 1 is fastest on a busy machine)")
    ev.add_argument("--seed", type=int, default=0)
    return ev


def _baseline_args(given: list[str], option: str = "--baseline",
                   example: str = "copy-paste=build/usefulness/baselines/copy-paste/oem") -> dict:
    """``--baseline NAME=DIR[,DIR...]`` (or ``--arm``) options -> {name: [folders]}."""
    out: dict = {}
    for item in given:
        name, _, folders = item.partition("=")
        name = name.strip()
        if not name or not folders.strip():
            raise InputError(f"{option} {item!r}: give NAME=DIR (or NAME=DIR,DIR,...), e.g. {example}.")
        if name in out:
            raise InputError(f"{option} {name!r} is given twice; give each arm once, its folders joined by commas.")
        out[name] = [f.strip() for f in folders.split(",") if f.strip()]
    return out


def main(argv: list[str] | None = None) -> int:
    from changeanywhere_qgis.cli.progress_bar import progress_bar

    args = build_parser().parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    try:
        notes = list(args.note)
        if args.notes_file:
            try:
                notes.insert(0, Path(args.notes_file).read_text(encoding="utf-8").strip())
            except OSError as exc:
                raise InputError(f"Cannot read the notes file {args.notes_file} ({exc}).") from exc
        settings = EvaluateSettings(test_sets=args.test_sets, segmentation=args.segmentation, seg_data=args.seg_data,
                                    use_segmentation=not args.no_segmentation, cd_epochs=args.cd_epochs, max_minutes=args.max_minutes,
                                    few_shot_k=tuple(args.few_shot), few_shot_splits=args.few_shot_splits,
                                    few_shot_steps=args.few_shot_steps, compare_pre_event=args.compare_pre_event,
                                    compare_appearance_shift=args.compare_appearance_shift, nets_per_arm=args.nets_per_arm,
                                    baselines=_baseline_args(args.baseline),
                                    arms=_baseline_args(args.arm, "--arm", "inpaint=build/usefulness/inpaint/oem"),
                                    shift_arms=list(args.compare_arm_appearance_shift),
                                    nets_folder=args.nets_folder,
                                    use_torch=not args.no_torch, seed=args.seed, threads=args.threads, notes=notes,
                                    rerender=args.rerender, command="python -m model_export.evaluation.dataset_report " + shlex.join(argv))
        progress, bar = progress_bar()
        try:
            result = evaluate_dataset(args.dataset, report=args.report, figures=args.figures, settings=settings, progress=progress)
        finally:
            bar.close()
    except ChangeAnywhereError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        return 130
    print(f"Wrote {result['report']}")
    for line in result["summary"]:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

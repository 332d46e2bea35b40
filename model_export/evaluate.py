"""Evidence that a generated dataset is good: ``python -m model_export.evaluate DATASET --report REPORT.md``.

It lives on the training side because its judges are PyTorch networks; the plugin never imports it.
Measured with the engine's numpy measures (``changeanywhere_qgis/engine/quality``, no torch):

* unchanged land stays consistent: PSNR and SSIM between the pre- and post-event images inside the
  unchanged area, beside the same figures inside the changed area;
* no seams: the engine's seam score (``quality/seams.py``) on tiles larger than the model's tile.

With PyTorch (``--no-torch`` skips these), also:

* generated images follow their maps: the segmentation net of ``model_export/segmentation.py`` labels
  the generated images; mIoU against the conditioning map, the same net on real images as the ceiling
  and on the map rotated 180 degrees as the floor;
* usefulness: FC-Siam-diff trained only on the generated dataset, tested on real LEVIR-CD pairs
  (``model_export/change_detection.py``), against the same net untrained and an image-difference baseline.

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
from changeanywhere_qgis.engine.io import read_change, read_raster, write_raster
from changeanywhere_qgis.engine.progress import Progress
from changeanywhere_qgis.engine.quality import MIN_REGION_PX, region_consistency, seam_score

REPO = Path(__file__).resolve().parents[1]
HELD_OUT = {"image": "data/train/oem/images/houston_16.tif", "label": "data/train/oem/labels/houston_16.tif",
            "rows": (768, 1024), "cols": (768, 1024)}  # never used to train the bundled models
MAX_JUDGED = 400  # samples the segmentation judge labels


@dataclass
class EvaluateSettings:
    levir: str = "data/levir-cd"
    segmentation: str | None = None  # checkpoint folder; None: model_export/runs/default/segmentation, or train one
    seg_data: list = field(default_factory=lambda: ["data/train/oem", "data/train/loveda@loveda"])
    cd_epochs: int = 20
    max_minutes: float = 10.0
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
# the report


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def _roles(record: dict) -> tuple[str, str, str | None]:
    files = record["files"]
    if "A" in files:
        return files["A"], files["B"], files["label"]
    return files["im1"], files["im2"], None


def evaluate_dataset(dataset, report=None, figures=None, settings: EvaluateSettings | None = None,
                     progress: Progress | None = None) -> dict:
    settings = settings or EvaluateSettings()
    progress = progress or Progress()
    root = Path(dataset)
    if not (root / SPEC_FILE).is_file():
        raise InputError(f"{root} is not a dataset made by the dataset command (no {SPEC_FILE}). Give the dataset folder.")
    spec = json.loads((root / SPEC_FILE).read_text())
    records = load_records(root)
    if not records:
        raise InputError(f"{root} holds no finished sample yet. Generate the dataset first.")
    report = Path(report) if report else root / "evaluation" / "report.md"
    figures = Path(figures) if figures else report.parent / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    report.parent.mkdir(parents=True, exist_ok=True)
    if settings.rerender:
        saved = figures / "results.json"
        if not saved.is_file():
            raise InputError(f"No {saved} to write the report from. Run evaluate without --rerender first.")
        results = json.loads(saved.read_text())
        report.write_text(render(results, spec, settings, report, figures))
        return {"report": str(report), "results": results, "summary": _short(results)}
    use_torch = settings.use_torch and torch_available()
    progress.start(len(records) + (3 * len(records) if use_torch else 0))
    results: dict = {"dataset": str(root), "samples": len(records), "tile": spec["settings"]["tile"],
                     "settings": spec["settings"], "model": spec["model"], "real_pre_event_images": bool(spec["images"])}

    # 1. consistency and seams, sample by sample
    progress.stage("measuring consistency and seams")
    per_sample, mismatched, seams_t1, seams_t2, gallery, maps = [], 0, [], [], [], []
    model_tile, overlap = spec["model_tile"]["size"], spec["model_tile"]["overlap_px"]
    seams_apply = spec["settings"]["tile"] > model_tile
    for k, record in enumerate(records):
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
        if len(gallery) < 4 and changed.any():
            gallery.append([colourise(pre, spec["classes"]), t1, colourise(post, spec["classes"]), t2,
                            np.repeat((changed * 255).astype(np.uint8)[None], 3, 0)])
        progress.advance()
    results["maps_rebuilt_mismatch"] = mismatched
    results["consistency"] = {region: {m: _summary([s[region][m] for s in per_sample]) for m in ("psnr", "ssim")}
                              for region in ("unchanged", "changed")}
    results["seams"] = {"applies": seams_apply, "model_tile": model_tile, "overlap_px": overlap,
                        "t2": _summary(seams_t2), "t1": _summary(seams_t1)}
    write_raster(figures / "samples.png", mosaic(gallery), "png")

    # 2. torch judges
    notes = []
    if not use_torch:
        why = "--no-torch was given" if not settings.use_torch else "PyTorch is not importable here"
        notes.append(f"The segmentation and change-detection checks were skipped: {why}. Install requirements-dev.txt and rerun.")
    else:
        results["segmentation"] = _segmentation(root, spec, maps, settings, progress, report.parent)
        levir_root = Path(settings.levir)
        if not levir_root.is_absolute():
            levir_root = (Path.cwd() / levir_root) if (Path.cwd() / levir_root).exists() else REPO / levir_root
        if spec["settings"]["layout"] == "second" or spec["settings"].get("split_folders"):
            notes.append("The change-detection check needs the LEVIR-CD layout with list/ (flat folders); this dataset "
                         "has " + ("one folder per split." if spec["settings"].get("split_folders") else "SECOND's folders only."))
        elif not (levir_root / "A").is_dir():
            notes.append(f"The change-detection check was skipped: no LEVIR-CD pairs at {levir_root}.")
        else:
            progress.stage("training FC-Siam-diff on the generated data, testing on LEVIR-CD")
            from .change_detection import evaluate_change_detection

            cd = evaluate_change_detection(root, levir_root, epochs=settings.cd_epochs, max_minutes=settings.max_minutes,
                                           seed=settings.seed, threads=settings.threads, log=lambda m: progress.stage(m))
            write_raster(figures / "levir_predictions.png", cd.pop("figure"), "png")
            results["change_detection"] = cd
        progress.advance(len(records))
    results["notes"] = notes
    results["command"] = settings.command
    (figures / "results.json").write_text(json.dumps(results, indent=2, default=str))
    text = render(results, spec, settings, report, figures)
    report.write_text(text)
    return {"report": str(report), "results": results, "summary": _short(results)}


def _segmentation(root: Path, spec: dict, maps, settings: EvaluateSettings, progress: Progress, workdir: Path) -> dict:
    from .change_detection import segmentation_miou, train_segmentation
    from .segmentation import read_record, recipe

    if settings.threads:
        import torch

        torch.set_num_threads(settings.threads)

    checkpoint = Path(settings.segmentation) if settings.segmentation else REPO / "model_export" / "runs" / "default" / "segmentation"
    trained_now = False
    if not (checkpoint / "segmentation.pt").is_file():
        if settings.segmentation:
            raise InputError(f"No segmentation.pt in {checkpoint}. Train one with python -m model_export.segmentation.")
        progress.stage("training the segmentation judge on the real labelled tiles")
        # The judge also sees the training tiles as this dataset's model redraws them: its images come out of that decoder.
        checkpoint = train_segmentation(workdir / "segmentation", settings.seg_data, min(settings.max_minutes, 6.0), settings.seed,
                                        settings.threads or 2, redrawn_by=spec["model"]["path"])
        trained_now = True
    progress.stage("segmenting the generated images")
    nodata = spec["nodata_code"]

    def masked(labels, valid):
        return np.where(valid, labels, nodata)

    out = {"checkpoint": str(checkpoint), "trained_now": trained_now, "recipe": recipe(read_record(checkpoint))}
    out["post_generated"] = segmentation_miou(checkpoint, [(t2, masked(post, v)) for _, t2, _, post, v in maps])
    out["post_generated_vs_rotated_map"] = segmentation_miou(checkpoint, [(t2, masked(post, v)[::-1, ::-1]) for _, t2, _, post, v in maps])
    key = "pre_real" if spec["images"] else "pre_generated"
    out[key] = segmentation_miou(checkpoint, [(t1, masked(pre, v)) for t1, _, pre, _, v in maps])
    progress.advance(2 * len(maps))
    held = REPO / HELD_OUT["image"]
    if held.is_file():
        import rasterio

        (r0, r1), (c0, c1) = HELD_OUT["rows"], HELD_OUT["cols"]
        with rasterio.open(held) as src:
            image = src.read((1, 2, 3), window=((r0, r1), (c0, c1)))
        with rasterio.open(REPO / HELD_OUT["label"]) as src:
            label = src.read(1, window=((r0, r1), (c0, c1)))
        out["held_out_real"] = segmentation_miou(checkpoint, [(image, label)])
    return out


def _fmt(v, pattern="{:.2f}") -> str:
    return "n/a" if v is None else pattern.format(v)


def _short(r: dict) -> list[str]:
    c = r["consistency"]
    lines = [f"PSNR unchanged {_fmt(c['unchanged']['psnr']['mean'])} dB vs changed {_fmt(c['changed']['psnr']['mean'])} dB; "
             f"SSIM unchanged {_fmt(c['unchanged']['ssim']['mean'], '{:.3f}')} vs changed {_fmt(c['changed']['ssim']['mean'], '{:.3f}')}"]
    if r["seams"]["applies"]:
        lines.append(f"seam score of the post-event images {_fmt(r['seams']['t2']['mean'])} (1 = no seams)")
    if "segmentation" in r:
        s = r["segmentation"]
        lines.append(f"segmentation mIoU on generated post-event images {_fmt(s['post_generated']['miou'], '{:.3f}')}")
    if "change_detection" in r:
        for name, v in r["change_detection"]["results"].items():
            lines.append(f"LEVIR-CD {name}: F1 {v['f1']:.3f}")
    return lines


def render(r: dict, spec: dict, settings: EvaluateSettings, report: Path, figures: Path) -> str:
    st = spec["settings"]
    rel = lambda p: Path(p).resolve().relative_to(report.parent.resolve()).as_posix() if Path(p).resolve().is_relative_to(report.parent.resolve()) else str(p)  # noqa: E731
    c = r["consistency"]
    lines = ["# Quality of a generated change-detection dataset", ""]
    measured = r.get("command") if settings.rerender else settings.command
    if measured:
        lines += [f"Measured by `{measured}`" + (f"; this text written by `{settings.command}`." if settings.rerender and settings.command else "."), ""]
    for note in settings.notes:
        lines += [note, ""]
    lines += [f"Dataset `{r['dataset']}`: {r['samples']} samples of {st['tile']}x{st['tile']} px, model **{spec['model']['name']}**, "
              f"{st['steps']} DDIM steps, seed {st['seed']}, "
              + ("real pre-event images (A) with generated post-event images (B)." if r["real_pre_event_images"]
                 else "both images generated from the maps."),
              f"Measured on {platform.node() or 'this machine'} ({platform.machine()}), {time.strftime('%Y-%m-%d', time.gmtime())}.", "",
              "Dataset made by:", "", f"    {dataset_command(spec, r['samples'], r['dataset'])}", "",
              f"![samples]({rel(figures / 'samples.png')})", "",
              "Columns: pre-event map, pre-event image (A), post-event map, post-event image (B), change mask.", ""]
    lines += ["## Unchanged land stays consistent", "",
              "PSNR and SSIM between the pre- and post-event images, inside the land the events left unchanged and inside "
              f"the land they changed (per sample, then mean ± std over samples; regions under {MIN_REGION_PX} px are left out). "
              "Good samples keep the unchanged land close (high PSNR/SSIM) and redraw the changed land (low).", "",
              "| region | samples | PSNR (dB) | SSIM |", "| --- | --- | --- | --- |"]
    for region in ("unchanged", "changed"):
        p, s = c[region]["psnr"], c[region]["ssim"]
        lines.append(f"| {region} | {p['n']} | {_fmt(p['mean'])} ± {_fmt(p['std'])} | {_fmt(s['mean'], '{:.3f}')} ± {_fmt(s['std'], '{:.3f}')} |")
    lines += ["", f"The maps were rebuilt from each sample's window and seed; {r['maps_rebuilt_mismatch']} of {r['samples']} "
              "disagreed with the stored change mask.", ""]
    seams = r["seams"]
    lines += ["## No seams", ""]
    if seams["applies"]:
        which = "real pre-event images, for reference" if r["real_pre_event_images"] else "generated pre-event images"
        lines += [f"Each {st['tile']} px tile is generated as overlapping {seams['model_tile']} px model tiles ({seams['overlap_px']} px "
                  "overlap, fused at every step). Seam score (`engine/quality/seams.py`, as in `make bench`): mean pixel jump across the "
                  "model-tile boundaries over the mean jump elsewhere; 1 means the boundaries cannot be told apart.", "",
                  "| images | samples | seam score mean | median |", "| --- | --- | --- | --- |",
                  f"| post-event (generated) | {seams['t2']['n']} | {_fmt(seams['t2']['mean'])} | {_fmt(seams['t2']['median'])} |",
                  f"| pre-event ({which}) | {seams['t1']['n']} | {_fmt(seams['t1']['mean'])} | {_fmt(seams['t1']['median'])} |", ""]
    else:
        lines += [f"Not measured: the tiles ({st['tile']} px) are no larger than the model's tile ({seams['model_tile']} px), "
                  "so each sample is one model tile and has no internal boundary.", ""]
    if "segmentation" in r:
        s = r["segmentation"]
        lines += ["## Generated images follow their maps", "",
                  f"A small segmentation network (`model_export/segmentation.py`, {s.get('recipe', 'trained on the real labelled tiles')}; "
                  f"checkpoint `{s['checkpoint']}`{', trained for this report' if s['trained_now'] else ''}) labels each image; "
                  "mIoU against the map the image was generated from (classes present in the map; nodata ignored).", "",
                  "| images | maps | mIoU |", "| --- | --- | --- |",
                  f"| post-event, generated | their post-event maps | **{_fmt(s['post_generated']['miou'], '{:.3f}')}** |",
                  f"| post-event, generated | the same maps rotated 180° (an image that ignores its map) | {_fmt(s['post_generated_vs_rotated_map']['miou'], '{:.3f}')} |"]
        if "pre_real" in s:
            lines.append(f"| pre-event, real (these windows were in the judge's training data) | their maps | {_fmt(s['pre_real']['miou'], '{:.3f}')} |")
        else:
            lines.append(f"| pre-event, generated | their maps | {_fmt(s['pre_generated']['miou'], '{:.3f}')} |")
        if "held_out_real" in s:
            lines.append(f"| real held-out window (houston_16 rows 768-1023, cols 768-1023; the ceiling) | its map | {_fmt(s['held_out_real']['miou'], '{:.3f}')} |")
        lines.append("")
    if "change_detection" in r:
        cd = r["change_detection"]
        t = cd["train"]
        lines += ["## Usefulness: trained on generated data, tested on real LEVIR-CD", "",
                  f"FC-Siam-diff (`model_export/change_detection.py`) trained only on this dataset's train and val splits "
                  f"({t['samples']} samples, random {t['crop']} px crops, {t['epochs_run']} of {t['epochs']} epochs, {t['steps']} steps, "
                  f"{t['seconds'] / 60:.1f} min, stopped by {t['stopped_by']}; loss {_fmt(t['loss_first'], '{:.3f}')} → {_fmt(t['loss_last'], '{:.3f}')}), "
                  f"then tested on the {cd['levir']['pairs']} real LEVIR-CD pairs in `data/levir-cd` "
                  f"({cd['levir']['changed_share']:.1%} of their pixels changed). Thresholds were picked on the generated test split "
                  f"({cd['threshold_samples']} samples), never on LEVIR-CD. Scores over all test pixels.", "",
                  "| method | F1 | IoU | precision | recall |", "| --- | --- | --- | --- | --- |"]
        for name, v in cd["results"].items():
            lines.append(f"| {name} | {v['f1']:.3f} | {v['iou']:.3f} | {v['precision']:.3f} | {v['recall']:.3f} |")
        lines += ["", f"![LEVIR-CD predictions]({rel(figures / 'levir_predictions.png')})", "",
                  "Columns: " + ", ".join(cd["figure_columns"]) + ".", ""]
    if r["notes"]:
        lines += ["## Not measured", ""] + [f"- {n}" for n in r["notes"]] + [""]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    ev = argparse.ArgumentParser(prog="python -m model_export.evaluate", description="Quality report of a generated dataset (markdown with figures).")
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
    return ev


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
        settings = EvaluateSettings(levir=args.levir, segmentation=args.segmentation, seg_data=args.seg_data,
                                    cd_epochs=args.cd_epochs, max_minutes=args.max_minutes, use_torch=not args.no_torch, seed=args.seed,
                                    threads=args.threads, notes=notes, rerender=args.rerender,
                                    command="python -m model_export.evaluate " + shlex.join(argv))
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

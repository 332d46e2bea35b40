"""What a finished dataset says about itself: its splits, statistics, README card and remaking command.

Pure functions of the dataset's spec (``dataset.json``) and sample records; ``dataset.py`` calls
them once every sample is written, ``evaluate.py`` reads the command back.
"""

from __future__ import annotations

import shlex
from dataclasses import fields
from pathlib import Path

import numpy as np

from .. import __version__ as engine_version
from ..io import SPLITS, parts
from ..diffusion import DEFAULT_INPAINT_MARGIN_PX, DEFAULT_PRECISION, DEFAULT_RERENDER_STRENGTH, DEFAULT_SAMPLER, resolve_post_event
from .job import LEGACY_SETTINGS, SPLIT_FRACTIONS, DatasetSettings, spec_sampler_tile

MIN_SPLIT = 2  # np.loadtxt reads a one-name list as a 0-d array (BIT, ChangeFormer fail on it); an empty one has no samples


def split_sizes(count: int, fractions=SPLIT_FRACTIONS) -> tuple[dict[str, int], list[str]]:
    """How many samples each split gets, and why a split differs from its share.

    val and test get round(count x share) samples (as always: the same splits as before for datasets of 15 or
    more samples at the default shares), train the rest; a split that would hold one name gets two while train
    keeps two, else none (its samples go to train), so no split holds 0 or 1 names.
    """
    shares = dict(zip(SPLITS, fractions))
    sizes = {"train": 0, "val": round(count * shares["val"]), "test": round(count * shares["test"])}
    notes = []
    for split in ("val", "test"):
        if shares[split] == 0:
            continue
        if sizes[split] == 1 and count - sizes["val"] - sizes["test"] - 1 >= MIN_SPLIT:
            sizes[split] = MIN_SPLIT
            notes.append(f"{split} holds {MIN_SPLIT} samples rather than 1 ({shares[split]:.0%} of {count}): a split of one name "
                         "is read by np.loadtxt as a 0-d array.")
        elif sizes[split] < MIN_SPLIT:
            notes.append(f"No {split} split: {count} samples are too few for {shares[split]:.0%} of them to make {MIN_SPLIT} "
                         f"or more; its samples are in train.")
            sizes[split] = 0
    squeezed = set()
    while count - sizes["val"] - sizes["test"] < MIN_SPLIT:  # shares that leave train under 2 names
        split = max(("val", "test"), key=lambda k: sizes[k])
        sizes[split] = sizes[split] - 1 if sizes[split] > MIN_SPLIT else 0
        squeezed.add(split)
    notes += [f"{split} holds {sizes[split]} samples, fewer than its share, so that train holds at least {MIN_SPLIT}."
              for split in sorted(squeezed)]
    sizes["train"] = count - sizes["val"] - sizes["test"]
    return sizes, notes


def assign_splits(count: int, seed: int, fractions=SPLIT_FRACTIONS) -> tuple[list[str], list[str]]:
    """Each sample's split (sizes from :func:`split_sizes`), spread over the samples by the dataset seed; and the notes."""
    sizes, notes = split_sizes(count, fractions)
    order = np.random.default_rng([int(seed), 0x5B117]).permutation(count)
    split = ["train"] * count
    for i in order[: sizes["val"]]:
        split[i] = "val"
    for i in order[sizes["val"] : sizes["val"] + sizes["test"]]:
        split[i] = "test"
    return split, notes


def dataset_statistics(records: list[dict], spec: dict) -> dict:
    """Class shares before/after, changed fraction, event counts, top transitions and s, over all samples."""
    names = {str(c["code"]): c["name"] for c in spec["classes"]}
    pre, post = np.zeros(256), np.zeros(256)
    for r in records:
        for code, n in r["class_pixels"]["pre"].items():
            pre[int(code)] += n
        for code, n in r["class_pixels"]["post"].items():
            post[int(code)] += n
    fractions = np.array([r["changed_fraction"] for r in records])
    kinds: dict[str, int] = {}
    transitions: dict[tuple[int, int], int] = {}
    for r in records:
        for e in r["events"]:
            kinds[e["kind"]] = kinds.get(e["kind"], 0) + 1
        for t in r["transitions"]:
            transitions[(t["from"], t["to"])] = transitions.get((t["from"], t["to"]), 0) + t["pixels"]
    changed_total = sum(transitions.values())
    top = sorted(transitions.items(), key=lambda kv: -kv[1])[:10]
    s = np.array([r["s"] for r in records])
    return {
        "samples": len(records),
        "classes": [{"code": int(c), "name": names[c], "pre": float(pre[int(c)] / max(pre.sum(), 1)),
                     "post": float(post[int(c)] / max(post.sum(), 1))} for c in names],
        "changed_fraction": {"mean": float(fractions.mean()), "median": float(np.median(fractions)),
                             "min": float(fractions.min()), "max": float(fractions.max()),
                             "no_change_samples": int((fractions == 0).sum())},
        "events": kinds,
        "top_transitions": [{"from": names.get(str(a), str(a)), "to": names.get(str(b), str(b)),
                             "share": n / max(changed_total, 1)} for (a, b), n in top],
        "s": {"min": float(s.min()), "max": float(s.max()), "mean": float(s.mean())},
        **_hidden_change(records),
    }


def _pre_event_text(pre_event: str) -> str:
    if pre_event == "redrawn":
        return ("The pre-event images are the model's autoencoder's copies of the real images given (`--pre-event redrawn`), "
                "so both dates come out of the same decoder.")
    return "The pre-event images are the real images given (`--pre-event real`)."


def _post_event_text(st: dict) -> str:
    """How image B was made beyond the change: inpainted (image A kept there), or drawn in full (nothing said: the text
    before already says so)."""
    if st.get("post_event", "full") != "inpaint":
        return ""
    rerender = st.get("rerender_strength", 0.0)
    kept = ("image A pixel for pixel" if not rerender else
            f"image A re-rendered by the model at noise level {rerender:g} (`--rerender-strength`)")
    return (f" The post-event images are inpainted (`--post-event inpaint`, docs/guide/inpainting.md): the model drew only "
            f"the changed land and {st.get('inpaint_margin_px', 32)} px around it (`--inpaint-margin`), conditioned on image "
            f"A there for the whole reverse process and faded into it; beyond that margin image B is {kept}.")


def _hidden_change(records: list[dict]) -> dict:
    """Samples whose change the mapping into SECOND's classes hides, in part or whole (layouts with SECOND)."""
    if not records or "hidden_change_pixels" not in records[0]:
        return {}
    changed = [sum(t["pixels"] for t in r["transitions"]) for r in records]
    hidden = [r["hidden_change_pixels"] for r in records]
    return {"hidden_change": {"samples": sum(h > 0 for h in hidden),
                              "samples_all_hidden": sum(h > 0 and h == c for h, c in zip(hidden, changed)),
                              "share_of_changed_pixels": sum(hidden) / max(sum(changed), 1)}}


READERS = {  # per layout part and arrangement: who reads it, and the one line a user changes
    ("levir", False): "BIT_CD and ChangeFormer (`CDDataset`: `np.loadtxt` on `list/<split>.txt`, labels divided by 255): set "
                      "`root_dir` of the LEVIR entry in `data_config.py` to this folder.",
    ("levir", True): "open-cd (`data_root` in `configs/_base_/datasets/levir_cd.py`: this folder; it reads `<split>/A/<name>.png`), "
                     "torchgeo (`LEVIRCD(root=<this folder>, split=...)` globs `<split>/A/*.png`) and torchange's LEVIR-CD "
                     "reader (its dataset folder: `<this folder>/<split>`, globbing `A/*.png`).",
    ("second", False): "readers that take a list of names (`list/<split>.txt`); SECOND's own readers want one folder per "
                       "split: make the dataset with `--split-folders`.",
    ("second", True): "SCanNet / Bi-SRNet (`datasets/RS_ST.py`: set `root` to this folder; it lists `<split>/im1` and decodes "
                      "`label1`/`label2` with `Color2Index` in SECOND's palette), open-cd's SECOND configuration (`data_root`: "
                      "this folder) and torchange's SECOND reader (dataset folder `<this folder>/<split>`, index maps from "
                      "`label1_wo_cm`/`label2_wo_cm`).",
    ("classes", False): "any LEVIR-CD reader above for the change; the class maps with any image reader "
                        "(`np.array(PIL.Image.open(path))` gives the codes) and `list/<split>.txt` for the names.",
    ("classes", True): "any LEVIR-CD reader above for the change; the class maps with any image reader "
                       "(`np.array(PIL.Image.open(path))` gives the codes), globbing `<split>/class1/*.png`.",
}


def dataset_card(spec: dict, stats: dict, count: int, *, spec_file: str, correlation_range: tuple[float, float],
                 splits: dict[str, int] | None = None, split_notes: list[str] = (), skipped: int = 0) -> str:
    """The dataset's README.md: how it was made, its layout and who reads it, splits and change statistics."""
    st = spec["settings"]
    layout = st["layout"]
    split_folders = bool(st.get("split_folders"))
    splits = splits if splits is not None else dict(zip(SPLITS, split_sizes(count, st.get("split_fractions", SPLIT_FRACTIONS))[0]))
    kept = stats["samples"]
    lines = [
        "# Synthetic change-detection dataset", "",
        f"Made by ChangeAnywhere for QGIS (engine {engine_version}) with the model **{spec['model']['name']}** "
        f"(version {spec['model']['version']}). {kept} samples of {st['tile']}x{st['tile']} px, "
        + _solver_text(st)
        + (f"guidance scale {st['guidance']:g}" if st.get("guidance") is not None else "the model's guidance scale")
        + f"), dataset seed {st['seed']}."
        + (f" {skipped} of the {count} samples drawn were skipped: the mapping into SECOND's classes hides part of their "
           "change (`--skip-hidden-change`)." if skipped else ""), "",
        "Every sample is a tile of a land-cover map with random object-level change events (objects added, removed, "
        "or turned into another class under the transition table " + (f"`{st['transitions']}`" if st["transitions"] else "of OpenEarthMap rules") +
        "); the post-event image is generated by a semantic latent diffusion model under the post-event map, the "
        "unchanged land mixed in from the pre-event image with a content correlation s drawn per sample from "
        f"U({correlation_range[0]}, {correlation_range[1]}). "
        + (_pre_event_text(st.get("pre_event", "real")) if spec["images"] else "The pre-event images are generated from the maps too.")
        + _post_event_text(st)
        + (f" Every post-event image took the appearance of the style image `{spec['style']['path']}` (sha256 "
           f"{spec['style']['sha256'][:12]}..., strength {st.get('style_strength', 1.0):g}; `--style`, docs/guide/style.md)."
           if spec.get("style") else "")
        + (" " + APPEARANCE_TEXT if st.get("appearance_shift") else ""),
        "", "## Sources", "",
    ]
    lines += [f"- `{p}`" + (f" with image `{spec['images'][k]}`" if spec["images"] else "") for k, p in enumerate(spec["semantic"])]
    command = dataset_command(spec, count, ".", relative=False)
    lines += ["", "Made (and resumed, if interrupted) by this command, run inside this folder:", "",
              f"    {command}", ""]
    lines += ["Generated imagery inherits the licences of the model's training data and of the input maps; "
              "see the model's card.", "", "## Layout and readers", ""]
    where = ("One folder per split (" + ", ".join(f"`{s}/`" for s in SPLITS if splits.get(s)) + "), as the official releases have; "
             "in each:" if split_folders else "Flat folders, the splits in `list/` (one file name a line, extension included):")
    lines += [where, ""]
    shown = parts(layout)
    if "levir" in shown:
        lines += ["- LEVIR-CD: `A/` pre-event image, `B/` post-event image, `label/` change mask (0 unchanged, 255 changed). "
                  f"Read by {READERS[('levir', split_folders)]}"]
    if "second" in shown:
        lines += ["- SECOND: `im1/`, `im2/` images; `label1/`, `label2/` RGB in SECOND's palette: white (255, 255, 255) where "
                  "nothing changed, the changed land's class before and after in SECOND's classes (table below); "
                  "`label1_wo_cm/`, `label2_wo_cm/` the same as an index (0 unchanged, 1 to 6 SECOND's classes); "
                  "`label1_full/`, `label2_full/` the whole maps before and after in the model's classes (index = code, "
                  f"0 = no data). Read by {READERS[('second', split_folders)]} (Datasets of this tool made before SECOND's "
                  "palette was used held the model's class codes where the land changed in `label1/`, `label2/`.)"]
    if "classes" in shown:
        lines += ["- The model's classes: `class1/`, `class2/` the whole land-cover map before and after, single-band index "
                  "images without a palette, pixel value = class code (table below), 0 = no data; `classes.json` lists "
                  f"codes, names and colours. Read by {READERS[('classes', split_folders)]}"]
    lines += [f"- `manifest.jsonl`: one line per sample (source raster, window, seed, s, events, class transitions, "
              f"change fraction, split, files); `{spec_file}`: the settings (a rerun with them resumes an unfinished dataset)."
              + (" `classes.json`: the classes (and SECOND's, with the mapping) for programs." if ("second" in shown or "classes" in shown) else ""),
              f"- Files are {st['fmt'].upper()}" + (" (GeoTIFFs keep the window's georeferencing)." if st["fmt"] == "tif" else "."), "",
              "## Splits", ""]
    fractions = st.get("split_fractions", SPLIT_FRACTIONS)
    lines += [f"Shares asked for: train {fractions[0]:.0%}, val {fractions[1]:.0%}, test {fractions[2]:.0%}; no split holds "
              "fewer than 2 names (np.loadtxt reads a one-name list as a 0-d array).", ""]
    lines += ["| split | samples |", "| --- | --- |"]
    lines += [f"| {name} | {splits.get(name, 0)} |" for name in SPLITS]
    if split_notes:
        lines += [""] + [f"- {note}" for note in split_notes]
    if "second" in shown and "second_classes" in spec:
        lines += ["", "## SECOND's classes", "",
                  "The model's classes mapped into SECOND's (" + ("the built-in table" if spec["second_classes"]["source"] == "built-in"
                                                              else f"`{spec['second_classes']['source']}`") +
                  "; `--second-classes FILE.json` replaces it):", "",
                  "| model class | SECOND class | SECOND colour |", "| --- | --- | --- |"]
        colours = {c["name"]: c["color"] for c in spec["second_classes"].get("classes", [])}
        lines += [f"| {ours} | {theirs} | {tuple(colours[theirs]) if theirs in colours else ''} |"
                  for ours, theirs in spec["second_classes"]["mapping"].items()]
        hidden = stats.get("hidden_change")
        if hidden is not None:
            lines += ["", f"{hidden['samples']} of the {kept} samples hold changed land that the mapping hides (both classes "
                      f"fall into one SECOND class, e.g. road to developed space: both ground), {hidden['samples_all_hidden']} "
                      f"of them all their change; {hidden['share_of_changed_pixels']:.1%} of the changed pixels. SECOND's labels "
                      "show no change there (white, 0 in `*_wo_cm`); `label/` and the `*_full` maps show it."]
    cf = stats["changed_fraction"]
    lines += ["", "## Change statistics", "",
              f"Changed land per sample: mean {cf['mean']:.1%}, median {cf['median']:.1%}, min {cf['min']:.1%}, "
              f"max {cf['max']:.1%}; {cf['no_change_samples']} samples without change. "
              f"Content correlation s: {stats['s']['min']:.2f} to {stats['s']['max']:.2f} (mean {stats['s']['mean']:.2f}).", "",
              "| event | count |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in sorted(stats["events"].items())]
    lines += ["", "Most frequent class transitions (share of the changed pixels):", "", "| from | to | share |", "| --- | --- | --- |"]
    lines += [f"| {t['from']} | {t['to']} | {t['share']:.1%} |" for t in stats["top_transitions"]]
    colour = {c["code"]: tuple(c["color"]) for c in spec["classes"]}
    lines += ["", "## Classes", "", "The model's classes (0 = no data), their colours, and their share of the labelled pixels "
              "before and after the events:", "",
              "| code | class | colour | pre-event | post-event |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {c['code']} | {c['name']} | {colour.get(c['code'], '')} | {c['pre']:.1%} | {c['post']:.1%} |" for c in stats["classes"]]
    return "\n".join(lines) + "\n"


APPEARANCE_TEXT = ("Each post-event image (B, im2) took a random appearance shift after it was generated, as real unchanged "
                   "land between two dates has: a colour change, brightness, haze and a misregistration of up to 2 px (B moved "
                   "against A and the labels); each sample's shift is in `manifest.jsonl` (`appearance_shift`), drawn from its "
                   "seed (`--appearance-shift`, off by default; docs/guide/appearance-shifts.md).")


def _solver_text(st: dict) -> str:
    """The solver, its steps and (DDIM's) eta, opening the bracket the guidance closes; a spec without a sampler is DDIM's,
    one without a mixing the paper's latent mixing, one without a precision the float denoiser (each named only when it
    is the other)."""
    mixing = st.get("mixing", LEGACY_SETTINGS["mixing"])
    precision = st.get("precision", LEGACY_SETTINGS["precision"])
    details = (f", {st['sampler_tile']} px sampler tiles" if st.get("sampler_tile") else "") + \
        (f", {mixing} mixing" if mixing != LEGACY_SETTINGS["mixing"] else "") + \
        (f", the {precision} denoiser" if precision != LEGACY_SETTINGS["precision"] else "")
    if st.get("sampler", "ddim") == "ddim":
        return f"{st['steps']} DDIM steps (eta {st['eta']}{details}, "
    return f"{st['steps']} DPM-Solver++ 2M steps ({st['sampler']}{details}, "


def dataset_command(spec: dict, count: int, out: str, relative: bool = True) -> str:
    """The command line that makes (or resumes) this dataset; ``relative``: paths relative to the working folder
    when inside it (else as recorded, absolute)."""
    def rel(p: str) -> str:
        try:
            return str(Path(p).resolve().relative_to(Path.cwd())) if relative else p
        except ValueError:
            return p

    st = spec["settings"]
    args = ["python", "-m", "changeanywhere_qgis", "dataset", "--semantic", *map(rel, spec["semantic"])]
    if spec["images"]:
        args += ["--image", *map(rel, spec["images"]), "--pre-event", st.get("pre_event", "real")]
    args += ["--count", str(count), "--tile", str(st["tile"]), "--layout", st["layout"], "--format", st["fmt"],
             "--seed", str(st["seed"]), "--steps", str(st["steps"])]
    defaults = {f.name: f.default for f in fields(DatasetSettings)}  # flags at their default are left out
    flags = {"eta": "--eta", "guidance": "--guidance", "max_nodata": "--max-nodata", "transitions": "--transitions", "band": "--band",
             "remap": "--remap", "batch_size": "--batch-size"}
    for key, flag in flags.items():
        if st.get(key) != defaults[key]:
            args += [flag, str(st[key])]
    if tuple(st.get("split_fractions", SPLIT_FRACTIONS)) != SPLIT_FRACTIONS:
        args += ["--splits", *(f"{f:g}" for f in st["split_fractions"])]
    sampler = st.get("sampler", LEGACY_SETTINGS["sampler"])  # a spec without one was made with DDIM
    args += ["--sampler", sampler] if sampler != DEFAULT_SAMPLER else []
    tile = spec_sampler_tile(spec)  # named either way, as --pre-event is: its default may change (check S2)
    args += ["--tile-size", str(tile)] if tile else []
    # named either way: its default changed (prediction by check S2), and a spec without one was made with latent mixing
    args += ["--mixing", st.get("mixing", LEGACY_SETTINGS["mixing"])]
    precision = st.get("precision", LEGACY_SETTINGS["precision"])  # a spec without one was made with the float denoiser
    args += ["--precision", precision] if precision != DEFAULT_PRECISION else []
    args += ["--split-folders"] if st.get("split_folders") else []
    args += ["--second-classes", rel(st["second_classes"])] if st.get("second_classes") else []
    args += ["--skip-hidden-change"] if st.get("skip_hidden_change") else []
    args += ["--dates", str(st["dates"])] if st.get("dates", 2) != 2 else []
    # a pair dataset's command names its appearance shifts either way, as it names --pre-event: their default has
    # changed (on by check U2, off by U5), and the card's command must make this dataset whatever the default is then
    if st.get("dates", 2) == 2:
        args += ["--appearance-shift" if st.get("appearance_shift") else "--no-appearance-shift"]
    args += ["--style", rel(spec["style"]["path"]), "--style-strength", f"{st.get('style_strength', 1.0):g}"] if spec.get("style") else []
    # named whenever it is not what the default then makes for these dates (a series: full, whatever the pairs' default);
    # inpaint always, with the margin and re-render strength that go with it
    post_event = st.get("post_event", LEGACY_SETTINGS["post_event"])
    if post_event == "inpaint":
        args += ["--post-event", "inpaint", "--inpaint-margin", str(st.get("inpaint_margin_px", DEFAULT_INPAINT_MARGIN_PX)),
                 "--rerender-strength", f"{st.get('rerender_strength', DEFAULT_RERENDER_STRENGTH):g}"]
    elif post_event != resolve_post_event(None, st.get("dates", 2)):
        args += ["--post-event", post_event]
    args += ["--model", rel(spec["model"]["path"]), "--out", rel(out)]
    return shlex.join(args)

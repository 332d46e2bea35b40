"""The verdict of checks 6-10 (docs/research/map-following-checks.md): does a candidate package replace the bundled one?

Reads what ``scripts/package_check.sh`` wrote in its OUT folder (``{base,candidate}-holdout.json``,
``-unseen.json`` and ``-map-following.json``), prints each measure side by side and each criterion of the rule,
written down before the candidates existed:

- reconstruction PSNR of the held-out windows rises by at least 1 dB on Dubai and on FLAIR, and falls by at most
  0.3 dB on OpenEarthMap and LoveDA;
- the mean PSNR over the unseen images does not fall, and no image falls by more than 0.5 dB;
- the mean map-following ratio is at least the base's minus 0.1, and no window's ratio falls by more than 0.5.

    python -m model_export.evaluation.package_verdict build/check7

Exit status 0 when the candidate meets the rule, 1 when it does not, 2 when a measure is missing.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

# The least change of each source's held-out PSNR: the sources the candidate must learn, then those it must keep.
HELD_OUT_MIN_CHANGE_DB = {"dubai": +1.0, "flair": +1.0, "oem": -0.3, "loveda": -0.3}
UNSEEN_WORST_FALL_DB = 0.5
RATIO_MEAN_FALL = 0.1
RATIO_WINDOW_FALL = 0.5
# The measures are written to 0.01: a change that equals its bound must not fail on a float's last bit.
ROUNDING = 1e-9


@dataclass
class Criterion:
    text: str
    holds: bool


def criteria(base: dict, cand: dict) -> list[Criterion]:
    """Each criterion of the rule for two arms' measures: ``{"holdout": rows, "unseen": rows, "map": rows or None}``."""
    out = []
    held_b = {r["source"]: r["psnr_db"] for r in base["holdout"]}
    held_c = {r["source"]: r["psnr_db"] for r in cand["holdout"]}
    missing = sorted(set(HELD_OUT_MIN_CHANGE_DB) - (set(held_b) & set(held_c)))
    if missing:
        raise ValueError(f"the held-out measures lack the source(s) {', '.join(missing)}: run model_export.evaluation.holdout "
                         f"with every training source's folder for both packages")
    for source, bound in HELD_OUT_MIN_CHANGE_DB.items():
        d = held_c[source] - held_b[source]
        out.append(Criterion(f"held-out PSNR, {source}: {held_b[source]:.2f} -> {held_c[source]:.2f} dB ({d:+.2f}; "
                             f"at least {bound:+g})", d >= bound - ROUNDING))
    unseen_b = {r["image"]: r["256"] for r in base["unseen"]}
    unseen_c = {r["image"]: r["256"] for r in cand["unseen"]}
    if set(unseen_b) != set(unseen_c):
        raise ValueError("the two arms' unseen images differ: run both with the same autoencoder_tiles")
    mean_b, mean_c = (sum(u.values()) / len(u) for u in (unseen_b, unseen_c))
    out.append(Criterion(f"unseen images, mean PSNR: {mean_b:.2f} -> {mean_c:.2f} dB ({mean_c - mean_b:+.2f}; no fall)",
                         mean_c >= mean_b - ROUNDING))
    worst = min(unseen_b, key=lambda k: unseen_c[k] - unseen_b[k])
    d = unseen_c[worst] - unseen_b[worst]
    out.append(Criterion(f"unseen images, worst: {worst} {unseen_b[worst]:.2f} -> {unseen_c[worst]:.2f} dB ({d:+.2f}; "
                         f"at most -{UNSEEN_WORST_FALL_DB:g})", d >= -UNSEEN_WORST_FALL_DB - ROUNDING))
    if base.get("map") is not None and cand.get("map") is not None:
        ratio_b = {r["source"]: r["generated_ratio"] for r in base["map"]}
        ratio_c = {r["source"]: r["generated_ratio"] for r in cand["map"]}
        mean_b, mean_c = (sum(r.values()) / len(r) for r in (ratio_b, ratio_c))
        out.append(Criterion(f"map-following, mean ratio: {mean_b:.2f}x -> {mean_c:.2f}x ({mean_c - mean_b:+.2f}; "
                             f"at most -{RATIO_MEAN_FALL:g})", mean_c >= mean_b - RATIO_MEAN_FALL - ROUNDING))
        for source in ratio_b:
            d = ratio_c[source] - ratio_b[source]
            # a NaN ratio (the judge finds nothing on the rotated map) decides nothing either way: it fails the criterion
            out.append(Criterion(f"map-following, {source}: {ratio_b[source]:.2f}x -> {ratio_c[source]:.2f}x ({d:+.2f}; "
                                 f"at most -{RATIO_WINDOW_FALL:g})", not math.isnan(d) and d >= -RATIO_WINDOW_FALL - ROUNDING))
    return out


def read_arm(folder: Path, arm: str, need_map: bool) -> dict:
    def load(kind: str):
        path = folder / f"{arm}-{kind}.json"
        if not path.is_file():
            return None
        return json.loads(path.read_text())
    measures = {"holdout": load("holdout"), "unseen": load("unseen"), "map": load("map-following")}
    missing = [k for k in ("holdout", "unseen") if measures[k] is None] + (["map-following"] if need_map and measures["map"] is None else [])
    if missing:
        raise FileNotFoundError(f"{folder} lacks {arm}-{', '.join(missing)}.json: run scripts/package_check.sh with OUT={folder} first")
    if measures["map"] is not None:
        measures["map"] = measures["map"]["rows"]
    return measures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m model_export.evaluation.package_verdict", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", type=Path, help="scripts/package_check.sh's OUT folder")
    p.add_argument("--without-map", action="store_true",
                   help="judge on the two PSNR measures alone (the map-following ratio is not yet measured)")
    args = p.parse_args(argv)
    try:
        rows = criteria(read_arm(args.folder, "base", not args.without_map),
                        read_arm(args.folder, "candidate", not args.without_map))
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for c in rows:
        print(f"{'holds' if c.holds else 'FAILS'}  {c.text}")
    met = all(c.holds for c in rows)
    print("the candidate meets the rule" if met else "the candidate does not meet the rule: the bundled model stays")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())

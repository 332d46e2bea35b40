"""Check S2's decision (docs/research/map-following-checks.md, issue #34), worked out from its reports' figures
instead of by hand. Written before any arm of the check had been scored.

Each arm is one dataset folder of ``research/sampler_check_s2.sh``; each judge's ``model_export.evaluate`` run wrote
``figures-seedN/results.json``. Per arm and judge: the map-following ratio (the post-event images' mIoU against their
map over their mIoU against it rotated 180°); per arm: the unchanged-land PSNR between the two dates (judge-free) and,
for model-tile arms, the seam score of the post-event images. The margins are the rule's, against R (DDIM 50, latent
mixing): ratio at least R's minus 0.05 under every judge, PSNR at least R's minus 0.10 dB, seam at most R's plus 0.10.
Rule (1) asks it of P (DDIM 50, prediction mixing); rule (2) of the DPM-Solver++ candidates, the fastest passing one
(seconds per megapixel in `make bench`'s sampler table, docs/reference/benchmarks.json) becoming the default; rule (3)
of W-int8, the winner with the int8 denoiser, when it was run.

    python -m research.s2_verdict build/check-s2 [--bench docs/reference/benchmarks.json]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

REFERENCE = "R-ddim50-latent"
PREDICTION = "P-ddim50-prediction"
CANDIDATES = ("D10", "D15", "D20", "D10-512", "D15-512", "D20-512")
INT8 = "W-int8"
RATIO_MARGIN, PSNR_MARGIN_DB, SEAM_MARGIN = 0.05, 0.10, 0.10
# each candidate's row in the benchmark's sampler table: (sampler, steps, mixing, sampler tile px)
BENCH_ROW = {"D10": ("dpmpp-2m", 10, "prediction", 256), "D15": ("dpmpp-2m", 15, "prediction", 256),
             "D20": ("dpmpp-2m", 20, "prediction", 256), "D10-512": ("dpmpp-2m", 10, "prediction", 512),
             "D15-512": ("dpmpp-2m", 15, "prediction", 512), "D20-512": ("dpmpp-2m", 20, "prediction", 512),
             PREDICTION: ("ddim", 50, "prediction", 256), REFERENCE: ("ddim", 50, "latent", 256)}


@dataclass(frozen=True)
class Arm:
    ratios: tuple[float, ...]  # one per judge, in the judges' order
    psnr: float  # unchanged land, dB
    seam: float | None  # None: one tile per sample, no boundary to score


def read_arms(out: Path) -> tuple[list[str], dict[str, Arm]]:
    """(the judges' names, each arm's figures) from ``out/figures-seed*/results.json``."""
    runs = sorted(out.glob("figures-seed*/results.json"))
    if not runs:
        raise SystemExit(f"No figures-seed*/results.json in {out}: run research/sampler_check_s2.sh first.")
    results = [json.loads(p.read_text()) for p in runs]
    arms = {}
    for name in results[0]["datasets"]:
        ratios = []
        for r in results:
            seg = r["datasets"][name]["segmentation"]
            own, rotated = seg["post_generated"]["miou"], seg["post_generated_vs_rotated_map"]["miou"]
            ratios.append(own / rotated)
        first = results[0]["datasets"][name]
        seams = first["seams"]
        arms[name] = Arm(tuple(ratios), first["consistency"]["unchanged"]["psnr"]["mean"],
                         seams["t2"]["mean"] if seams.get("applies") else None)
    return [p.parent.name.removeprefix("figures-") for p in runs], arms


def failures(arm: Arm, ref: Arm) -> list[str]:
    """What keeps ``arm`` from holding R's fidelity (empty: it passes every margin)."""
    out = [f"ratio {a:.2f}x < {r - RATIO_MARGIN:.2f}x under judge {k}"
           for k, (a, r) in enumerate(zip(arm.ratios, ref.ratios)) if a < r - RATIO_MARGIN]
    if arm.psnr < ref.psnr - PSNR_MARGIN_DB:
        out.append(f"unchanged-land PSNR {arm.psnr:.2f} dB < {ref.psnr - PSNR_MARGIN_DB:.2f} dB")
    if arm.seam is not None and ref.seam is not None and arm.seam > ref.seam + SEAM_MARGIN:
        out.append(f"seam {arm.seam:.3f} > {ref.seam + SEAM_MARGIN:.3f}")
    return out


def bench_seconds(bench: dict) -> dict[str, float]:
    """Each arm's seconds per megapixel in the benchmark's side-by-side sampler table."""
    rows = {(r["sampler"], r["steps"], r["mixing"], r["tile_size_px"]): r["seconds_per_megapixel"] for r in bench["sampler"]["runs"]}
    return {arm: rows[key] for arm, key in BENCH_ROW.items() if key in rows}


def verdict(arms: dict[str, Arm], speed: dict[str, float]) -> dict:
    ref = arms[REFERENCE]
    out = {"rule1": None, "passing": [], "winner": None, "int8": None, "failures": {}}
    for name, arm in arms.items():
        if name != REFERENCE:
            out["failures"][name] = failures(arm, ref)
    if PREDICTION in arms:
        out["rule1"] = not out["failures"][PREDICTION]
    out["passing"] = [c for c in CANDIDATES if c in arms and not out["failures"][c]]
    timed = [c for c in out["passing"] if c in speed]
    out["winner"] = min(timed, key=speed.__getitem__) if timed else None
    if INT8 in arms:
        out["int8"] = not out["failures"][INT8]
    return out


def render(judges: list[str], arms: dict[str, Arm], speed: dict[str, float], v: dict) -> str:
    ref = arms[REFERENCE]
    lines = ["| arm | " + " | ".join(f"ratio, judge {j}" for j in judges) + " | unchanged PSNR (dB) | seam | s/MP (bench) | holds R's fidelity |",
             "| --- |" + " --- |" * (len(judges) + 4)]
    for name, arm in arms.items():
        held = "reference" if name == REFERENCE else ("yes" if not v["failures"][name] else "no: " + "; ".join(v["failures"][name]))
        seam = f"{arm.seam:.3f}" if arm.seam is not None else "n/a (one tile)"
        secs = f"{speed[name]:.1f}" if name in speed else "n/a"
        lines.append(f"| {name} | " + " | ".join(f"{r:.2f}x" for r in arm.ratios) + f" | {arm.psnr:.2f} | {seam} | {secs} | {held} |")
    lines += ["", f"Margins against R: ratio >= R - {RATIO_MARGIN} under every judge (R: "
              + ", ".join(f"{r:.2f}x" for r in ref.ratios) + f"), PSNR >= {ref.psnr - PSNR_MARGIN_DB:.2f} dB"
              + (f", seam <= {ref.seam + SEAM_MARGIN:.3f}" if ref.seam is not None else "") + ".", ""]
    if v["rule1"] is not None:
        lines.append(f"- Rule (1): prediction mixing {'keeps' if v['rule1'] else 'does not keep'} DDIM 50's figures: "
                     + ("it becomes the default mixing." if v["rule1"] else "latent mixing stays the default for DDIM."))
    lines.append("- Rule (2): " + (f"passing: {', '.join(v['passing'])}; the fastest in the bench, **{v['winner']}** "
                                   f"({speed[v['winner']]:.1f} s/MP against R's {speed.get(REFERENCE, float('nan')):.1f}), "
                                   "becomes the default." if v["winner"] else "no candidate passes: the defaults stay."))
    if v["int8"] is not None:
        lines.append(f"- Rule (3): W-int8 {'passes' if v['int8'] else 'does not pass'} the margins: int8 "
                     + ("becomes the default precision." if v["int8"] else "stays an option."))
    else:
        lines.append("- Rule (3): not run yet (WINNER=\"<the winner's options>\" research/sampler_check_s2.sh).")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, help="the check's folder (OUT of research/sampler_check_s2.sh)")
    p.add_argument("--bench", type=Path, default=Path("docs/reference/benchmarks.json"))
    a = p.parse_args()
    judges, arms = read_arms(a.out)
    if REFERENCE not in arms:
        raise SystemExit(f"The reference arm {REFERENCE} is not in {a.out}'s figures.")
    speed = bench_seconds(json.loads(a.bench.read_text()))
    print(render(judges, arms, speed, verdict(arms, speed)))


if __name__ == "__main__":
    main()

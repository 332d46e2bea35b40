"""The usefulness checks' decision, worked out from an evaluation's figures instead of by hand (check U7 of
docs/research/usefulness-checks.md, and any later check with the same rule).

Per arm: each net's mean zero-shot F1 over the real test sets, then M = the mean over the arm's nets and s = their
standard deviation (n - 1 in the denominator: the sample's, as a standard error wants). A candidate leads a reference
when M(candidate) - M(reference) is more than twice the standard error of that difference, 2 sqrt((s_c² + s_r²) / n),
and more than a floor (0.01). The issue's goal is reported beside it: the best generated arm against the best of the
arms that need no model (the baselines, image differencing, "everything changed") on each test set, and few-shot at
k = 3 against the net trained from scratch and the copy-paste-pretrained one.

    python -m model_export.evaluation.arm_rule docs/research/quality/results.json \
        --reference "generated data (pre-event real)" --candidate "inpaint (pre-event real)" --candidate "redrawn, B appearance-shifted"

Arms are named by any part of their row name in the report; the table lists every arm.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

FLOOR = 0.01
NO_MODEL = ("baseline", "image difference", "everything changed")  # rows that need no diffusion model


def arm_nets(zero_shot: dict) -> dict[str, list[float]]:
    """Each arm's per-net mean F1 over the test sets (one value for rows that do not depend on a net's seed)."""
    test_sets = list(zero_shot)
    arms = {}
    for arm in zero_shot[test_sets[0]]:
        per_set = [zero_shot[t][arm].get("f1_per_net", [zero_shot[t][arm]["f1"]]) for t in test_sets]
        nets = max(len(v) for v in per_set)
        per_set = [v * nets if len(v) == 1 else v for v in per_set]  # a seed-free row repeats its one value
        arms[arm] = [sum(v[k] for v in per_set) / len(per_set) for k in range(nets)]
    return arms


def summary(values: list[float]) -> tuple[float, float]:
    m = sum(values) / len(values)
    s = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return m, s


def leads(candidate: list[float], reference: list[float], floor: float = FLOOR) -> tuple[bool, float, float]:
    """(the candidate leads, its lead, the margin it must pass): the margin is twice the standard error of the
    difference of the two means, or the floor where that is larger."""
    (mc, sc), (mr, sr) = summary(candidate), summary(reference)
    n = min(len(candidate), len(reference))
    margin = max(2 * math.sqrt((sc**2 + sr**2) / n), floor)
    return mc - mr > margin, mc - mr, margin


def find(names, part: str) -> str:
    """The arm whose row name is ``part``, else the one arm whose name holds it."""
    found = [n for n in names if n == part] or [n for n in names if part in n]
    if len(found) != 1:
        raise SystemExit(f"{part!r} names {len(found)} arms ({'; '.join(found) or 'none'}); the arms are: {'; '.join(names)}")
    return found[0]


def goal_lines(cd: dict, gap: float = 0.05) -> list[str]:
    """The issue's goal: best generated arm vs the best no-model row per test set; few-shot k = 3."""
    lines = []
    for test, rows in cd["zero_shot"].items():
        generated = {n: r["f1"] for n, r in rows.items() if "trained on" in n and not any(w in n for w in NO_MODEL)}
        no_model = {n: r["f1"] for n, r in rows.items() if any(w in n for w in NO_MODEL)}
        if not generated or not no_model:
            continue
        g, b = max(generated, key=generated.get), max(no_model, key=no_model.get)
        ok = generated[g] - no_model[b] >= gap
        lines.append(f"- {test}: best generated arm {generated[g]:.3f} ({g}); best without a model {no_model[b]:.3f} ({b}): "
                     f"{generated[g] - no_model[b]:+.3f}, goal +{gap:.2f} {'met' if ok else 'not met'}.")
    for test, by_k in cd.get("few_shot", {}).items():
        rows = by_k.get("3") or by_k.get(3)
        if not rows:
            continue
        f1 = {n: r["f1_mean"] for n, r in rows.items()}
        scratch = [n for n in f1 if "scratch" in n]
        copy_paste = [n for n in f1 if "copy-paste" in n]
        pretrained = {n: v for n, v in f1.items() if n not in scratch + copy_paste and not any(w in n for w in NO_MODEL)}
        if not scratch or not pretrained:
            continue
        best = max(pretrained, key=pretrained.get)
        against = {"scratch": f1[scratch[0]]} | ({"copy-paste-pretrained": f1[copy_paste[0]]} if copy_paste else {})
        parts = ", ".join(f"{pretrained[best] - v:+.3f} over {k}" for k, v in against.items())
        ok = all(pretrained[best] - v >= gap for v in against.values())
        lines.append(f"- {test}, few-shot k = 3: {pretrained[best]:.3f} ({best}): {parts}; goal +{gap:.2f} "
                     f"{'met' if ok else 'not met'}.")
    return lines


def report(results: dict, reference: str | None, candidates: list[str]) -> str:
    cd = results.get("change_detection", results)
    arms = arm_nets(cd["zero_shot"])
    lines = ["| arm | nets | M (mean F1 over the test sets) | s (over nets) |", "| --- | --- | --- | --- |"]
    for name, values in sorted(arms.items(), key=lambda kv: -summary(kv[1])[0]):
        m, s = summary(values)
        lines.append(f"| {name} | {len(values)} | {m:.3f} | {s:.3f} |")
    if reference:
        ref = find(arms, reference)
        lines.append("")
        for part in candidates:
            cand = find(arms, part)
            ok, lead, margin = leads(arms[cand], arms[ref])
            lines.append(f"- {cand} against {ref}: lead {lead:+.3f}, margin {margin:.3f}: "
                         f"{'leads by the margin' if ok else 'does not lead by the margin'}.")
    goal = goal_lines(cd)
    if goal:
        lines += ["", "The issue's goal:", *goal]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", type=Path, help="an evaluation's results.json (its --figures folder)")
    p.add_argument("--reference", help="the arm the candidates must lead (a part of its row name)")
    p.add_argument("--candidate", action="append", default=[], help="an arm that may lead the reference (repeatable)")
    a = p.parse_args()
    if not a.results.is_file():
        raise SystemExit(f"No results file {a.results}: run `make quality` (or model_export.evaluate --figures) first.")
    print(report(json.loads(a.results.read_text()), a.reference, a.candidate))


if __name__ == "__main__":
    main()

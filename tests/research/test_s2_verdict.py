"""Check S2's decision tool (research/s2_verdict.py) applies the rule as written: every judge's ratio within 0.05 of
R's, PSNR within 0.10 dB, seam within 0.10 (model-tile arms), and the fastest passing candidate in the bench wins."""

from __future__ import annotations

import json

from research.s2_verdict import REFERENCE, read_arms, render, verdict


def _dataset(ratio: float, psnr: float, seam: float | None) -> dict:
    return {"segmentation": {"post_generated": {"miou": 0.3 * ratio}, "post_generated_vs_rotated_map": {"miou": 0.3}},
            "consistency": {"unchanged": {"psnr": {"mean": psnr}}},
            "seams": {"applies": seam is not None, "t2": {"mean": seam}}}


def _write(tmp_path, per_judge: list[dict[str, tuple]]):
    for k, arms in enumerate(per_judge):
        folder = tmp_path / f"figures-seed{k}"
        folder.mkdir()
        (folder / "results.json").write_text(json.dumps({"datasets": {n: _dataset(*a) for n, a in arms.items()}}))


SPEED = {REFERENCE: 95.0, "P-ddim50-prediction": 97.0, "D10": 30.0, "D15": 39.0, "D10-512": 17.7, "D15-512": 23.2}


def test_the_fastest_candidate_within_every_margin_wins(tmp_path):
    judge0 = {REFERENCE: (2.00, 20.00, 1.00), "P-ddim50-prediction": (1.96, 19.95, 1.05), "D10": (1.99, 20.5, 1.20),
              "D15": (1.97, 19.91, 1.09), "D10-512": (1.94, 20.1, None), "D15-512": (1.99, 20.0, None)}
    judge1 = {**judge0, "D10-512": (2.10, 20.1, None)}
    _write(tmp_path, [judge0, judge1])
    judges, arms = read_arms(tmp_path)
    assert judges == ["seed0", "seed1"] and arms["D15"].ratios == (1.97, 1.97)
    v = verdict(arms, SPEED)
    assert v["rule1"] is True
    assert v["failures"]["D10"] == ["seam 1.200 > 1.100"]  # faster, but its seams fail
    assert v["failures"]["D10-512"] == ["ratio 1.94x < 1.95x under judge 0"]  # fastest, but one judge says no
    assert v["passing"] == ["D15", "D15-512"] and v["winner"] == "D15-512"
    text = render(judges, arms, SPEED, v)
    assert "**D15-512**" in text and "Rule (3): not run yet" in text


def test_psnr_below_the_margin_fails_and_no_candidate_keeps_the_defaults(tmp_path):
    judge = {REFERENCE: (2.0, 20.0, 1.0), "P-ddim50-prediction": (2.0, 19.89, 1.0), "D10": (2.0, 19.0, 1.0)}
    _write(tmp_path, [judge])
    v = verdict(read_arms(tmp_path)[1], SPEED)
    assert v["rule1"] is False and v["failures"]["P-ddim50-prediction"] == ["unchanged-land PSNR 19.89 dB < 19.90 dB"]
    assert v["passing"] == [] and v["winner"] is None

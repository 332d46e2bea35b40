"""The rule of checks 6 and 7, applied to check 6's own measures (tests/data/check6: scripts/package_check.sh's
JSON files from session 13, the decoder-only candidate against 0.2.0)."""

import json
import shutil
from pathlib import Path

import pytest

from model_export.evaluation import package_verdict

CHECK6 = Path(__file__).parents[2] / "data" / "check6"


def arm(name: str) -> dict:
    return package_verdict.read_arm(CHECK6, name, need_map=False)


def failing(rows):
    return [c.text.split(":")[0] for c in rows if not c.holds]


def test_check6_candidate_fails_where_the_docs_say():
    rows = package_verdict.criteria(arm("base"), arm("candidate"))
    assert failing(rows) == ["held-out PSNR, oem", "held-out PSNR, loveda", "unseen images, mean PSNR",
                             "unseen images, worst"]
    assert "whu-cd 000241 A 25.04 -> 23.39" in rows[-1].text


def test_a_candidate_that_learns_the_new_sources_and_keeps_the_old_ones_is_adopted(tmp_path):
    base, cand = arm("base"), arm("base")
    for r in cand["holdout"]:
        r["psnr_db"] += {"dubai": 1.0, "flair": 2.0, "oem": -0.3, "loveda": 0.0}[r["source"]]
    for r in cand["unseen"]:
        r["256"] += 0.1
    assert failing(package_verdict.criteria(base, cand)) == []
    cand["unseen"][0]["256"] -= 0.7  # one image falls by 0.6 dB although the mean still rises
    assert failing(package_verdict.criteria(base, cand)) == ["unseen images, worst"]


def test_map_following_criteria(tmp_path):
    for f in CHECK6.iterdir():
        shutil.copy(f, tmp_path / f.name)
    for name, ratios in (("base", [2.1, 1.0, 1.5, 2.7]), ("candidate", [2.2, 1.1, 0.9, 2.8])):
        rows = [{"source": s, "generated_ratio": r} for s, r in zip(("oem", "loveda", "dubai", "flair"), ratios)]
        (tmp_path / f"{name}-map-following.json").write_text(json.dumps({"rows": rows}))
    rows = package_verdict.criteria(package_verdict.read_arm(tmp_path, "base", True),
                                    package_verdict.read_arm(tmp_path, "candidate", True))
    # mean 1.825 -> 1.75 is within 0.1; Dubai's fall of 0.6 is not
    assert [c.text.split(":")[0] for c in rows[6:] if not c.holds] == ["map-following, dubai"]


def test_the_command_needs_every_measure_and_says_which_is_missing(tmp_path, capsys):
    assert package_verdict.main([str(CHECK6), "--without-map"]) == 1
    assert "does not meet the rule" in capsys.readouterr().out
    assert package_verdict.main([str(CHECK6)]) == 2
    assert "lacks base-map-following.json" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="candidate-holdout"):
        shutil.copy(CHECK6 / "base-holdout.json", tmp_path)
        shutil.copy(CHECK6 / "base-unseen.json", tmp_path)
        package_verdict.read_arm(tmp_path, "candidate", False)


def test_a_source_missing_from_the_held_out_measures_is_named():
    base, cand = arm("base"), arm("candidate")
    cand["holdout"] = [r for r in cand["holdout"] if r["source"] != "dubai"]
    with pytest.raises(ValueError, match="lack the source.s. dubai"):
        package_verdict.criteria(base, cand)

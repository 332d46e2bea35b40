"""The usefulness checks' decision (model_export/evaluation/arm_rule.py) on figures whose verdict is known by hand."""

import json
import math
import subprocess
import sys

import pytest

from model_export.evaluation.arm_rule import arm_nets, leads, report

REAL = "FC-Siam-diff, trained on generated data (pre-event real)"
INPAINT = "FC-Siam-diff, trained on generated data, inpaint (pre-event real)"
PASTE = "FC-Siam-diff, trained on the copy-paste baseline (no model)"


def _row(f1s):
    return {"f1": sum(f1s) / len(f1s), "f1_per_net": f1s}


def _results(inpaint_levir, inpaint_whu):
    zero_shot = {
        "levir-cd": {REAL: _row([0.20, 0.24, 0.22]), INPAINT: _row(inpaint_levir), PASTE: _row([0.28, 0.28, 0.28]),
                     "everything changed": {"f1": 0.285}},
        "whu-cd": {REAL: _row([0.36, 0.40, 0.38]), INPAINT: _row(inpaint_whu), PASTE: _row([0.30, 0.31, 0.29]),
                   "everything changed": {"f1": 0.29}},
    }
    few = {"levir-cd": {"3": {"pre-trained on generated data (pre-event real), fine-tuned": {"f1_mean": 0.40},
                              "pre-trained on the copy-paste baseline (no model), fine-tuned": {"f1_mean": 0.37},
                              "from scratch": {"f1_mean": 0.30}}}}
    return {"change_detection": {"zero_shot": zero_shot, "few_shot": few}}


def test_each_arms_nets_are_averaged_over_the_test_sets():
    arms = arm_nets(_results([0.3, 0.3, 0.3], [0.5, 0.5, 0.5])["change_detection"]["zero_shot"])
    assert arms[REAL] == pytest.approx([0.28, 0.32, 0.30])
    assert arms["everything changed"] == pytest.approx([0.2875])  # one value: it does not depend on a seed


def test_a_lead_counts_only_beyond_twice_the_standard_error():
    # real: per-net means 0.28, 0.32, 0.30 (s = 0.02); a steady candidate 0.05 above leads, one 0.02 above does not
    ok, lead, margin = leads([0.35, 0.35, 0.35], [0.28, 0.32, 0.30])
    assert ok and lead == pytest.approx(0.05) and margin == pytest.approx(2 * math.sqrt(0.02**2 / 3))
    assert not leads([0.32, 0.32, 0.32], [0.28, 0.32, 0.30])[0]
    # the floor: two steady arms 0.008 apart do not lead, whatever their spread
    assert not leads([0.308] * 3, [0.30] * 3)[0]


def test_the_report_names_the_verdict_and_the_goal(tmp_path):
    text = report(_results([0.40, 0.42, 0.41], [0.50, 0.52, 0.51]), "generated data (pre-event real)", ["inpaint"])
    assert f"{INPAINT} against {REAL}" in text and "leads by the margin" in text
    assert "levir-cd: best generated arm 0.410" in text and "goal +0.05 met" in text
    assert "few-shot k = 3: 0.400" in text and "+0.030 over copy-paste-pretrained" in text and "not met" in text
    close = report(_results([0.22, 0.24, 0.20], [0.38, 0.40, 0.36]), "generated data (pre-event real)", ["inpaint"])
    assert "does not lead by the margin" in close


def test_the_command_reads_a_results_file_and_refuses_an_ambiguous_arm(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(_results([0.40, 0.42, 0.41], [0.50, 0.52, 0.51])))
    run = lambda *a: subprocess.run([sys.executable, "-m", "model_export.evaluation.arm_rule", str(path), *a],  # noqa: E731
                                    capture_output=True, text=True)
    done = run("--reference", "generated data (pre-event real)", "--candidate", "inpaint")
    assert done.returncode == 0 and "leads by the margin" in done.stdout
    ambiguous = run("--reference", "generated data", "--candidate", "inpaint")
    assert ambiguous.returncode != 0 and "names 2 arms" in ambiguous.stderr

"""generate --style and --style-strength as a user runs them: a subprocess, the record, and errors as one line, exit 2."""

import hashlib
import json
from pathlib import Path

from test_cli import cli

REPO = Path(__file__).resolve().parents[2]
STYLE = REPO / "data" / "whu-cd" / "B" / "000121_0512_0512.png"


def _generate(tiny_model_dir, houston_label_path, out, *extra):
    return cli("generate", "--semantic", houston_label_path, "--random-events", "--model", tiny_model_dir, "--steps", "2",
               "--seed", "3", "--correlation", "0.8", "--device", "cpu", "--out", out, *extra)


def test_generate_with_a_style_image(tiny_model_dir, tmp_path, houston_label_path):
    done = _generate(tiny_model_dir, houston_label_path, tmp_path / "out", "--style", STYLE, "--style-strength", "0.6")
    assert done.returncode == 0, done.stderr
    style = json.loads((tmp_path / "out" / "sample.json").read_text())["style"]
    assert style["path"] == str(STYLE) and style["strength"] == 0.6
    assert style["sha256"] == hashlib.sha256(STYLE.read_bytes()).hexdigest()
    assert "encoding the style image" in done.stderr  # its stage on the progress bar


def test_bad_style_inputs_are_one_line_and_exit_2(tiny_model_dir, tmp_path, houston_label_path):
    done = _generate(tiny_model_dir, houston_label_path, tmp_path / "o", "--style", houston_label_path)
    assert done.returncode == 2 and done.stderr.startswith("error: Style image") and "needs 3 or more" in done.stderr
    done = _generate(tiny_model_dir, houston_label_path, tmp_path / "o", "--style", STYLE, "--style-strength", "2")
    assert done.returncode == 2 and "style strength must be a number from 0" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "o").exists()


def test_dataset_with_a_style_image(tiny_model_dir, tmp_path, houston_label_path):
    out = tmp_path / "ds"
    done = cli("dataset", "--semantic", houston_label_path, "--count", "2", "--tile", "64", "--steps", "1", "--workers", "1",
               "--model", tiny_model_dir, "--style", STYLE, "--style-strength", "0.4", "--out", out)
    assert done.returncode == 0, done.stderr
    spec = json.loads((out / "dataset.json").read_text())
    assert spec["style"]["path"] == str(STYLE) and spec["settings"]["style_strength"] == 0.4
    done = cli("dataset", "--semantic", houston_label_path, "--count", "2", "--tile", "64", "--model", tiny_model_dir,
               "--style", tmp_path / "missing.png", "--out", tmp_path / "bad")
    assert done.returncode == 2 and done.stderr.startswith("error: Style image") and not (tmp_path / "bad").exists()

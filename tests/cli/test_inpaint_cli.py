"""--post-event inpaint from the command line: generate records it in sample.json; a dataset records it in its spec and
card, and a resume under the other mode is refused with the flags that finish it (diffusion/inpaint.py)."""

import json
import shlex

import numpy as np
import rasterio
from scipy import ndimage
from test_cli import cli


def test_generate_inpaints_and_records_it(tiny_model_dir, tmp_path, houston_label_path, houston_image_path, houston_changes_path):
    out = tmp_path / "out"
    done = cli("generate", "--semantic", houston_label_path, "--image", houston_image_path, "--changes", houston_changes_path,
               "--class-field", "target", "--model", tiny_model_dir, "--steps", "2", "--seed", "3", "--device", "cpu",
               "--post-event", "inpaint", "--inpaint-margin", "16", "--out", out)
    assert done.returncode == 0, done.stderr
    record = json.loads((out / "sample.json").read_text())
    assert record["post_event"] == "inpaint"
    assert record["inpaint"]["margin_px"] == 16 and record["inpaint"]["tiles_sampled"] < record["inpaint"]["tiles"]
    with rasterio.open(houston_image_path) as src, rasterio.open(out / "t2_image.tif") as t2, rasterio.open(out / "change_mask.tif") as m:
        image, post, mask = src.read((1, 2, 3)), t2.read(), m.read(1)
    kept = ndimage.distance_transform_edt(mask != 1) >= 16
    assert kept.mean() > 0.5 and np.array_equal(post[:, kept], image[:, kept])
    for args, message in ((["--rerender-strength", "2"], "error: The re-render strength must be a number from 0"),
                          (["--inpaint-margin", "-4"], "error: The inpainting margin must be a whole number"),
                          (["--dates", "3"], "error: Inpainting (--post-event inpaint) makes change pairs")):
        bad = cli("generate", "--semantic", houston_label_path, "--random-events", "--model", tiny_model_dir, "--steps", "1",
                  "--post-event", "inpaint", *args, "--out", tmp_path / "bad")
        assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    assert not (tmp_path / "bad").exists()
    words = " ".join(cli("dataset", "--help").stdout.split())
    assert "--post-event {full,inpaint}" in words and "--inpaint-margin PX" in words and "--rerender-strength R" in words


def test_a_dataset_records_the_mode_and_a_resume_under_the_other_is_refused(tiny_model_dir, tmp_path, houston_label_path,
                                                                            houston_image_path):
    out = tmp_path / "ds"
    base = ("dataset", "--semantic", houston_label_path, "--image", houston_image_path, "--count", "2", "--tile", "64",
            "--steps", "1", "--workers", "1", "--model", tiny_model_dir, "--out", out)
    done = cli(*base, "--post-event", "inpaint", "--inpaint-margin", "16")
    assert done.returncode == 0, done.stderr
    settings = json.loads((out / "dataset.json").read_text())["settings"]
    assert (settings["post_event"], settings["inpaint_margin_px"], settings["rerender_strength"]) == ("inpaint", 16, 0.0)
    card = (out / "README.md").read_text()
    assert "inpainted (`--post-event inpaint`" in card and "image B is image A pixel for pixel" in card
    command = next(line.strip() for line in card.splitlines() if line.strip().startswith("python -m changeanywhere_qgis dataset"))
    assert "--post-event inpaint --inpaint-margin 16 --rerender-strength 0" in command
    refused = cli(*base)  # today's default, full
    assert refused.returncode == 2 and "post_event was 'inpaint', now 'full'" in refused.stderr
    assert "To finish it, add --post-event inpaint --inpaint-margin 16 --rerender-strength 0" in refused.stderr, refused.stderr
    args = shlex.split(command)[3:]  # the card's command resumes it (its --out is ".": the folder it lies in)
    args[args.index("--out") + 1] = str(out)
    again = cli(*args)
    assert again.returncode == 0 and "0 generated now, 2 already there" in again.stdout, again.stderr

    full = tmp_path / "full"
    assert cli(*base[:-1], full).returncode == 0
    assert "post_event" not in json.loads((full / "dataset.json").read_text())["settings"]  # specs of before still match
    refused = cli(*base[:-1], full, "--post-event", "inpaint")
    assert refused.returncode == 2 and "To finish it, add --post-event full " in refused.stderr, refused.stderr

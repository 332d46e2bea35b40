"""--mixing from the command line (issue #34): generate records it in sample.json and it changes the post-event image;
a dataset records it in its spec and card, and a resume under the other mixing is refused with the flag that finishes it."""

import json
import shlex

import rasterio
from test_cli import cli


def _images(folder):
    with rasterio.open(folder / "t1_image.tif") as t1, rasterio.open(folder / "t2_image.tif") as t2:
        return t1.read(), t2.read()


def test_generate_takes_the_mixing_and_records_it(tiny_model_dir, tmp_path, houston_label_path):
    base = ("generate", "--semantic", houston_label_path, "--random-events", "--model", tiny_model_dir, "--steps", "3",
            "--seed", "3", "--correlation", "0.9", "--device", "cpu")
    for name, args in (("default", ()), ("latent", ("--mixing", "latent"))):
        done = cli(*base, *args, "--out", tmp_path / name)
        assert done.returncode == 0, done.stderr
    default = json.loads((tmp_path / "default" / "sample.json").read_text())
    latent = json.loads((tmp_path / "latent" / "sample.json").read_text())
    assert (default["mixing"], latent["mixing"]) == ("prediction", "latent")
    assert default["events"] == latent["events"] and default["seed"] == latent["seed"]
    (t1, t2), (p1, p2) = _images(tmp_path / "default"), _images(tmp_path / "latent")
    assert (t1 == p1).all() and not (t2 == p2).all()  # the same pre-event image; the post-event image mixed otherwise
    bad = cli(*base, "--mixing", "noise", "--out", tmp_path / "bad")
    assert bad.returncode == 2 and "invalid choice: 'noise'" in bad.stderr and not (tmp_path / "bad").exists()
    for command in ("generate", "dataset"):
        words = " ".join(cli(command, "--help").stdout.split())
        assert "--mixing {latent,prediction}" in words and "default prediction" in words and "--sampler dpmpp-2m can use" in words


def test_a_dataset_records_the_mixing_and_a_resume_under_the_other_is_refused(tiny_model_dir, tmp_path, houston_label_path):
    out = tmp_path / "ds"
    base = ("dataset", "--semantic", houston_label_path, "--count", "2", "--tile", "64", "--steps", "2", "--workers", "1",
            "--model", tiny_model_dir, "--out", out)
    done = cli(*base, "--sampler", "dpmpp-2m")  # the default mixing, prediction
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "dataset.json").read_text())["settings"]["mixing"] == "prediction"
    card = (out / "README.md").read_text()
    assert "2 DPM-Solver++ 2M steps (dpmpp-2m, prediction mixing, " in card
    command = next(line.strip() for line in card.splitlines() if line.strip().startswith("python -m changeanywhere_qgis dataset"))
    assert "--sampler dpmpp-2m --tile-size 64 --mixing prediction" in command
    refused = cli(*base, "--sampler", "dpmpp-2m", "--mixing", "latent")
    assert refused.returncode == 2 and "settings.mixing was 'prediction', now 'latent'" in refused.stderr, refused.stderr
    assert "To finish it, add --mixing prediction" in refused.stderr and "Traceback" not in refused.stderr
    args = shlex.split(command)[3:]  # the card's command resumes it (its --out is ".": the folder it lies in)
    args[args.index("--out") + 1] = str(out)
    again = cli(*args)
    assert again.returncode == 0 and "0 generated now, 2 already there" in again.stdout, again.stderr

    latent = tmp_path / "latent"
    assert cli(*base[:-1], latent, "--sampler", "dpmpp-2m", "--mixing", "latent").returncode == 0
    assert "mixing" not in json.loads((latent / "dataset.json").read_text())["settings"]  # specs of before still match
    assert "--mixing latent" in (latent / "README.md").read_text()  # named: the default it was made under changed
    refused = cli(*base[:-1], latent, "--sampler", "dpmpp-2m")
    assert refused.returncode == 2 and "To finish it, add --mixing latent " in refused.stderr, refused.stderr

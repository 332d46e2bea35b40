"""--precision from the command line (issue #34): generate runs the int8 denoiser a package carries and records it in
sample.json; int8 on a package without one, or on CUDA, is refused with the engine's words and writes nothing; a
dataset records it in its spec and card, and a resume under the other precision is refused with the flag that finishes it."""

import json
import shlex

from test_cli import cli

QUANTIZE = "python -m model_export.export.quantize --package"


def test_generate_takes_the_precision_and_records_it(int8_model_dir, tmp_path, houston_label_path, houston_image_path):
    base = ("generate", "--semantic", houston_label_path, "--image", houston_image_path, "--random-events", "--model",
            int8_model_dir, "--steps", "3", "--seed", "3", "--correlation", "0.9", "--device", "cpu")
    for name, args in (("default", ()), ("int8", ("--precision", "int8"))):
        done = cli(*base, *args, "--out", tmp_path / name)
        assert done.returncode == 0, done.stderr
    default = json.loads((tmp_path / "default" / "sample.json").read_text())
    int8 = json.loads((tmp_path / "int8" / "sample.json").read_text())
    assert (default["precision"], int8["precision"]) == ("float32", "int8")
    assert default["events"] == int8["events"] and default["seed"] == int8["seed"]
    # the same pre-event image (the one given); the post-event image drawn by the other denoiser
    assert (tmp_path / "default" / "t1_image.tif").read_bytes() == (tmp_path / "int8" / "t1_image.tif").read_bytes()
    assert (tmp_path / "default" / "t2_image.tif").read_bytes() != (tmp_path / "int8" / "t2_image.tif").read_bytes()
    for command in ("generate", "dataset"):
        words = " ".join(cli(command, "--help").stdout.split())
        assert "--precision {float32,int8}" in words and "default float32" in words and f"{QUANTIZE} DIR" in words


def test_int8_without_its_graph_or_on_cuda_is_refused_and_writes_nothing(tiny_model_dir, tmp_path, houston_label_path):
    base = ("generate", "--semantic", houston_label_path, "--random-events", "--model", tiny_model_dir, "--steps", "2",
            "--precision", "int8")
    done = cli(*base, "--device", "cpu", "--out", tmp_path / "out")
    assert done.returncode == 2 and "has no int8 denoiser" in done.stderr, done.stderr
    assert f"Make one with `{QUANTIZE} {tiny_model_dir}`" in done.stderr and "Traceback" not in done.stderr
    # the engine's refusal of int8 on the GPU, word for word
    cuda = cli(*base, "--device", "cuda", "--out", tmp_path / "out")
    assert cuda.returncode == 2 and cuda.stderr.strip().endswith(
        "error: The int8 denoiser runs on the CPU only; choose device 'cpu' (or 'auto'), or precision 'float32' for the GPU."), cuda.stderr
    ds = cli("dataset", "--semantic", houston_label_path, "--count", "2", "--tile", "64", "--steps", "2", "--workers", "1",
             "--model", tiny_model_dir, "--precision", "int8", "--out", tmp_path / "ds")
    assert ds.returncode == 2 and f"{QUANTIZE} {tiny_model_dir}" in ds.stderr and "Traceback" not in ds.stderr, ds.stderr
    bad = cli(*base, "--precision", "int4", "--out", tmp_path / "bad")
    assert bad.returncode == 2 and "invalid choice: 'int4'" in bad.stderr
    assert not any(tmp_path.iterdir())


def test_a_dataset_records_the_precision_and_a_resume_under_the_other_is_refused(int8_model_dir, tmp_path, houston_label_path):
    out = tmp_path / "ds"
    base = ("dataset", "--semantic", houston_label_path, "--count", "2", "--tile", "64", "--steps", "2", "--workers", "1",
            "--model", int8_model_dir, "--out", out)
    done = cli(*base, "--precision", "int8")
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "dataset.json").read_text())["settings"]["precision"] == "int8"
    card = (out / "README.md").read_text()
    assert "2 DDIM steps (eta 0.0, prediction mixing, the int8 denoiser, " in card
    command = next(line.strip() for line in card.splitlines() if line.strip().startswith("python -m changeanywhere_qgis dataset"))
    assert " --precision int8" in command
    refused = cli(*base)  # today's default precision, float32
    assert refused.returncode == 2 and "settings.precision was 'int8', now 'float32'" in refused.stderr, refused.stderr
    assert "To finish it, add --precision int8" in refused.stderr and "Traceback" not in refused.stderr
    args = shlex.split(command)[3:]  # the card's command resumes it (its --out is ".": the folder it lies in)
    args[args.index("--out") + 1] = str(out)
    again = cli(*args)
    assert again.returncode == 0 and "0 generated now, 2 already there" in again.stdout, again.stderr

    float_ds = tmp_path / "float32"
    assert cli(*base[:-1], float_ds, "--precision", "float32").returncode == 0
    assert "precision" not in json.loads((float_ds / "dataset.json").read_text())["settings"]  # specs of before still match
    refused = cli(*base[:-1], float_ds, "--precision", "int8")
    assert refused.returncode == 2 and "To finish it, add --precision float32 " in refused.stderr, refused.stderr

"""The command line, run as a user runs it: a subprocess, exit codes, messages without tracebacks."""

import json
import subprocess
import sys
from pathlib import Path

import rasterio

REPO = Path(__file__).resolve().parents[2]


def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "changeanywhere_qgis", *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, timeout=600, **kw)


def test_generate_from_the_command_line(tiny_model_dir, tmp_path, houston_label_path, houston_changes_path):
    out = tmp_path / "out"
    done = cli("generate", "--semantic", houston_label_path, "--changes", houston_changes_path, "--class-field", "target",
               "--model", tiny_model_dir, "--steps", "2", "--seed", "3", "--correlation", "0.8", "--device", "cpu", "--out", out)
    assert done.returncode == 0, done.stderr
    assert "t2_image.tif" in done.stdout and "device cpu" in done.stdout
    assert "%" in done.stderr  # the progress bar
    record = json.loads((out / "sample.json").read_text())
    assert record["correlation_s"] == 0.8 and not record["correlation_drawn"]
    with rasterio.open(out / "t2_image.tif") as ds:
        assert ds.count == 3


def test_simulate_writes_maps_and_change_polygons(tiny_model_dir, tmp_path, houston_label_path):
    out = tmp_path / "sim"
    done = cli("simulate", "--semantic", houston_label_path, "--random-events", "--seed", "2", "--model", tiny_model_dir, "--out", out)
    assert done.returncode == 0, done.stderr
    assert {p.name for p in out.iterdir()} == {"t1_semantic.tif", "t2_semantic.tif", "change_mask.tif", "changes.gpkg", "events.json"}


def test_errors_are_one_clear_line_and_exit_2(tiny_model_dir, tmp_path, houston_label_path):
    done = cli("generate", "--semantic", tmp_path / "missing.tif", "--random-events", "--model", tiny_model_dir, "--out", tmp_path / "o")
    assert done.returncode == 2
    assert done.stderr.startswith("error: Semantic raster") and "does not exist" in done.stderr
    assert "Traceback" not in done.stderr
    done = cli("generate", "--semantic", houston_label_path, "--changes", "x.gpkg", "--model", tiny_model_dir, "--out", tmp_path / "o")
    assert done.returncode == 2 and "--class-field" in done.stderr
    done = cli("generate", "--semantic", houston_label_path, "--random-events", "--guidance", "40", "--model", tiny_model_dir,
               "--out", tmp_path / "o")
    assert done.returncode == 2 and "guidance scale must be between 1" in done.stderr
    assert not (tmp_path / "o").exists()


def test_info_reports_model_and_device(tiny_model_dir):
    done = cli("info", "--model", tiny_model_dir, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["device"] == "cpu" and len(report["classes"]) == 8
    assert {"encoder", "decoder", "denoiser"} == set(report["file_sizes_bytes"])
    text = cli("info", "--model", tiny_model_dir)
    assert text.returncode == 0, text.stderr
    assert f"guidance scale {report['diffusion']['guidance_scale']:g} (--guidance changes it)" in text.stdout


def test_generate_and_dataset_share_the_sampler_options():
    for command in ("generate", "dataset"):
        done = cli(command, "--help")
        assert done.returncode == 0, done.stderr
        words = " ".join(done.stdout.split())  # argparse wraps the help
        assert "--guidance GUIDANCE" in words and "the model's own, which `info` shows" in words
        assert "--eta ETA" in words and "--steps STEPS" in words


def test_ctrl_c_leaves_no_partial_output(tiny_model_dir, tmp_path, houston_label_path):
    import signal
    import time

    work = tmp_path / "work"
    work.mkdir()
    log = tmp_path / "stderr.txt"  # a file, not a pipe: a full pipe would block the progress bar
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "changeanywhere_qgis", "generate", "--semantic", str(houston_label_path),
                                 "--random-events", "--model", str(tiny_model_dir), "--steps", "400", "--device", "cpu",
                                 "--out", str(work / "out")], cwd=REPO, stderr=err)
        deadline = time.time() + 300
        while time.time() < deadline and not any(".partial-" in p.name for p in work.iterdir()):
            time.sleep(0.2)
        assert any(".partial-" in p.name for p in work.iterdir()), "generation never started"
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=300)
    assert proc.returncode == 130 and "nothing was written" in log.read_text()
    assert list(work.iterdir()) == []


def test_outputs_open_in_the_system_gdal_with_crs_extent_and_colours(tiny_model_dir, tmp_path, houston_label_path):
    """QGIS reads through the distribution's GDAL (older than rasterio's own): check with that one."""
    out = tmp_path / "out"
    assert cli("generate", "--semantic", houston_label_path, "--random-events", "--model", tiny_model_dir,
               "--steps", "1", "--seed", "1", "--device", "cpu", "--out", out).returncode == 0
    code = (
        "import sys; from osgeo import gdal; gdal.UseExceptions()\n"
        "ref = gdal.Open(sys.argv[1]); sem = gdal.Open(sys.argv[2]); img = gdal.Open(sys.argv[3])\n"
        "ct = sem.GetRasterBand(1).GetColorTable()\n"
        "print(sem.GetGeoTransform() == ref.GetGeoTransform(), img.GetGeoTransform() == ref.GetGeoTransform(),\n"
        "      sem.GetSpatialRef().IsSame(ref.GetSpatialRef()), img.RasterCount, ct.GetColorEntry(6), ct.GetColorEntry(8))\n"
    )
    done = subprocess.run(["/usr/bin/python3", "-c", code, str(houston_label_path), str(out / "t2_semantic.tif"), str(out / "t2_image.tif")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", "1", "3", "(0,", "69,", "255,", "255)", "(222,", "31,", "7,", "255)"]


def test_a_new_stage_shows_at_once_even_when_the_fraction_stays(capsys):
    """Long stages (training a network, redrawing images) report a new message at the same fraction: it must show."""
    from changeanywhere_qgis.cli.progress_bar import ProgressBar

    bar = ProgressBar()
    try:
        bar(0.3, "redrawing images")
        capsys.readouterr()
        bar(0.3, "training FC-Siam-diff")
        assert "training FC-Siam-diff" in capsys.readouterr().err
    finally:
        bar.close()


def test_remap_help_names_every_builtin_table():
    from changeanywhere_qgis.cli import build_parser
    from changeanywhere_qgis.engine.landcover import builtin_remaps

    parser = build_parser()
    for command in ("generate", "simulate", "dataset"):
        sub = parser._subparsers._group_actions[0].choices[command]  # noqa: SLF001 (argparse keeps them there)
        text = next(a.help for a in sub._actions if "--remap" in a.option_strings)  # noqa: SLF001
        assert all(name in text for name in builtin_remaps()), (command, text)


def test_sampler_and_tile_size_from_the_command_line(tiny_model_dir, tmp_path, houston_label_path):
    out = tmp_path / "dpmpp"
    done = cli("generate", "--semantic", houston_label_path, "--random-events", "--model", tiny_model_dir, "--steps", "3",
               "--seed", "3", "--sampler", "dpmpp-2m", "--tile-size", "256", "--device", "cpu", "--out", out)
    assert done.returncode == 0, done.stderr
    record = json.loads((out / "sample.json").read_text())
    assert (record["sampler"], record["tile_size_px"]) == ("dpmpp-2m", 256)
    for args, message in ((["--sampler", "dpmpp-2m", "--eta", "0.5"], "error: eta is a DDIM setting"),
                          (["--tile-size", "100"], "error: The tile size must be a whole number of pixels, a multiple of 8"),
                          (["--sampler", "euler"], "invalid choice: 'euler'")):
        done = cli("generate", "--semantic", houston_label_path, "--random-events", "--model", tiny_model_dir, "--steps", "1",
                   *args, "--out", tmp_path / "bad")
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "bad").exists()
    for command in ("generate", "dataset"):
        words = " ".join(cli(command, "--help").stdout.split())
        assert "--sampler {ddim,dpmpp-2m}" in words and "--tile-size PX" in words and "default ddim" in words


def test_dataset_with_the_buildings_table_records_building_change_alone(tiny_model_dir, tmp_path, houston_label_path):
    """`dataset --transitions buildings`: every sample's class transitions build or demolish, and the card names the table."""
    out = tmp_path / "ds"
    args = ("dataset", "--semantic", houston_label_path, "--count", "4", "--tile", "128", "--steps", "1", "--workers", "1",
            "--model", tiny_model_dir, "--transitions", "buildings", "--out", out)
    done = cli(*args)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    moves = {(t["from"], t["to"]) for r in records for t in r["transitions"]}
    assert moves and all(to == 8 or (frm == 8 and to in (1, 3)) for frm, to in moves)  # building 8, bareland 1, developed 3
    assert "`buildings`" in (out / "README.md").read_text()
    again = cli(*args)  # the name is the dataset's setting: the same command resumes it
    assert again.returncode == 0 and "0 generated now, 4 already there" in again.stdout
    bad = cli(*args[:-4], "--transitions", "towers", "--out", tmp_path / "bad")
    assert bad.returncode != 0 and "'towers' is not a built-in table (buildings, oem)" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "bad").exists()

"""`python -m changeanywhere_qgis detect` as a user meets it: a real package (trained a few steps here), real images,
real read-only and full disks (tmpfs mounts, as root), real signals. Each fault ends in one `error:` line (exit 2) or a
clean cancel (exit 130) and leaves nothing behind."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import rasterio
from detector_package import SAMPLES, detector_package
from test_faults import assert_clean_error, cli, fill, tmpfs  # noqa: F401  (tmpfs: the fixture)

REPO = Path(__file__).resolve().parents[2]
HOUSTON = SAMPLES / "houston_image.tif"


@pytest.fixture(scope="session")
def package(tmp_path_factory) -> Path:
    return detector_package(tmp_path_factory.mktemp("detector"))


def detect(package, out, *extra, before=HOUSTON, after=HOUSTON):
    return cli("detect", "--before", before, "--after", after, "--detector", package, "--out", out, *extra)


def test_detect_writes_the_outputs_and_says_what_it_found(package, tmp_path):
    done = detect(package, tmp_path / "out", "--threshold", "0.4")
    assert done.returncode == 0, done.stderr
    assert "Wrote" in done.stdout and "threshold 0.4" in done.stdout
    report = json.loads((tmp_path / "out" / "detection.json").read_text())
    assert report["threshold"] == 0.4 and report["threshold_source"] == "given for this run"
    with rasterio.open(tmp_path / "out" / "change_mask.tif") as ds, rasterio.open(HOUSTON) as src:
        assert (ds.transform, ds.crs, ds.shape) == (src.transform, src.crs, src.shape)


def test_bad_inputs_are_one_error_line(package, tmp_path):
    assert_clean_error(detect(package, tmp_path / "a", "--threshold", "2"), "between 0 and 1")
    other = REPO / "data" / "train" / "oem" / "images" / "houston_16.tif"
    assert_clean_error(detect(package, tmp_path / "b", after=other), "not on image A's grid", "--resample")
    assert_clean_error(detect(tmp_path, tmp_path / "c"), "holds no detector.json")
    label = SAMPLES / "houston_label.tif"
    assert_clean_error(detect(package, tmp_path / "d", before=label), "has 1 band(s); the detector reads 3")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_read_only_output_is_a_clear_error(package, tmpfs):  # noqa: F811
    mount = tmpfs("1m", readonly=True)
    assert_clean_error(detect(package, mount / "det"), "read-only file system", "nothing was written")
    assert list(mount.iterdir()) == []


def test_full_disk_is_refused_before_any_work(package, tmpfs):  # noqa: F811
    mount = tmpfs("2m")
    fill(mount, 300_000)  # less than the 512 x 512 probability and mask may need
    assert_clean_error(detect(package, mount / "det"), "MB free", "nothing was written")
    assert [p.name for p in mount.iterdir()] == ["filler.bin"]


def test_ctrl_c_cancels_and_leaves_nothing(package, tmp_path):
    # a large pair, so that the signal comes while tiles run
    import numpy as np

    with rasterio.open(HOUSTON) as src:
        image, profile = np.tile(src.read(), (1, 8, 8)), src.profile
    big = tmp_path / "big.tif"
    with rasterio.open(big, "w", **{**profile, "width": 4096, "height": 4096}) as dst:
        dst.write(image)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "changeanywhere_qgis", "detect", "--before", big, "--after", big,
                             "--detector", package, "--out", out], cwd=REPO, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any(p.name.startswith(".out.partial") for p in tmp_path.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "cancelled: nothing was written" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.tif"]

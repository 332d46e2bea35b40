"""Faults as a user meets them on the command line: full and read-only disks (real tmpfs mounts), bad
options, kills with real signals. Each ends in one `error:` line (exit 2) or a clean cancel (exit 130),
never a traceback, and leaves nothing half-written behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "changeanywhere_qgis", *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, timeout=600, **kw)


def assert_clean_error(done, *words):
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: "), done.stderr
    for word in words:
        assert word in done.stderr, (word, done.stderr)


@pytest.fixture()
def tmpfs(tmp_path):
    """make(size, readonly) -> a freshly mounted tmpfs folder, unmounted at the end (needs root)."""
    mounted = []

    def make(size: str = "3m", readonly: bool = False) -> Path:
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root; this test runs only as root")
        folder = tmp_path / f"mount{len(mounted)}"
        folder.mkdir()
        options = f"size={size}" + (",ro" if readonly else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True, text=True)
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield make
    for folder in mounted:
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(folder: Path, leave_bytes: int) -> None:
    """Fill a file system until only ``leave_bytes`` are free."""
    stat = os.statvfs(folder)
    free = stat.f_bavail * stat.f_frsize
    with open(folder / "filler.bin", "wb") as f:
        f.write(b"\0" * max(0, free - leave_bytes))


# -- tracebacks that are now clear errors -------------------------------------------------------------------


def test_read_only_output_folder_is_a_clear_error(tmpfs, tiny_model_dir, houston_label_path):
    mount = tmpfs("1m", readonly=True)
    sim = cli("simulate", "--semantic", houston_label_path, "--random-events", "--model", tiny_model_dir, "--out", mount / "sim")
    assert_clean_error(sim, "read-only file system")
    gen = cli("generate", "--semantic", houston_label_path, "--random-events", "--model", tiny_model_dir, "--steps", "1",
              "--device", "cpu", "--out", mount / "deeper" / "gen")
    assert_clean_error(gen, "read-only file system")
    assert list(mount.iterdir()) == []


def test_full_disk_is_a_clear_error_and_leaves_nothing(tmpfs, tiny_model_dir, houston_label_path):
    mount = tmpfs("3m")
    fill(mount, 200_000)  # less than the 512x512 pair of images needs: refused before the model runs
    gen = cli("generate", "--semantic", houston_label_path, "--random-events", "--model", tiny_model_dir, "--steps", "1",
              "--seed", "1", "--device", "cpu", "--out", mount / "gen")
    assert_clean_error(gen, "0.2 MB free", "may need up to", "Free some space")
    assert [p.name for p in mount.iterdir()] == ["filler.bin"]  # no .partial folder left


def test_full_disk_during_a_dataset_is_a_clear_error(tmpfs, tiny_model_dir, houston_label_path):
    mount = tmpfs("3m")
    fill(mount, 60_000)  # room for the dataset's description and a few samples, not for 6: the workers hit the full disk
    done = cli("dataset", "--semantic", houston_label_path, "--count", "6", "--tile", "64", "--steps", "1", "--workers", "2",
               "--model", tiny_model_dir, "--out", mount / "ds")
    assert_clean_error(done, "is full")


def test_out_under_a_file_is_a_clear_error(tiny_model_dir, tmp_path, houston_label_path):
    somefile = tmp_path / "somefile.txt"
    somefile.write_text("not a folder")
    for command in (["simulate"], ["generate", "--steps", "1"]):
        done = cli(*command, "--semantic", houston_label_path, "--random-events", "--model", tiny_model_dir, "--out", somefile / "out")
        assert_clean_error(done, "lies under", "which is a file")
    done = cli("dataset", "--semantic", houston_label_path, "--count", "2", "--tile", "64", "--model", tiny_model_dir,
               "--out", somefile / "out")
    assert_clean_error(done, "lies under")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["somefile.txt"]


def test_negative_seed_and_zero_batch_size_are_refused(tiny_model_dir, tmp_path, houston_label_path):
    base = ["--semantic", houston_label_path, "--random-events", "--model", tiny_model_dir, "--out", tmp_path / "o"]
    assert_clean_error(cli("generate", *base, "--seed", "-5"), "seed must be a whole number >= 0")
    assert_clean_error(cli("simulate", *base, "--seed", "-5"), "seed must be a whole number >= 0")
    assert_clean_error(cli("generate", *base, "--batch-size", "0"), "batch size")
    assert not (tmp_path / "o").exists()


def test_a_manifest_with_a_word_for_a_number_is_a_model_error(tiny_model_dir, tmp_path, houston_label_path):
    model = tmp_path / "model"
    model.mkdir()
    for path in tiny_model_dir.iterdir():
        (model / path.name).write_bytes(path.read_bytes())
    manifest = json.loads((model / "model.json").read_text())
    manifest["tile"]["size"] = "big"
    (model / "model.json").write_text(json.dumps(manifest))
    assert_clean_error(cli("info", "--model", model), "tile.size must be a whole number", "'big'")
    done = cli("generate", "--semantic", houston_label_path, "--random-events", "--model", model, "--out", tmp_path / "o")
    assert_clean_error(done, "tile.size")


# -- messages that named the wrong problem -----------------------------------------------------------------


def test_model_json_given_as_model_names_the_folder(tiny_model_dir, tmp_path):
    done = cli("info", "--model", tiny_model_dir / "model.json")
    assert_clean_error(done, "is a file", "takes the model package folder", str(tiny_model_dir))
    assert "does not exist" not in done.stderr


def test_out_an_existing_file_says_file_not_overwrite(tiny_model_dir, tmp_path, houston_label_path):
    target = tmp_path / "existing.tif"
    target.write_bytes(b"x")
    done = cli("simulate", "--semantic", houston_label_path, "--random-events", "--model", tiny_model_dir, "--out", target)
    assert_clean_error(done, "is a file, not a folder")
    assert "--overwrite" not in done.stderr  # overwrite would refuse it too
    assert target.read_bytes() == b"x"


def _bar_free_warning_lines(stderr: str) -> list[str]:
    """The terminal lines that show a warning: what remains of each line after its last carriage return."""
    return [line.rsplit("\r", 1)[-1] for line in stderr.split("\n") if "warning:" in line]


def test_warnings_print_on_their_own_lines_not_inside_the_bar(tiny_model_dir, tmp_path, houston_label_path, houston_changes_path):
    changes = json.loads(Path(houston_changes_path).read_text())
    far = json.loads(json.dumps(changes["features"][0]))
    far["geometry"] = {"type": "Polygon", "coordinates": [[[0, 0], [0, 10], [10, 10], [10, 0], [0, 0]]]}
    changes["features"].append(far)
    vector = tmp_path / "changes.geojson"
    vector.write_text(json.dumps(changes))
    done = cli("simulate", "--semantic", houston_label_path, "--changes", vector, "--class-field", "target",
               "--model", tiny_model_dir, "--out", tmp_path / "sim")
    assert done.returncode == 0, done.stderr
    lines = _bar_free_warning_lines(done.stderr)
    assert lines and all(line.startswith("warning: ") for line in lines), repr(done.stderr)
    assert any("outside the raster" in line for line in lines)


# -- nothing left behind -----------------------------------------------------------------------------------


def _start_generate(out: Path, tiny_model_dir, houston_label_path, log):
    return subprocess.Popen([sys.executable, "-m", "changeanywhere_qgis", "generate", "--semantic", str(houston_label_path),
                             "--random-events", "--model", str(tiny_model_dir), "--steps", "400", "--device", "cpu",
                             "--out", str(out)], cwd=REPO, stderr=log, stdout=subprocess.DEVNULL)


def _wait_for_partial(work: Path, proc) -> None:
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not any(".partial-" in p.name for p in work.iterdir()):
        time.sleep(0.2)
    assert any(".partial-" in p.name for p in work.iterdir()), "generation never started"
    time.sleep(1.0)


def test_sigterm_cancels_like_ctrl_c(tiny_model_dir, tmp_path, houston_label_path):
    work = tmp_path / "work"
    work.mkdir()
    log = tmp_path / "stderr.txt"
    with open(log, "w") as err:
        proc = _start_generate(work / "out", tiny_model_dir, houston_label_path, err)
        _wait_for_partial(work, proc)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=300)
    assert proc.returncode == 130 and "nothing was written" in log.read_text()
    assert list(work.iterdir()) == []


def test_a_later_run_removes_what_a_kill_9_left(tiny_model_dir, tmp_path, houston_label_path):
    work = tmp_path / "work"
    work.mkdir()
    with open(tmp_path / "stderr.txt", "w") as err:
        proc = _start_generate(work / "out", tiny_model_dir, houston_label_path, err)
        _wait_for_partial(work, proc)
        proc.kill()
        proc.wait(timeout=60)
    left = [p for p in work.iterdir() if ".partial-" in p.name]
    assert left and str(proc.pid) in left[0].name  # the folder names the process that owned it
    done = cli("simulate", "--semantic", houston_label_path, "--random-events", "--model", tiny_model_dir, "--out", work / "out")
    assert done.returncode == 0, done.stderr
    assert [p.name for p in work.iterdir()] == ["out"]


def test_dataset_workers_die_with_a_killed_parent(tiny_model_dir, tmp_path, houston_label_path):
    psutil = pytest.importorskip("psutil")
    out = tmp_path / "ds"
    proc = subprocess.Popen([sys.executable, "-m", "changeanywhere_qgis", "dataset", "--semantic", str(houston_label_path),
                             # far more work than the test waits for: the run must still be going when it is killed
                             "--count", "2000", "--tile", "64", "--steps", "500", "--workers", "2", "--model", str(tiny_model_dir),
                             "--out", str(out)], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parent = psutil.Process(proc.pid)
    deadline = time.time() + 300
    children = []
    while time.time() < deadline and proc.poll() is None:
        children = parent.children(recursive=True)
        # the workers are making samples: a finished record, or one being written (a sample's .work folder is brief)
        started = any((out / ".samples").glob("*.json")) or ((out / ".work").is_dir() and any((out / ".work").iterdir()))
        if len(children) >= 2 and started:
            break
        time.sleep(0.2)
    assert proc.poll() is None and len(children) >= 2, "the workers never started"
    proc.kill()
    proc.wait(timeout=60)
    gone, alive = psutil.wait_procs(children, timeout=20)
    try:
        assert alive == [], f"still running after their parent was killed: {[p.cmdline()[-3:] for p in alive]}"
    finally:
        for p in alive:
            p.kill()


def test_unreachable_scheduler_writes_nothing(tiny_model_dir, tmp_path, houston_label_path):
    pytest.importorskip("distributed")
    out = tmp_path / "ds"
    done = cli("dataset", "--semantic", houston_label_path, "--count", "2", "--tile", "64", "--model", tiny_model_dir,
               "--scheduler", "tcp://127.0.0.1:1", "--out", out)
    assert_clean_error(done, "Cannot reach the Dask scheduler")
    assert not out.exists()


# -- the estimate before long work -------------------------------------------------------------------------


def test_long_work_prints_its_estimate_before_it_starts(tiny_model_dir, tmp_path, houston_label_path):
    work = tmp_path / "work"
    work.mkdir()
    log = tmp_path / "stderr.txt"
    with open(log, "w") as err:
        proc = _start_generate(work / "out", tiny_model_dir, houston_label_path, err)
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None and "estimate:" not in log.read_text():
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=300)
    lines = [line.rsplit("\r", 1)[-1] for line in log.read_text().split("\n") if "estimate:" in line]
    assert len(lines) == 1, log.read_text()
    words = lines[0].split()
    assert lines[0].startswith("estimate: 121 tiles x 400 steps on the cpu: about "), lines[0]
    assert words[words.index("about") + 2].rstrip(";") in ("s", "min", "h")
    assert "memory: about" in lines[0] and "available)" in lines[0]
    assert list(work.iterdir()) == []


def test_a_run_that_would_not_fit_in_memory_is_refused_before_writing(tiny_model_dir, tmp_path, houston_label_path):
    for command in (["simulate"], ["generate", "--steps", "1"]):
        done = cli(*command, "--semantic", houston_label_path, "--random-events", "--model", tiny_model_dir,
                   "--max-memory", "1M", "--out", tmp_path / "o")
        assert_clean_error(done, "512x512 px raster needs about", "of memory at its peak (the whole process:", "more than the 1 MB allowed", "smaller windows")
        assert "%" not in done.stderr  # refused before the work started
    assert list(tmp_path.iterdir()) == []


# The command line with every map counted as large (a test's hook): the sample's map arrays and latent canvases are files.
FORCED_LARGE = ("import runpy, sys\n"
                "from changeanywhere_qgis.engine.io import scratch\n"
                "scratch.SCRATCH_PIXELS = 0\n"
                "sys.argv = ['changeanywhere_qgis', *sys.argv[1:]]\n"
                "runpy.run_module('changeanywhere_qgis', run_name='__main__')\n")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_while_the_latent_files_exist_leaves_nothing(sig, tiny_model_dir, tmp_path, houston_label_path):
    work = tmp_path / "work"
    work.mkdir()
    log = tmp_path / "stderr.txt"
    latent = ".out.partial-*/.scratch/latent/*.raw"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-c", FORCED_LARGE, "generate", "--semantic", str(houston_label_path),
                                 "--random-events", "--model", str(tiny_model_dir), "--steps", "400", "--device", "cpu",
                                 "--out", str(work / "out")], cwd=REPO, stderr=err, stdout=subprocess.DEVNULL)
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None and not list(work.glob(latent)):
            time.sleep(0.1)
        assert list(work.glob(latent)), "the latent canvases never became files"
        proc.send_signal(sig)
        proc.wait(timeout=300)
    assert proc.returncode == 130 and "nothing was written" in log.read_text(), log.read_text()[-2000:]
    assert list(work.iterdir()) == []

"""The same dataset from two local worker processes and from a two-worker Dask LocalCluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from changeanywhere_qgis.engine.dataset import DatasetSettings, generate_dataset
from changeanywhere_qgis.engine.errors import InputError

distributed = pytest.importorskip("distributed")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)}


@pytest.mark.parametrize("SETTINGS", [
    DatasetSettings(count=6, tile=64, steps=2, seed=11, layout="levir"),
    DatasetSettings(count=6, tile=64, steps=2, seed=11, layout="all", fmt="tif", split_folders=True, skip_hidden_change=True),
    DatasetSettings(count=6, tile=64, steps=2, seed=11, layout="levir", appearance_shift=True,
                    style=str(Path(__file__).resolve().parents[3] / "data" / "whu-cd" / "B" / "000121_0512_0512.png")),
], ids=["levir", "all-tif-split-folders", "levir-appearance-shift-style"])
def test_dask_cluster_equals_local_processes(tmp_path, tiny_model_dir, houston_label_path, SETTINGS):
    local = tmp_path / "local"
    result = generate_dataset(houston_label_path, local, SETTINGS, model=tiny_model_dir, workers=2)
    assert result["backend"] == "local" and result["workers"] == 2 and result["threads_per_sample"] >= 1

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        dask = tmp_path / "dask"
        result = generate_dataset(houston_label_path, dask, SETTINGS, model=tiny_model_dir, scheduler=cluster.scheduler_address)
        assert result["backend"] == "dask" and result["workers"] == 2 and result["generated"] == SETTINGS.count
        with distributed.Client(cluster) as client:  # both workers made samples
            assert len(client.scheduler_info()["workers"]) == 2
    assert _files(dask) == _files(local)
    assert (dask / "manifest.jsonl").read_text() == (local / "manifest.jsonl").read_text()


def test_unreachable_scheduler_is_an_input_error(tmp_path, tiny_model_dir, houston_label_path):
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}), pytest.raises(InputError, match="Cannot reach the Dask scheduler"):
        generate_dataset(houston_label_path, tmp_path / "x", DatasetSettings(count=2, tile=64, steps=1),
                         model=tiny_model_dir, scheduler="tcp://127.0.0.1:9")

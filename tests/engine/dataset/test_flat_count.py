"""A flat-layout dataset resumed with a smaller --count holds only the kept samples' files in its folders, as a
split-folder one does (issue #36: the extra samples' files stayed beside the lists and the manifest); a larger
--count later takes them back without making them again."""

from __future__ import annotations

from pathlib import Path

import pytest

from changeanywhere_qgis.engine.dataset import DatasetSettings, generate_dataset, load_records
from changeanywhere_qgis.engine.io import STAGE_FOLDER


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)}


def make(out: Path, model, semantic, count: int, **kw) -> dict:
    return generate_dataset(semantic, out, DatasetSettings(count=count, tile=64, steps=1, **kw), model=model, workers=1)


@pytest.mark.parametrize("kw", [dict(layout="both", seed=4), dict(layout="levir", seed=2, dates=3)], ids=["both", "series"])
def test_a_smaller_count_leaves_only_the_kept_samples_in_the_flat_folders(tmp_path, tiny_model_dir, houston_label_path, kw):
    out = tmp_path / "ds"
    make(out, tiny_model_dir, houston_label_path, 6, **kw)
    full = files(out)
    fewer = make(out, tiny_model_dir, houston_label_path, 4, **kw)
    assert fewer["count"] == 4
    listed = {rel for r in load_records(out) for rel in r["files"].values()}
    in_folders = {rel for rel in files(out) if "/" in rel}  # the samples' files (README, lists aside)
    in_folders -= {rel for rel in in_folders if rel.startswith("list/")}
    assert in_folders == listed  # no file of sample 4 or 5 where readers look
    assert not any(name.startswith(("000004", "000005")) for rel in files(out) for name in [Path(rel).name, *Path(rel).parts])
    staged = [p for p in (out / STAGE_FOLDER).rglob("*") if p.is_file()]
    assert staged and all(p.relative_to(out / STAGE_FOLDER).as_posix().split("/")[-1].startswith(("000004", "000005"))
                          or p.parent.name in ("000004", "000005") for p in staged)
    again = make(out, tiny_model_dir, houston_label_path, 6, **kw)
    assert again["generated"] == 0 and files(out) == full  # back as they were, none made again
    assert not (out / STAGE_FOLDER).exists()

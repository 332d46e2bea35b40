"""An export replaces its --out whole, so it may replace only an earlier model package (issue #36's rule for
--overwrite, applied to `export_onnx.py` and `export.decoder`): before, `--out ~/models` was deleted without a word."""

from __future__ import annotations

import shutil

import pytest

from changeanywhere_qgis.engine.errors import InputError
from model_export.export import decoder, package


def test_an_export_refuses_a_folder_of_the_users_own_before_any_work(tmp_path, capsys):
    out = tmp_path / "models"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    # The checkpoint does not even exist: the refusal comes first, before anything is loaded or written.
    assert package.main(["--checkpoint", str(tmp_path / "no-run"), "--out", str(out)]) == 2
    assert "not a model package made by this tool" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and sorted(p.name for p in tmp_path.iterdir()) == ["models"]


def test_an_export_may_replace_an_earlier_package_but_not_one_holding_its_input(tmp_path, tiny_model_dir):
    out = tmp_path / "package"
    shutil.copytree(tiny_model_dir, out)
    (out / "decoder.onnx.aux.xml").write_text("")  # nothing a GIS writes here, but a side file is still the package's
    package.check_out(out, tmp_path / "run")  # an earlier package: replaceable
    run = out / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"checkpoint")
    with pytest.raises(InputError, match="an input of this run"):
        package.check_out(out, run)
    (out / "run" / "last.pt").unlink()
    with pytest.raises(InputError, match="files it did not write"):
        package.check_out(out)  # the empty sub-folder is not the package's


def test_the_decoder_export_refuses_the_same_way(tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "work"
    out.mkdir()
    (out / "thesis.tex").write_text("mine")
    code = decoder.main(["--base", str(tiny_model_dir), "--decoder", str(tmp_path / "no-run"), "--out", str(out)])
    assert code == 2 and "not a model package made by this tool" in capsys.readouterr().err  # before any work
    assert (out / "thesis.tex").read_text() == "mine"

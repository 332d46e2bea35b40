"""`train --set TABLE.KEY=VALUE`: one setting over the config file, refused by name when it is not one."""

from pathlib import Path

import pytest

from model_export.training.config import load_config, override_config
from model_export.training.errors import DataError
from model_export.training.train import main

DEFAULT = Path(__file__).parents[3] / "model_export" / "configs" / "default.toml"


def test_values_are_read_as_toml_and_the_file_is_untouched():
    cfg = load_config(DEFAULT)
    new = override_config(cfg, ["autoencoder.norm_num_groups=4", "autoencoder.lr = 2e-4",
                                "autoencoder.block_out_channels=[32, 64, 64]", 'data.balance="tile"'])
    assert new["autoencoder"]["norm_num_groups"] == 4 and new["autoencoder"]["lr"] == 2e-4
    assert new["autoencoder"]["block_out_channels"] == [32, 64, 64] and new["data"]["balance"] == "tile"
    assert cfg["autoencoder"]["norm_num_groups"] == 8 and cfg["data"]["balance"] == "source"  # a copy, not the same dicts
    assert new["diffusion"] == cfg["diffusion"]


@pytest.mark.parametrize("setting, says", [
    ("autoencoder.norm_groups=8", "a key the config already has"),   # misspelt key
    ("norm_num_groups=8", "TABLE.KEY=VALUE"),
    ("autoencoder.norm_num_groups", "TABLE.KEY=VALUE"),
    ("autoencoder.lr=fast", "written as in TOML"),
])
def test_bad_settings_are_refused_by_name(setting, says):
    with pytest.raises(DataError, match=says):
        override_config(load_config(DEFAULT), [setting])


def test_the_command_refuses_before_it_writes(tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_:
        main(["--stage", "autoencoder", "--config", str(DEFAULT), "--data", str(tmp_path), "--out", str(out),
              "--set", "autoencoder.norm_groups=8"])
    assert exit_.value.code == 2 and "norm_groups" in capsys.readouterr().err and not out.exists()

"""The training config (TOML): read, one setting overridden from the command line (``--set``), and the gentler
schedule of ``[finetune.STAGE]`` for continuing a trained package."""

from __future__ import annotations

import tomllib
from pathlib import Path

from model_export.training.errors import DataError


def load_config(path: str | Path) -> dict:
    with open(path, "rb") as f:
        return tomllib.load(f)


def override_config(cfg: dict, settings: list[str]) -> dict:
    """The config with each ``TABLE.KEY=VALUE`` of ``--set`` in place (VALUE in TOML: 8, 2e-4, [32, 64], "source"),
    so a trial of one setting needs no copy of the whole config; the run's checkpoint records the config it used."""
    cfg = {table: dict(keys) if isinstance(keys, dict) else keys for table, keys in cfg.items()}
    for setting in settings:
        name, sep, value = setting.partition("=")
        table, dot, key = name.strip().partition(".")
        if not sep or not dot or not key or not isinstance(cfg.get(table), dict) or key not in cfg[table]:
            raise DataError(f"--set {setting!r}: give TABLE.KEY=VALUE for a key the config already has "
                            f"(e.g. autoencoder.norm_num_groups=8)")
        try:
            cfg[table][key] = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            raise DataError(f"--set {setting!r}: the value must be written as in TOML (a number, true/false, "
                            f"a \"quoted string\" or a [list])") from None
    return cfg


def finetune_config(cfg: dict, stage: str) -> dict:
    """The config with ``[finetune.STAGE]`` (a gentler schedule for continuing a trained model) over the stage's table."""
    overrides = cfg.get("finetune", {}).get(stage, {})
    return {**cfg, stage: {**cfg.get(stage, {}), **overrides}}

"""An output folder that appears whole or not at all.

Outputs go into a hidden temporary folder beside the output folder and are moved into place
only when everything is written, so an error or a cancel never leaves half an output behind.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from ..errors import InputError


class OutputFolder:
    """Write into ``<parent>/.<name>.partial-*`` and move it into place on success (a context manager)."""

    def __init__(self, out_dir: str | Path, overwrite: bool = False) -> None:
        self.final = Path(out_dir)
        if self.final.exists() and not overwrite:
            if self.final.is_file() or any(self.final.iterdir()):
                raise InputError(f"Output folder {self.final} already exists. Choose another folder, or pass --overwrite to replace it.")
        if self.final.is_file():
            raise InputError(f"Output path {self.final} is a file, not a folder. Choose a folder path.")
        self.temp: Path | None = None

    def __enter__(self) -> "OutputFolder":
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.temp = self.final.parent / f".{self.final.name}.partial-{uuid.uuid4().hex[:8]}"
        self.temp.mkdir()
        return self

    def path(self, name: str) -> Path:
        return self.temp / name

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self.temp, ignore_errors=True)
            return
        old = None
        if self.final.exists():
            old = self.final.parent / f".{self.final.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(self.final, old)
        os.replace(self.temp, self.final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

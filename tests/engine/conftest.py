"""Fixtures of the engine's tests."""

from __future__ import annotations

import pytest

from changeanywhere_qgis.engine.io import scratch


@pytest.fixture()
def force_large_maps(monkeypatch):
    """A function that, once called, sends every map down the large-map path; it returns a list that fills with the
    paths of the scratch files made from then on (called mid-test, the runs before it take the in-memory path)."""
    def force() -> list:
        made = []
        original = scratch.ScratchRaster.__init__

        def counted(self, *args, **kw):
            original(self, *args, **kw)
            made.append(self.path)

        monkeypatch.setattr(scratch, "SCRATCH_PIXELS", 0)
        monkeypatch.setattr(scratch.ScratchRaster, "__init__", counted)
        return made

    return force

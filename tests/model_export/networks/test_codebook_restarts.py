"""Dead codebook entries are re-seeded from encoder outputs, so a VQ codebook cannot collapse."""

from __future__ import annotations

import torch
from torch import nn

from model_export.networks.autoencoder import CodebookUsage

from training_helpers import summary


def test_unused_codes_move_onto_encoder_outputs():
    torch.manual_seed(0)
    # A collapsed codebook: 16 entries, all but two far away from the data.
    codebook = nn.Parameter(torch.full((16, 3), 50.0))
    codebook.data[0] = torch.tensor([1.0, 0.0, 0.0])
    codebook.data[1] = torch.tensor([-1.0, 0.0, 0.0])
    usage = CodebookUsage(16, every=3)
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(2, 3, 8, 8)
    assert usage.update(z, codebook, gen) == 0 and usage.update(z, codebook, gen) == 0  # still counting
    assert usage.update(z, codebook, gen) == 14  # the window ends: 14 entries were never nearest
    flat = z.permute(0, 2, 3, 1).reshape(-1, 3)
    nearest_data = torch.cdist(codebook.data[2:], flat).min(1).values
    assert float(nearest_data.max()) < 0.1  # each re-seeded entry sits (jittered) on an encoder output
    assert torch.equal(codebook.data[0], torch.tensor([1.0, 0.0, 0.0]))  # live entries untouched
    for _ in range(3):
        usage.update(z, codebook, gen)
    assert len(torch.cdist(flat, codebook.data).argmin(1).unique()) > 2


def test_restarts_can_be_switched_off():
    codebook = nn.Parameter(torch.full((4, 3), 50.0))
    before = codebook.data.clone()
    usage = CodebookUsage(4, every=0)
    for _ in range(5):
        assert usage.update(torch.randn(1, 3, 4, 4), codebook, torch.Generator()) == 0
    assert torch.equal(codebook.data, before)


def test_trained_autoencoder_reports_its_codebook_use(tiny_run):
    s = summary(tiny_run / "ae")
    assert 1 < s["codes_used"] <= s["codebook_size"] == 64

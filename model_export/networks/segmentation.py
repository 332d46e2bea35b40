"""The segmentation net of the judges: a small three-level UNet that labels land cover (evaluation/segmentation.py
trains it and scores generated images with it)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SmallUNet(nn.Module):
    """Three-level UNet, 16-32-64 channels: logits for the ``num_classes`` classes (channel c = code c + 1)."""

    def __init__(self, num_classes: int, widths=(16, 32, 64)):
        super().__init__()
        self.enc = nn.ModuleList([block(3, widths[0]), block(widths[0], widths[1]), block(widths[1], widths[2])])
        self.dec = nn.ModuleList([block(widths[2] + widths[1], widths[1]), block(widths[1] + widths[0], widths[0])])
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e0 = self.enc[0](x)
        e1 = self.enc[1](F.max_pool2d(e0, 2))
        e2 = self.enc[2](F.max_pool2d(e1, 2))
        d1 = self.dec[0](torch.cat([F.interpolate(e2, scale_factor=2.0), e1], 1))
        d0 = self.dec[1](torch.cat([F.interpolate(d1, scale_factor=2.0), e0], 1))
        return self.head(d0)

"""The change-detection net of the usefulness test: FC-Siam-diff (Daudt et al., ICIP 2018), trained on generated
datasets by evaluation/usefulness.py."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _conv(cin: int, cout: int, n: int) -> nn.Sequential:
    layers = []
    for i in range(n):
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class FCSiamDiff(nn.Module):
    """FC-Siam-diff, written plainly: 4 encoder levels (shared weights), 4 decoder levels with |difference| skips."""

    def __init__(self, widths=(16, 32, 64, 128)):
        super().__init__()
        w = widths
        self.enc = nn.ModuleList([_conv(3, w[0], 2), _conv(w[0], w[1], 2), _conv(w[1], w[2], 3), _conv(w[2], w[3], 3)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(w[3], w[3], 2, stride=2), nn.ConvTranspose2d(w[2], w[2], 2, stride=2),
                                 nn.ConvTranspose2d(w[1], w[1], 2, stride=2), nn.ConvTranspose2d(w[0], w[0], 2, stride=2)])
        self.dec = nn.ModuleList([_conv(2 * w[3], w[2], 3), _conv(2 * w[2], w[1], 3), _conv(2 * w[1], w[0], 2),
                                  _conv(2 * w[0], w[0], 1)])
        self.head = nn.Conv2d(w[0], 1, 1)

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for stage in self.enc:
            x = stage(x)
            feats.append(x)
            x = F.max_pool2d(x, 2)
        return feats

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        fa, fb = self.encode(a), self.encode(b)
        x = F.max_pool2d(fb[3], 2)
        for k in range(4):
            level = 3 - k
            x = self.up[k](x)
            x = self.dec[k](torch.cat([x, (fa[level] - fb[level]).abs()], 1))
        return self.head(x)

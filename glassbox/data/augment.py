"""Training-time image augmentation on whole batches, driven by a seeded generator (so resume is exact)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


class ImageAugment:
    """Random horizontal flips (photos only: a flipped digit is another symbol) and random shifts."""

    def __init__(self, flip: bool, shift: int):
        self.flip, self.shift = flip, shift

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n, _, h, w = x.shape
        if self.flip:
            mask = torch.rand(n, generator=gen) < 0.5
            x = torch.where(mask.view(-1, 1, 1, 1), x.flip(-1), x)
        if self.shift:
            s = self.shift
            padded = F.pad(x, (s, s, s, s), mode="replicate")
            dx, dy = torch.randint(0, 2 * s + 1, (2,), generator=gen).tolist()
            x = padded[:, :, dy:dy + h, dx:dx + w]
        return x.contiguous()

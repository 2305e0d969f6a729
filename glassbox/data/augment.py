"""Training-time image augmentation on whole batches, driven by a seeded generator (so resume is exact)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


class ImageAugment:
    """Per image: a random horizontal flip (photos only: a flipped digit is another symbol), a random shift
    of up to `shift` pixels each way (the border pixels repeat), and a random blur of strength up to `blur`.

    The blur makes a model trust fine detail less: photos resized with another filter than the training
    images (say 64x64 test photos shrunk to 32x32) are a little softer, and a model trained on sharp
    images alone loses several points of accuracy on them."""

    def __init__(self, flip: bool, shift: int, blur: float = 0.0):
        self.flip, self.shift, self.blur = flip, shift, blur

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n, c, h, w = x.shape
        if self.flip:
            mask = torch.rand(n, generator=gen) < 0.5
            x = torch.where(mask.view(-1, 1, 1, 1), x.flip(-1), x)
        if self.shift:
            dy, dx = torch.randint(-self.shift, self.shift + 1, (2, n), generator=gen)
            rows = (dy[:, None] + torch.arange(h)).clamp(0, h - 1)  # (n, h) source row of each output row
            cols = (dx[:, None] + torch.arange(w)).clamp(0, w - 1)  # (n, w)
            index = (rows[:, :, None] * w + cols[:, None, :]).view(n, 1, h * w).expand(n, c, h * w)
            x = x.reshape(n, c, h * w).gather(2, index).view(n, c, h, w)
        if self.blur:
            # separable [a, 1 - 2a, a] kernel, a drawn per image from [0, blur)
            a = (torch.rand(n, generator=gen) * self.blur).view(n, 1, 1, 1)
            p = F.pad(x, (1, 1, 0, 0), mode="replicate")
            x = (1 - 2 * a) * x + a * (p[..., :-2] + p[..., 2:])
            p = F.pad(x, (0, 0, 1, 1), mode="replicate")
            x = (1 - 2 * a) * x + a * (p[..., :-2, :] + p[..., 2:, :])
        return x.contiguous()

"""A small residual CNN for images: conv-BN-ReLU stages, each halving the resolution, then a linear head.

Two speed-ups that leave the maths alone: inputs go channels-last (the layout oneDNN's CPU convolutions
are fastest in), and with `bf16` the layers run in bfloat16 under autocast where the hardware computes
it natively (CPUs with AVX512-BF16 or AMX), about twice as fast to train; weights, gradients, optimizer
state and the returned logits stay float32. Elsewhere the model runs in float32.

With `flip_tta`, evaluation and prediction (eval mode) average the logits of each image and of its
mirror image; training (train mode) sees single images."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass
class CNNConfig:
    in_channels: int               # 1 for grey, 3 for colour
    n_classes: int                 # output classes
    image_size: int = 32           # side length of the square input
    width: int = 32                # channels of the first stage, doubled at each later stage
    stages: int = 3                # resolution-halving stages
    dropout: float = 0.0           # dropout before the head
    bf16: bool = False             # compute in bfloat16 where the hardware does it natively (else float32)
    flip_tta: bool = False         # eval mode: average the logits of the image and its mirror image


def conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Residual(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn(channels, channels), conv_bn(channels, channels))

    def forward(self, x):
        return x + self.body(x)


def native_bf16(device: torch.device) -> bool:
    """Does this device compute bfloat16 convolutions natively (faster than float32)?"""
    if device.type != "cpu":
        return False  # on GPUs the loop's float32 is fast already; keep one precision there
    try:
        return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    except AttributeError:  # an older torch without the probes
        return False


class CNN(nn.Module):
    def __init__(self, config: CNNConfig):
        super().__init__()
        self.config = config
        layers, cin, w = [conv_bn(config.in_channels, config.width)], config.width, config.width
        size = config.image_size
        for s in range(config.stages):
            cout = config.width * 2 ** s
            layers += [conv_bn(cin, cout)]
            if size >= 4:
                layers += [nn.MaxPool2d(2)]
                size //= 2
            if s != 1 or config.stages < 3:
                layers += [Residual(cout)]
            cin = w = cout
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Dropout(config.dropout), nn.Linear(w, config.n_classes))
        self._bf16 = {}  # device type -> native bfloat16?

    def compute_dtype(self, device: torch.device) -> torch.dtype:
        """The precision the layers compute in on `device`."""
        return torch.bfloat16 if self.config.bf16 and native_bf16(torch.device(device)) else torch.float32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.config.flip_tta and not self.training:
            return 0.5 * (self.logits(x) + self.logits(x.flip(-1)))
        return self.logits(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        if self.config.bf16 and x.device.type not in self._bf16:
            self._bf16[x.device.type] = native_bf16(x.device)
        low = self.config.bf16 and self._bf16[x.device.type]
        with torch.autocast(x.device.type, dtype=torch.bfloat16) if low else contextlib.nullcontext():
            return self.head(self.features(x)).float()

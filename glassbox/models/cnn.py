"""A small residual CNN for images: conv-BN-ReLU stages, each halving the resolution, then a linear head.

Two speed-ups that leave the maths alone: inputs go channels-last (the layout oneDNN's CPU convolutions
are fastest in), and with `bf16` the layers run in bfloat16 under autocast where the hardware computes
it natively (CPUs with AVX512-BF16 or AMX, GPUs from Ampere on), about twice as fast to train on CPU; weights, gradients, optimizer
state and the returned logits stay float32. Elsewhere the model runs in float32.

With `flip_tta`, evaluation and prediction (eval mode) average the logits of each image and of its
mirror image; training (train mode) sees single images."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from glassbox.models.precision import at_least_float32, autocast, compute_dtype


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

    def compute_dtype(self, device: torch.device) -> torch.dtype:
        """The precision the layers compute in on `device`."""
        return compute_dtype(self.config.bf16, torch.device(device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.config.flip_tta and not self.training:
            return 0.5 * (self.logits(x) + self.logits(x.flip(-1)))
        return self.logits(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        with autocast(self.config.bf16, x.device):
            return at_least_float32(self.head(self.features(x)))

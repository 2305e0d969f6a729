"""Which device a run computes on: `auto` (a GPU when torch sees one, else the CPU), cpu, cuda, cuda:N."""
from __future__ import annotations

import os

import torch

from glassbox.errors import UserError


def pick_device(name: str = "auto", dist_local_rank: int | None = None) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            local = int(os.environ.get("LOCAL_RANK", "0")) if dist_local_rank is None else dist_local_rank
            return torch.device(f"cuda:{local}")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device '{name}'; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: this machine has no CUDA GPU that torch {torch.__version__} can use; "
                        f"use --device cpu (or auto)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA GPU(s), numbered from 0")
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"--device {name}: glassbox trains on cpu or cuda; use one of those (or auto)")
    return device

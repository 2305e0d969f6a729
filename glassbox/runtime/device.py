"""Which device a run computes on: `auto` (a GPU when torch sees one, else the CPU), cpu, cuda, cuda:N.

Under torchrun each process takes one GPU of those it sees (`process_gpu`): cuda:LOCAL_RANK when it sees several
(one node's GPUs shared among its processes), cuda:0 when it sees exactly one (a scheduler that hands every task its
own GPU through CUDA_VISIBLE_DEVICES, so that every process's one GPU is its cuda:0)."""
from __future__ import annotations

import os

import torch

from glassbox.errors import UserError


def pick_device(name: str = "auto", dist_local_rank: int | None = None) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return process_gpu(dist_local_rank)
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
    if device.type == "cuda" and device.index is None and under_torchrun():
        return process_gpu(dist_local_rank)  # --device cuda: this process's own GPU
    return device


def under_torchrun() -> bool:
    """Started by torchrun (or another launcher that sets its variables): one process of a group."""
    return "TORCHELASTIC_RUN_ID" in os.environ or int(os.environ.get("WORLD_SIZE", "1") or 1) > 1


def process_gpu(local_rank: int | None = None) -> torch.device:
    """This process's GPU: cuda:0 when it sees one GPU (whatever its LOCAL_RANK), cuda:LOCAL_RANK when it sees several;
    a LOCAL_RANK with no GPU of its own is refused in one line."""
    local = int(os.environ.get("LOCAL_RANK", "0") or 0) if local_rank is None else local_rank
    count = torch.cuda.device_count()
    if count == 1:
        return torch.device("cuda:0")
    if local >= count:
        raise UserError(f"this process has LOCAL_RANK {local} but sees {count} CUDA GPUs (cuda:0 to cuda:{count - 1}): "
                        f"start at most {count} processes per node (torchrun --nproc_per_node {count}), or give each "
                        f"process one GPU of its own (CUDA_VISIBLE_DEVICES)")
    return torch.device(f"cuda:{local}")

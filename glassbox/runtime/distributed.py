"""Data-parallel training under torchrun: one process per device, gradients averaged by DDP.

Launched as `torchrun --nproc_per_node N -m glassbox train ...`; without torchrun this is a no-op."""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


_LOCAL = [False]  # True inside local(): training here is this process's own, not the group's


@contextlib.contextmanager
def local():
    """Inside the block, fit trains as if there were one process, even under torchrun. For work every
    rank does alike on its own (the audit's fold models): no gradient exchange per step, same results."""
    before, _LOCAL[0] = _LOCAL[0], True
    try:
        yield
    finally:
        _LOCAL[0] = before


def setup(device: torch.device) -> Dist:
    """Join the process group when started by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or _LOCAL[0]:
        return Dist()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Dist(rank=dist.get_rank(), world_size=world, local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def current() -> Dist:
    """This process's place in the group (rank 0 of 1 outside torchrun); joins nothing."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or _LOCAL[0]:
        return Dist()
    return Dist(rank=int(os.environ.get("RANK", "0")), world_size=world, local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def barrier() -> None:
    """Wait until every process reaches this point (nothing to wait for outside torchrun)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()

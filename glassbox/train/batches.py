"""Where training batches come from, in an order that a checkpoint can resume exactly.

Every batch source has `next() -> (x, y)`, an `epoch` attribute, and `state_dict()` /
`load_state_dict()` holding everything needed to draw the very same batches again."""
from __future__ import annotations

import base64
from typing import Callable, Protocol

import torch


class BatchSource(Protocol):
    epoch: int

    def next(self) -> tuple[torch.Tensor, torch.Tensor]: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


def generator_state(g: torch.Generator) -> str:
    return base64.b64encode(g.get_state().numpy().tobytes()).decode()


def set_generator_state(g: torch.Generator, state: str) -> None:
    g.set_state(torch.frombuffer(bytearray(base64.b64decode(state)), dtype=torch.uint8))


class TensorBatches:
    """Shuffled mini-batches over in-memory tensors, a new seeded permutation each epoch.

    Under DDP each process takes every world_size-th example of the same permutation
    (what DistributedSampler does), so processes see disjoint data."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int = 0,
                 augment: Callable | None = None, rank: int = 0, world_size: int = 1):
        self.x, self.y, self.batch_size, self.seed = x, y, batch_size, seed
        self.augment, self.rank, self.world_size = augment, rank, world_size
        self.epoch, self.position = 0, 0
        self.aug_gen = torch.Generator().manual_seed(seed + 1)
        self._order = None
        self._len = max(1, len(range(rank, len(y), world_size)) // batch_size)

    def __len__(self) -> int:
        """Batches per epoch for this process."""
        return self._len

    def _permutation(self) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(len(self.y), generator=g)[self.rank::self.world_size]

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._order is None:
            self._order = self._permutation()
        if self.position >= self._len:  # the ragged last batch is dropped; the next epoch starts
            self.epoch, self.position = self.epoch + 1, 0
            self._order = self._permutation()
        idx = self._order[self.position * self.batch_size:(self.position + 1) * self.batch_size]
        self.position += 1
        x = self.x[idx]
        if self.augment is not None:
            x = self.augment(x, self.aug_gen)
        return x, self.y[idx]

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position, "aug_gen": generator_state(self.aug_gen)}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position = state["epoch"], state["position"]
        set_generator_state(self.aug_gen, state["aug_gen"])
        self._order = None


class LoaderBatches:
    """Batches from any torch Dataset through a DataLoader, for bring-your-own data in `fit`.

    Resume replays the epoch's seeded order and skips the batches already seen."""

    def __init__(self, dataset, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1):
        self.dataset, self.batch_size, self.seed = dataset, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.position, self._it = 0, 0, None

    def _start_epoch(self):
        from torch.utils.data import DataLoader, DistributedSampler

        sampler = DistributedSampler(self.dataset, num_replicas=self.world_size, rank=self.rank,
                                     shuffle=True, seed=self.seed, drop_last=True)
        sampler.set_epoch(self.epoch)
        loader = DataLoader(self.dataset, batch_size=self.batch_size, sampler=sampler, drop_last=True)
        self._it = iter(loader)
        for _ in range(self.position):
            next(self._it)

    def next(self):
        if self._it is None:
            self._start_epoch()
        try:
            batch = next(self._it)
        except StopIteration:
            self.epoch, self.position = self.epoch + 1, 0
            self._start_epoch()
            batch = next(self._it)
        self.position += 1
        return batch[0], batch[1]

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position, self._it = state["epoch"], state["position"], None

"""Where training batches come from, in an order that a checkpoint can resume exactly.

Every batch source has `next() -> (x, y)`, an `epoch` attribute, and `state_dict()` /
`load_state_dict()` holding everything needed to draw the very same batches again."""
from __future__ import annotations

import base64
from typing import Callable, Protocol

import torch

from glassbox.runtime import distributed


class BatchSource(Protocol):
    epoch: int

    def next(self) -> tuple[torch.Tensor, torch.Tensor]: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


def generator_state(g: torch.Generator) -> str:
    return base64.b64encode(g.get_state().numpy().tobytes()).decode()


def set_generator_state(g: torch.Generator, state: str) -> None:
    g.set_state(torch.frombuffer(bytearray(base64.b64decode(state)), dtype=torch.uint8))


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The seeded order of n examples in one epoch: the same on every process and for any number of processes."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


class TensorBatches:
    """Shuffled mini-batches over in-memory tensors, a new seeded permutation each epoch.

    batch_size is the global batch: under DDP each of the world_size processes takes its equal slice of every
    global batch, so together they train on exactly the batches one process would, and the position (epoch,
    global batches done) resumes on any number of processes."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int = 0,
                 augment: Callable | None = None, rank: int = 0, world_size: int = 1):
        self.x, self.y, self.batch_size, self.seed = x, y, batch_size, seed
        self.augment, self.rank = augment, rank
        self.share = distributed.share(batch_size, world_size, len(y))
        self.epoch, self.position = 0, 0
        self.aug_gen = torch.Generator().manual_seed(seed + 1)
        self._order = None
        self._len = max(1, len(y) // batch_size)

    def __len__(self) -> int:
        """Global batches per epoch."""
        return self._len

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._order is None:
            self._order = epoch_order(len(self.y), self.seed, self.epoch)
        if self.position >= self._len:  # the ragged last batch is dropped; the next epoch starts
            self.epoch, self.position = self.epoch + 1, 0
            self._order = epoch_order(len(self.y), self.seed, self.epoch)
        idx = self._order[self.position * self.batch_size:(self.position + 1) * self.batch_size]  # the global batch
        self.position += 1
        mine = slice(self.rank * self.share, (self.rank + 1) * self.share)
        if self.augment is None:
            return self.x[idx[mine]], self.y[idx[mine]]
        # every process draws the whole global batch's augmentations and keeps its slice: the draws do not
        # depend on the number of processes
        return self.augment(self.x[idx], self.aug_gen)[mine], self.y[idx[mine]]

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position, "aug_gen": generator_state(self.aug_gen)}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position = state["epoch"], state["position"]
        set_generator_state(self.aug_gen, state["aug_gen"])
        self._order = None


class LoaderBatches:
    """Batches from any torch Dataset through a DataLoader, for bring-your-own data in `fit`, in the same seeded
    global order as TensorBatches (each process loads its slice of every global batch).

    Resume replays the epoch's seeded order and skips the batches already seen."""

    def __init__(self, dataset, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1):
        self.dataset, self.batch_size, self.seed = dataset, batch_size, seed
        self.rank, self.share = rank, distributed.share(batch_size, world_size, len(dataset))
        self.epoch, self.position, self._it = 0, 0, None

    def _start_epoch(self):
        from torch.utils.data import DataLoader

        order = epoch_order(len(self.dataset), self.seed, self.epoch).tolist()
        first = self.rank * self.share
        mine = [order[b * self.batch_size + first:b * self.batch_size + first + self.share]
                for b in range(self.position, max(1, len(order) // self.batch_size))]
        self._it = iter(DataLoader(self.dataset, batch_sampler=mine))

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

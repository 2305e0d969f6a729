"""Where a training run stands, beyond its weights and optimizer: the step, the evaluations so far, the training
loss since the last one, the batch source's position, early stopping, and what earlier sessions of a resumed run
spent. `state_dict()` is a checkpoint's state.json (train/checkpoint.py adds the step, the random state and the
optimizer's); `load_state_dict()` continues from one, so a resumed run draws the same batches and sums the same
losses as one that never stopped."""
from __future__ import annotations

import time

import torch

from glassbox.train.parallel import session, summed


class TrainState:
    """One run's progress through `fit`. Every process holds one; the processes' running losses are summed
    (`train_loss`, `state_dict`), so every process must call those two alike."""

    def __init__(self, batches, early_stopping, device: torch.device, dist):
        self.step = 0                        # updates made
        self.history: list[dict] = []        # one record per evaluation, the untrained model's first
        self.chance: dict | None = None      # what knowing nothing scores (None until measured)
        self.batches = batches               # the batch source: where in the data the next batch starts
        self.early_stopping = early_stopping
        self.loss_sum = torch.zeros((), device=device)  # the training loss summed since the last evaluation...
        self.loss_count = 0                  # ...over this many micro-batches (on this process)
        self.before = {"seconds": 0.0, "seen": 0, "sessions": []}  # the time, examples and processes of earlier sessions
        self.threads: int | None = None      # CPU threads the run trains on; a resumed run keeps them: the same sums
        self.best_weights: dict | None = None  # the sweet spot's (checkpoints keep them in best-NNNNNNN.safetensors)
        self.dist = dist
        self.start_session()

    def start_session(self) -> None:
        """This process's session starts now, at the current step: its clock, and the examples it has seen."""
        self.first_step, self.seen, self.started = self.step, 0, time.perf_counter()
        self._last_evaluation = (self.started, 0)  # (time, examples seen) of the previous evaluation

    def count(self, loss: torch.Tensor, rows: int) -> None:
        """One micro-batch trained: its loss into the running sum, its rows into the global examples seen (every
        process took an equal share of the global batch)."""
        self.loss_sum += loss.detach()
        self.loss_count += 1
        self.seen += rows * self.dist.world_size

    def train_loss(self) -> float:
        """The mean training loss since the last evaluation, over the global batch (every process takes part)."""
        return summed(self.loss_sum, self.dist) / self.dist.world_size / max(1, self.loss_count)

    def evaluated(self) -> float:
        """An evaluation is recorded: the running loss starts again from zero. Returns the examples a second
        trained since the previous evaluation."""
        now, (then, seen_then) = time.perf_counter(), self._last_evaluation
        self.loss_sum, self.loss_count = torch.zeros((), device=self.loss_sum.device), 0
        self._last_evaluation = (now, self.seen)
        return (self.seen - seen_then) / max(now - then, 1e-9)

    def best_record(self) -> dict:
        """The evaluation of the sweet spot (the untrained model's before any evaluation)."""
        return next((h for h in self.history if h["step"] > 0 and h["step"] == self.early_stopping.best_step),
                    self.history[0])

    def beat_untrained(self) -> bool:
        """Whether an evaluation beat the untrained model's loss: only then are the best weights worth keeping."""
        best = self.best_record()
        return best["step"] > 0 and best["val_loss"] < self.chance["untrained_loss"]

    def totals(self) -> dict:
        """The whole run so far: training seconds, global examples seen, and which steps ran on how many processes,
        the earlier sessions' and this one's."""
        elapsed = time.perf_counter() - self.started
        this = session(self.dist.world_size, self.first_step, self.step, elapsed)
        return {"seconds": self.before["seconds"] + elapsed, "seen": self.before["seen"] + self.seen,
                "sessions": [*self.before["sessions"], *([this] if self.step > self.first_step else [])]}

    def state_dict(self) -> dict:
        """What a checkpoint's state.json holds of the run (every process calls it: the running loss is summed)."""
        running = {"loss": summed(self.loss_sum, self.dist) / self.dist.world_size, "n": self.loss_count}
        return {"step": self.step, "history": self.history, "chance": self.chance, "batches": self.batches.state_dict(),
                "running": running, "before": self.totals(), "early_stopping": self.early_stopping.state_dict(),
                "best_step": self.early_stopping.best_step, "world_size": self.dist.world_size, "threads": self.threads}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a checkpoint's state.json; this session starts at its step. (Checkpoints written before
        'running', 'before' or 'threads' existed start those afresh.)"""
        self.step, self.history, self.chance = state["step"], state["history"], state["chance"]
        running = state.get("running", {"loss": 0.0, "n": 0})
        self.loss_sum, self.loss_count = torch.tensor(running["loss"], device=self.loss_sum.device), running["n"]
        self.before = {"seconds": 0.0, "seen": 0, "sessions": [], **state.get("before", {})}
        self.batches.load_state_dict(state["batches"])
        self.early_stopping.load_state_dict(state["early_stopping"])
        self.threads = state.get("threads")
        self.start_session()

"""What `fit` keeps in its run folder: metrics.jsonl (one line per evaluation), the checkpoints and the sweet-spot
weights (train/checkpoint.py). Every process resumes from them; rank 0 alone writes."""
from __future__ import annotations

from pathlib import Path

from glassbox.config import TrainConfig
from glassbox.train.checkpoint import Checkpointer
from glassbox.train.parallel import resume_note
from glassbox.train.progress import truncate_metrics
from glassbox.train.state import TrainState


class RunDir:
    def __init__(self, path: str | Path, dist):
        self.path, self.dist = Path(path), dist
        if dist.is_main:
            self.path.mkdir(parents=True, exist_ok=True)
        self.checkpoints = Checkpointer(self.path)
        self.metrics = self.path / "metrics.jsonl" if dist.is_main else None  # None: this process writes none

    def start(self, model, optimizer, state: TrainState, cfg: TrainConfig, total: int) -> None:
        """With --resume and a checkpoint: the model, optimizer, random state and `state` continue from the newest
        intact one, and metrics.jsonl loses what was logged after it. Otherwise metrics.jsonl starts afresh."""
        if cfg.resume and self.checkpoints.latest() is not None:
            state.load_state_dict(self.checkpoints.load(model, optimizer))
            state.best_weights = self.checkpoints.load_best(state.early_stopping.best_step)
            if self.metrics is not None:
                truncate_metrics(self.metrics, state.step)
            if not cfg.quiet and self.dist.is_main:
                done = state.step >= total or state.early_stopping.should_stop
                print(resume_note(state.step, total, done, state.before["sessions"], self.dist.world_size), flush=True)
        elif self.metrics is not None and self.metrics.exists():
            self.metrics.unlink()

    def save(self, model, optimizer, state: TrainState, cfg: TrainConfig) -> None:
        """A checkpoint of this step (every process calls it: the running loss is summed over them)."""
        payload = state.state_dict()
        if self.dist.is_main:
            self.checkpoints.save(state.step, model, optimizer, {**payload, "config": cfg.to_dict()})

    def save_best(self, weights: dict, step: int) -> None:
        """The sweet-spot weights, as soon as an evaluation finds them."""
        if self.dist.is_main:
            self.checkpoints.save_best(weights, step)

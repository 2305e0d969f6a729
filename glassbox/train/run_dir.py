"""What `fit` keeps in its run folder: metrics.jsonl (one line per evaluation), the checkpoints and the sweet-spot
weights (train/checkpoint.py). Every process resumes from them; rank 0 alone writes."""
from __future__ import annotations

from pathlib import Path

from glassbox.config import TrainConfig
from glassbox.errors import FromRank0, UserError
from glassbox.runtime import distributed
from glassbox.train.checkpoint import Checkpointer, Damaged
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
        if dist.enabled:
            distributed.note_run_folder(self.path)  # named in the line of a process that a failure stops

    def start(self, model, optimizer, state: TrainState, cfg: TrainConfig, total: int) -> None:
        """With --resume and a checkpoint: the model, optimizer, random state and `state` continue from the newest
        intact one, and metrics.jsonl loses what was logged after it. Otherwise metrics.jsonl starts afresh."""
        resumed = self.resume(model, optimizer) if cfg.resume else None
        if resumed is not None:
            state.load_state_dict(resumed)
            state.best_weights = self.checkpoints.load_best(state.early_stopping.best_step)
            if self.metrics is not None:
                truncate_metrics(self.metrics, state.step)
            if not cfg.quiet and self.dist.is_main:
                done = state.step >= total or state.early_stopping.should_stop
                print(resume_note(state.step, total, done, state.before["sessions"], self.dist.world_size), flush=True)
        elif self.metrics is not None and self.metrics.exists():
            self.metrics.unlink()

    def resume(self, model, optimizer) -> dict | None:
        """The state of the checkpoint every process continues from (None: no checkpoint was ever completed, the run
        starts from step 0). Rank 0 chooses, the newest intact one as it sees the folder, and sends its step; every
        other process restores that very checkpoint, never one it would have chosen itself (a network file system may
        show it an older listing). A checkpoint one process cannot read stops every process alike, in one line each
        from rank 0 and from the process that cannot read it."""
        nothing, refused = -1, -2
        chosen, loaded, refusal = nothing, None, None
        if self.dist.is_main and self.checkpoints.latest() is not None:
            try:
                loaded = self.checkpoints.load(model, optimizer)
                chosen = loaded["step"]
            except UserError as e:
                chosen, refusal = refused, e
        chosen = int(distributed.from_rank0_numbers([chosen])[0])
        if chosen == refused:
            raise refusal or FromRank0(f"cannot resume {self.path}: rank 0 found no checkpoint to resume from")
        if chosen == nothing:
            return None
        folder, failure = f"step-{chosen:07d}", None
        if not self.dist.is_main:
            try:
                loaded = self.checkpoints.load(model, optimizer, only=folder)
            except Damaged as e:
                failure = e
        failed = distributed.ranks_where(failure is not None)
        if failed:
            ranks = ", ".join(map(str, failed))
            raise UserError(f"cannot resume {self.path}: {self.checkpoints.dir / folder}, the newest intact checkpoint "
                            f"rank 0 found, cannot be read by rank {ranks}"
                            + (f" ({failure})" if failure else ", whose own line says why")
                            + "; every process must see the same run folder (on a network file system, wait until "
                              "it is in step everywhere), then --resume again")
        return loaded

    def save(self, model, optimizer, state: TrainState, cfg: TrainConfig) -> None:
        """A checkpoint of this step (every process calls it: the running loss is summed over them). The others wait
        while rank 0 writes, in the group meant for long waits (runtime/distributed.py), not in the next step's."""
        payload = state.state_dict()
        if self.dist.is_main:
            self.checkpoints.save(state.step, model, optimizer, {**payload, "config": cfg.to_dict()})
        distributed.barrier()

    def save_best(self, weights: dict, step: int) -> None:
        """The sweet-spot weights, as soon as an evaluation finds them."""
        if self.dist.is_main:
            self.checkpoints.save_best(weights, step)

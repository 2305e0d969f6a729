"""TrainState: a checkpoint's state.json is its state_dict, and a fit resumed from one ends as if never stopped."""
import json

import pytest
import torch
import torch.nn as nn
from sklearn.datasets import load_digits

import glassbox
from glassbox.runtime.distributed import Dist
from glassbox.train.batches import TensorBatches
from glassbox.train.early_stopping import EarlyStopping
from glassbox.train.state import TrainState


def digits_tensors():
    d = load_digits()
    return torch.tensor(d.data, dtype=torch.float32) / 16, torch.tensor(d.target)


def fresh_state(x, y) -> TrainState:
    return TrainState(TensorBatches(x, y, 32, seed=3), EarlyStopping(patience=2), torch.device("cpu"), Dist())


def test_train_state_round_trips_through_state_dict():
    x, y = digits_tensors()
    a = fresh_state(x, y)
    a.chance = {"loss": 2.302585, "untrained_loss": 2.31}
    a.history = [{"step": 0, "val_loss": 2.31}]
    for _ in range(60):  # past the first epoch (56 batches of 32), mid-way through the second
        a.batches.next()
    a.step, a.threads = 60, 1
    a.history.append({"step": 60, "val_loss": 1.5})
    a.early_stopping.update(60, 1.5, 1.7)
    a.count(torch.tensor(1.25), 32)
    a.count(torch.tensor(0.5), 32)
    saved = json.loads(json.dumps(a.state_dict()))  # as state.json holds it

    b = fresh_state(x, y)
    b.load_state_dict(saved)
    assert (b.step, b.history, b.chance, b.threads, b.loss_count) == (60, a.history, a.chance, 1, 2)
    assert b.loss_sum.item() == 1.75 and b.train_loss() == a.train_loss() == 0.875
    assert b.early_stopping.state_dict() == a.early_stopping.state_dict() and b.best_record()["val_loss"] == 1.5
    assert b.before["seen"] == 64 and [(s["from_step"], s["to_step"]) for s in b.before["sessions"]] == [(0, 60)]
    again = json.loads(json.dumps(b.state_dict()))
    assert again.pop("before")["seconds"] == pytest.approx(saved.pop("before")["seconds"], abs=1.0)
    assert again == saved
    assert all(torch.equal(p, q) for p, q in zip(a.batches.next(), b.batches.next()))  # the same next batch

    # a checkpoint written before 'running', 'before' and 'threads' were kept still resumes
    old = {k: v for k, v in saved.items() if k not in ("running", "before", "threads")}
    c = fresh_state(x, y)
    c.load_state_dict(old)
    assert (c.step, c.loss_count, c.loss_sum.item(), c.threads, c.before["seen"]) == (60, 0, 0.0, None, 0)


class CrashAt(TensorBatches):
    """Batches that stop the run at the `at`-th draw, as a killed process would."""

    def __init__(self, x, y, batch_size, seed, at):
        super().__init__(x, y, batch_size, seed)
        self.at, self.drawn = at, 0

    def next(self):
        self.drawn += 1
        if self.drawn == self.at:
            raise RuntimeError("the process died here")
        return super().next()


def test_a_fit_resumed_after_a_crash_ends_as_the_uninterrupted_one(tmp_path):
    x, y = digits_tensors()
    train, val = (x[:1400], y[:1400]), (x[1400:], y[1400:])
    settings = {"max_steps": 60, "batch_size": 32, "eval_every": 10, "checkpoint_every": 7, "patience": 0, "seed": 5,
                "threads": 1, "quiet": True}

    def run(data, out, **more):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 10))  # dropout: reseeded
        return glassbox.fit(model, data, val, config={**settings, **more}, run_dir=out)

    full = run(train, tmp_path / "full")
    with pytest.raises(RuntimeError, match="died"):
        run(CrashAt(*train, 32, 5, at=47), tmp_path / "crashed")  # 46 steps done, the last checkpoint at step 42
    assert json.loads((tmp_path / "crashed" / "checkpoints" / "latest.json").read_text())["step"] == 42
    resumed = run(train, tmp_path / "crashed", resume=True)

    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    strip = lambda records: [{k: v for k, v in r.items() if k != "examples_per_s"} for r in records]  # noqa: E731
    assert strip(resumed.history) == strip(full.history)
    logged = [(tmp_path / r / "metrics.jsonl").read_text().splitlines() for r in ("full", "crashed")]
    assert strip(map(json.loads, logged[1])) == strip(map(json.loads, logged[0]))
    assert (resumed.steps, resumed.best_step, resumed.examples_seen) == (full.steps, full.best_step, 60 * 32)
    assert [(s["from_step"], s["to_step"]) for s in resumed.sessions] == [(0, 42), (42, 60)]

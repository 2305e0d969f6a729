"""The learning-rate schedule (linear warm-up, then cosine decay to min_lr), as lr_at computes it and as a
real glassbox.fit run logs it; gradient clipping bounding the update; label smoothing as torch defines it."""
import copy
import json
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

import glassbox
from glassbox.train.schedule import lr_at

LR, WARMUP, TOTAL, MIN_LR = 0.1, 10, 110, 0.01


def test_warm_up_rises_linearly_to_the_peak():
    assert lr_at(0, LR, WARMUP, TOTAL, MIN_LR) == pytest.approx(LR / WARMUP)  # the first update already moves
    rise = [lr_at(s, LR, WARMUP, TOTAL, MIN_LR) for s in range(WARMUP)]
    assert rise == pytest.approx([LR * (s + 1) / WARMUP for s in range(WARMUP)])
    assert rise[-1] == pytest.approx(LR)                               # the last warm-up step reaches the peak
    assert lr_at(WARMUP, LR, WARMUP, TOTAL, MIN_LR) == pytest.approx(LR)  # and decay starts from it
    assert lr_at(0, LR, 0, TOTAL, MIN_LR) == pytest.approx(LR)         # no warm-up: the peak from the start


def test_cosine_decay_falls_monotonically_to_min_lr():
    decay = [lr_at(s, LR, WARMUP, TOTAL, MIN_LR) for s in range(WARMUP, TOTAL + 1)]
    assert all(a > b for a, b in zip(decay, decay[1:]))                # strictly falling
    assert min(decay) == pytest.approx(MIN_LR) and decay[-1] == pytest.approx(MIN_LR)
    middle = WARMUP + (TOTAL - WARMUP) // 2                            # half-way: half-way between the two
    assert lr_at(middle, LR, WARMUP, TOTAL, MIN_LR) == pytest.approx((LR + MIN_LR) / 2)
    quarter = WARMUP + (TOTAL - WARMUP) // 4                           # cos(pi / 4): 85.4% of the way down from lr
    assert lr_at(quarter, LR, WARMUP, TOTAL, MIN_LR) == pytest.approx(MIN_LR + (LR - MIN_LR) * (1 + math.sqrt(0.5)) / 2)
    assert lr_at(TOTAL - 1, LR, WARMUP, TOTAL, MIN_LR) > MIN_LR        # the last update is still above the floor
    assert lr_at(TOTAL + 50, LR, WARMUP, TOTAL, MIN_LR) == MIN_LR      # past the end: the floor


def digits():
    d = load_digits()
    return torch.tensor(d.data, dtype=torch.float32), torch.tensor(d.target)


def logged(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("settings, warmup, min_lr", [({}, 250 // 50, 0.05 / 10),             # the defaults
                                                      ({"warmup_steps": 20, "min_lr": 0.0}, 20, 0.0)])
def test_a_real_run_logs_the_schedule_it_trained_with(tmp_path, settings, warmup, min_lr):
    x, y = digits()
    torch.manual_seed(0)
    config = {"max_steps": 250, "lr": 0.05, "eval_every": 1, "checkpoint_every": 250, "patience": 0, "batch_size": 64,
              "quiet": True, **settings}
    result = glassbox.fit(nn.Linear(64, 10), (x[:1400] / 16, y[:1400]), (x[1400:] / 16, y[1400:]), config=config,
                          run_dir=tmp_path)
    rows = logged(tmp_path)
    assert [r["step"] for r in rows] == list(range(251)) and rows[0]["lr"] == 0.0  # step 0: the untrained model
    # each evaluation logs the learning rate of the update that led to it
    assert [r["lr"] for r in rows[1:]] == pytest.approx([lr_at(s, 0.05, warmup, 250, min_lr) for s in range(250)],
                                                        rel=1e-12)
    assert max(r["lr"] for r in rows) == pytest.approx(0.05) and rows[warmup]["lr"] == pytest.approx(0.05)
    assert rows[1]["lr"] == pytest.approx(0.05 / warmup)
    assert min_lr < rows[-1]["lr"] < min_lr + 1e-4 * 0.05               # the last update is at the floor, nearly
    assert result.best_val_accuracy > 0.85                             # and the run learned


def sgd_step(model, x, y, clip: float, tmp_path) -> tuple[torch.Tensor, dict]:
    """One full-batch plain SGD update at lr 1 through glassbox.fit: the change of every weight, and its log."""
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    result = glassbox.fit(model, (x, y), (x[:100], y[:100]), run_dir=tmp_path,
                          config={"max_steps": 1, "batch_size": len(y), "optimizer": "sgd", "momentum": 0.0, "lr": 1.0,
                                  "weight_decay": 0.0, "grad_clip": clip, "quiet": True})
    after = torch.cat([p.detach().flatten() for p in result.model.parameters()])
    return after - before, logged(tmp_path)[-1]


def test_gradient_clipping_bounds_the_update(tmp_path):
    x, y = digits()  # raw pixel values 0-16: the untrained model's gradient norm is far above 1
    torch.manual_seed(0)
    model = nn.Linear(64, 10)
    reference = copy.deepcopy(model)
    F.cross_entropy(reference(x), y).backward()
    grad = torch.cat([p.grad.flatten() for p in reference.parameters()])
    norm = grad.norm().item()
    assert norm > 20
    clipped, log = sgd_step(copy.deepcopy(model), x, y, 0.5, tmp_path / "clipped")
    assert log["grad_norm"] == pytest.approx(norm, rel=1e-4)           # the log shows the norm before clipping
    assert clipped.norm().item() == pytest.approx(0.5, rel=1e-4)       # lr 1 x the clipped norm
    assert torch.allclose(clipped, -grad * 0.5 / norm, atol=1e-5)      # the same direction, shortened
    free, _ = sgd_step(copy.deepcopy(model), x, y, 0.0, tmp_path / "free")  # 0 disables clipping
    assert free.norm().item() == pytest.approx(norm, rel=1e-4)
    loose, _ = sgd_step(copy.deepcopy(model), x, y, 10 * norm, tmp_path / "loose")  # a bound above the norm: no change
    assert torch.allclose(loose, free, atol=1e-6)


def test_label_smoothing_is_torchs_and_caps_the_confidence(tmp_path):
    x, y = digits()
    x, xv, yv = x[:1400] / 16, x[1400:] / 16, y[1400:]
    torch.manual_seed(0)
    result = glassbox.fit(nn.Linear(64, 10), (x, y[:1400]), (xv, yv), run_dir=tmp_path,
                          config={"max_steps": 100, "lr": 0.05, "label_smoothing": 0.1, "quiet": True})
    best = next(r for r in logged(tmp_path) if r["step"] == result.best_step)
    with torch.no_grad():
        logits = result.model(xv)
    smoothed = F.cross_entropy(logits, yv, label_smoothing=0.1).item()
    # training lowers torch's smoothed loss, but the loss reported is plain cross-entropy: what the summary, the
    # chance level ln K and calibration mean by a loss
    assert best["val_loss"] == pytest.approx(F.cross_entropy(logits, yv).item(), rel=1e-5)
    logp = F.log_softmax(logits, -1)  # (1 - e) x the usual loss + e x the mean over all classes of -log p
    assert smoothed == pytest.approx((0.9 * F.nll_loss(logp, yv) - 0.1 * logp.mean(-1).mean()).item(), rel=1e-5)
    assert smoothed - best["val_loss"] > 0.1                           # and not the smoothed one
    # Smoothing e over K classes is minimised where the right class gets p = 1 - e + e / K. With one-hot inputs a
    # linear model can reach that for every example, and training stops there; plain cross-entropy pushes on to 1.
    k = 3
    inputs, labels = torch.eye(k).repeat(40, 1), torch.arange(k).repeat(40)
    confidence = {}
    for eps in (0.0, 0.2):
        torch.manual_seed(0)
        fitted = glassbox.fit(nn.Linear(k, k), (inputs, labels), (inputs[:k], labels[:k]),
                              config={"max_steps": 400, "batch_size": 40, "lr": 0.1, "weight_decay": 0.0,
                                      "label_smoothing": eps, "patience": 0, "quiet": True},
                              restore_best=False).model  # where training ends (the sweet spot is chosen by plain loss)
        with torch.no_grad():
            confidence[eps] = torch.softmax(fitted(torch.eye(k)), -1).diagonal()
    assert torch.allclose(confidence[0.2], torch.full((k,), 1 - 0.2 + 0.2 / k), atol=0.005), confidence[0.2]
    assert (confidence[0.0] > 0.99).all(), confidence[0.0]

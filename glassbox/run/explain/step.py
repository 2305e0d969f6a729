"""One real training step, taken apart: the loss of each example, the gradient of every layer (and, for three
named weights, the slope measured by finite differences next to backprop's), the optimizer's actual update, and
the loss before and after. `glassbox explain` (explain.py) narrates what these return.

Everything is computed in float64 on the real tensors, so a finite difference (loss at w+h minus loss at w-h,
over 2h) matches backprop's gradient to about 1e-8: the rounding of float32 would blur it at 1e-4."""
from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F

from glassbox.config import TrainConfig
from glassbox.train.loop import evaluate, make_optimizer
from glassbox.train.schedule import lr_at

DROPOUT_SEED = 1234   # every forward of the explained step draws the same dropout mask, so the loss is one function
FD_STEP = 1e-5        # h of the central difference: float64 rounding (~1e-16 / h) and curvature (~h^2) both tiny
CONFIDENT = 0.9       # "confidently wrong": the wrong answer got at least this probability


def per_example_loss(model, x: torch.Tensor, y: torch.Tensor, smoothing: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and each example's cross-entropy (a language model's: the mean over its window's tokens; with the
    run's label smoothing, as the loop computes it), from one forward in training mode with the step's fixed
    dropout mask. Their mean is the loss the loop minimises."""
    torch.manual_seed(DROPOUT_SEED)
    logits = model(x)
    rows = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="none",
                           label_smoothing=smoothing)
    return logits, rows.view(len(y), -1).mean(dim=1)


@contextlib.contextmanager
def buffers_kept(model):
    """Forwards in training mode update batch-norm running statistics; the finite differences must not."""
    saved = {name: b.detach().clone() for name, b in model.named_buffers()}
    try:
        yield
    finally:
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(saved[name])


def predictions(logits: torch.Tensor, y: torch.Tensor, per_example: torch.Tensor) -> dict:
    """What the model answered for each example (a language model: for each window's last token) and how sure it
    was, with how often it was wrong with at least CONFIDENT probability over every prediction in the batch."""
    probs = logits.detach().reshape(-1, logits.size(-1)).softmax(-1)
    target = y.reshape(-1)
    top_p, top = probs.max(-1)
    last = torch.arange(len(y)) * (probs.shape[0] // len(y)) + (probs.shape[0] // len(y) - 1)
    wrong = top != target
    return {"predicted": top[last].tolist(), "confidence": top_p[last].tolist(),
            "p_true": probs[last, target[last]].tolist(), "loss": per_example.detach().tolist(),
            "n_predictions": int(len(target)), "mean_confidence": float(top_p.mean()),
            "confidently_wrong": int((wrong & (top_p >= CONFIDENT)).sum()), "wrong": int(wrong.sum()),
            "n_classes": int(probs.shape[1]), "uniform_loss": math.log(probs.shape[1])}


def named_weights(model) -> list[tuple[str, tuple]]:
    """Three weights to follow: in the first, the middle and the last weight matrix, the entry with the largest
    gradient (a weight whose gradient is zero would show nothing)."""
    mats = [(n, p) for n, p in model.named_parameters() if p.dim() >= 2 and p.grad is not None]
    picks = [mats[0], mats[len(mats) // 2], mats[-1]] if len(mats) >= 3 else mats
    out = []
    for name, p in picks:
        flat = int(p.grad.abs().argmax())
        out.append((name, tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), p.shape))))
    return out


def finite_difference(model, x, y, name: str, index: tuple, smoothing: float, h: float = FD_STEP) -> float:
    """(loss(w + h) - loss(w - h)) / 2h for one weight, every other weight held still."""
    p = dict(model.named_parameters())[name]
    with torch.no_grad(), buffers_kept(model):
        w = p[index].item()
        p[index] = w + h
        up = per_example_loss(model, x, y, smoothing)[1].mean().item()
        p[index] = w - h
        down = per_example_loss(model, x, y, smoothing)[1].mean().item()
        p[index] = w
    return (up - down) / (2 * h)


def gradient_check(model, x, y, picks, smoothing: float) -> list[dict]:
    params = dict(model.named_parameters())
    rows = []
    for name, index in picks:
        grad = params[name].grad[index].item()
        fd, h = finite_difference(model, x, y, name, index, smoothing), FD_STEP
        if abs(fd - grad) > 1e-4 * max(abs(grad), abs(fd), 1e-12):
            # a ReLU or a max-pool switched inside w ± h: the loss bends there, so the slope is taken closer in
            h = FD_STEP / 100
            fd = finite_difference(model, x, y, name, index, smoothing, h)
        rows.append({"weight": f"{name}[{', '.join(map(str, index))}]", "value": params[name][index].item(),
                     "backprop": grad, "finite_difference": fd, "h": h,
                     "relative_error": abs(fd - grad) / max(abs(grad), abs(fd), 1e-12)})
    return rows


def layer_gradients(model) -> list[dict]:
    """Per parameter tensor: gradient norm, weight norm, how many weights got a gradient of exactly zero."""
    return [{"layer": n, "weights": p.numel(), "grad_norm": float(p.grad.norm()) if p.grad is not None else 0.0,
             "weight_norm": float(p.detach().norm()),
             "zero_grads": int((p.grad == 0).sum()) if p.grad is not None else p.numel()}
            for n, p in model.named_parameters() if p.requires_grad]


class ExplainedSteps:
    """The run's optimizer and schedule on one batch, one step at a time, each step measured."""

    def __init__(self, model, batch, val, cfg: TrainConfig, plan: dict):
        self.model, self.batch, self.val, self.cfg, self.plan = model, batch, val, cfg, plan
        self.optimizer = make_optimizer(model, cfg)
        self.step = 0

    def losses(self) -> dict:
        """Loss (and accuracy) on the batch and on validation, in evaluation mode (no dropout, running BN stats)."""
        batch_loss, batch_acc = evaluate(self.model, self.batch, batch_size=256)
        val_loss, val_acc = evaluate(self.model, self.val, batch_size=256)
        return {"batch_loss": batch_loss, "batch_accuracy": batch_acc, "val_loss": val_loss, "val_accuracy": val_acc}

    def take(self, picks=None) -> dict:
        """One update: forward, per-example loss, backward, gradient check, clip, optimizer step, measured."""
        model, (x, y), cfg = self.model, self.batch, self.cfg
        lr = lr_at(self.step, cfg.lr, self.plan["warmup_steps"], self.plan["steps"], self.plan["min_lr"])
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        model.train()
        logits, per_example = per_example_loss(model, x, y, cfg.label_smoothing)
        loss = per_example.mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        picks = picks or named_weights(model)
        check = gradient_check(model, x, y, picks, cfg.label_smoothing)
        layers = layer_gradients(model)
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(),
                                                         cfg.grad_clip if cfg.grad_clip > 0 else float("inf")))
        self.optimizer.step()
        self.step += 1
        params = dict(model.named_parameters())
        for row, (name, index) in zip(check, picks):
            row["after"] = params[name][index].item()
            row["update"] = row["after"] - row["value"]
        for row in layers:  # weight matrices only: a bias or norm scale starting at 0 has no size to compare with
            delta = params[row["layer"]].detach() - before[row["layer"]]
            sized = params[row["layer"]].dim() >= 2 and row["weight_norm"] > 0
            row["update_ratio"] = float(delta.norm()) / row["weight_norm"] if sized else None
        return {"step": self.step, "lr": lr, "loss": loss.item(), "logits": logits.detach(), "per_example": per_example,
                "grad_norm": grad_norm, "clipped": cfg.grad_clip > 0 and grad_norm > cfg.grad_clip,
                "weights": check, "picks": picks, "layers": layers}

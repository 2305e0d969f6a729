"""The training loop. Read `fit` top to bottom: it is the whole story.

    1. take a batch   2. predict   3. measure the error (loss)
    4. compute gradients   5. nudge every weight   6. repeat, evaluating on data never trained on
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from glassbox.config import TrainConfig, schedule
from glassbox.runtime import distributed
from glassbox.runtime.device import pick_device
from glassbox.runtime.threads import cpu_threads
from glassbox.train.batches import LoaderBatches, TensorBatches
from glassbox.train.early_stopping import EarlyStopping, explain
from glassbox.train.evaluation_plan import eval_rows
from glassbox.train.parallel import rank0_figures, step_check, steps_running, stop_run, sync_on_last
from glassbox.train.progress import Progress
from glassbox.train.run_dir import RunDir
from glassbox.train.schedule import lr_at
from glassbox.train.state import TrainState
from glassbox.train.thread_choice import LoopThreads, loop_threads


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over every prediction: (B, K) with (B,), or (B, T, V) with (B, T)."""
    if logits.dim() == 2:
        return F.cross_entropy(logits, y)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))


@dataclass
class FitResult:
    model: nn.Module            # with the sweet-spot weights restored
    best_step: int              # the step of the lowest validation loss
    best_val_loss: float
    best_val_accuracy: float | None
    steps: int                  # updates actually made
    stopped_early: bool
    stop_reason: str            # early_stop | max_steps | interrupted | diverged
    verdict: str                # what happened, in words
    chance: dict                # chance level and the untrained model's loss
    history: list[dict] = field(default_factory=list)  # one record per evaluation
    train_seconds: float = 0.0
    examples_seen: int = 0
    threads: int = 1            # CPU threads the training steps ran on (train/thread_choice.py)
    thread_choice: dict | None = None  # how that count was chosen, with the timed steps
    world_size: int = 1         # processes this session trained on (torchrun); each took its share of every batch
    sessions: list[dict] = field(default_factory=list)  # which steps ran on how many processes (parallel.session)
    diverged: dict | None = None  # {step, lr, loss, grad_norm, restored, advice} when a loss or gradient went non-finite


@torch.no_grad()
def evaluate(model: nn.Module, data, loss_fn=cross_entropy, batch_size: int = 512, device="cpu") -> tuple[float, float | None]:
    """Mean loss and accuracy over (X, Y) in order, in eval mode (no dropout, BN running stats)."""
    was_training = model.training
    model.eval()
    x_all, y_all = data
    total_loss, correct, count = 0.0, 0, 0
    for i in range(0, len(y_all), batch_size):
        x, y = x_all[i:i + batch_size].to(device), y_all[i:i + batch_size].to(device)
        logits = model(x)
        n = y.numel()
        total_loss += loss_fn(logits, y).item() * n
        if logits.shape[:-1] == y.shape:
            correct += (logits.argmax(-1) == y).sum().item()
        count += n
    model.train(was_training)
    accuracy = correct / count if logits.shape[:-1] == y.shape else None
    return total_loss / count, accuracy


@torch.no_grad()
def predict_logits(model: nn.Module, x_all: torch.Tensor, batch_size: int = 512, device="cpu") -> torch.Tensor:
    """Logits for every row of x_all, in eval mode, on the CPU."""
    was_training = model.training
    model.eval()
    out = [model(x_all[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(x_all), batch_size)]
    model.train(was_training)
    return torch.cat(out)


def chance_level(model: nn.Module, val, loss_fn, batch_size: int, device) -> dict:
    """What knowing nothing costs: a uniform guess over K classes has loss ln K."""
    loss, acc = evaluate(model, val, loss_fn, batch_size, device)
    k = model(val[0][:1].to(device)).shape[-1] if len(val[1]) else 0
    counts = torch.bincount(val[1].reshape(-1).long())
    majority = counts.max().item() / counts.sum().item()
    return {"uniform_loss": math.log(k), "loss": math.log(k), "n_classes": int(k), "majority_accuracy": majority,
            "untrained_loss": loss, "untrained_accuracy": acc,
            "sentence": f"chance level: a uniform guess over {k} classes has loss ln({k}) = {math.log(k):.4f}; always "
                        f"answering the majority class scores {majority:.3f}; the untrained model's loss is "
                        f"{loss:.4f}: random weights know nothing yet."}


BATCH_SOURCE = ("next", "epoch", "state_dict", "load_state_dict")


def as_batches(data, cfg: TrainConfig, dist, augment=None):
    if isinstance(data, (tuple, list)):
        return TensorBatches(data[0], data[1], cfg.batch_size, cfg.seed, augment, dist.rank, dist.world_size)
    if any(hasattr(data, name) for name in ("next", "__next__")):
        missing = [name for name in BATCH_SOURCE if not hasattr(data, name)]
        if missing:
            raise TypeError(f"a batch source needs {', '.join(BATCH_SOURCE)} (see glassbox/train/batches.py); "
                            f"{type(data).__name__} lacks {', '.join(missing)}")
        return data
    if not (hasattr(data, "__len__") and hasattr(data, "__getitem__")):
        raise TypeError(f"train_data must be (X, y) tensors, a map-style Dataset (__len__ and __getitem__) or a batch "
                        f"source ({', '.join(BATCH_SOURCE)}); got {type(data).__name__}")
    return LoaderBatches(data, cfg.batch_size, cfg.seed, dist.rank, dist.world_size)


def as_tensors(data) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(data, (tuple, list)):
        return data[0], data[1]
    xs, ys = zip(*(data[i] for i in range(len(data))))  # a map-style Dataset
    return torch.stack(xs), torch.as_tensor(ys) if not torch.is_tensor(ys[0]) else torch.stack(ys)


def _size(data, default: int) -> int:
    """Number of training examples, for turning epochs into steps."""
    if isinstance(data, (tuple, list)):
        return len(data[1])
    return len(data) if hasattr(data, "__len__") else default


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Weight decay on matrices only; biases and norm scales are left alone (as in nanoGPT)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        kind, settings = torch.optim.SGD, {"lr": cfg.lr, "momentum": cfg.momentum, "nesterov": cfg.momentum > 0}
    else:
        kind, settings = torch.optim.AdamW, {"lr": cfg.lr, "betas": (0.9, 0.99) if cfg.task == "lm" else (0.9, 0.999)}
    try:  # the fused kernel updates every weight in one pass: 13% faster GPT steps on CPU (docs/benchmarks.md)
        return kind(groups, **settings, fused=True)
    except (RuntimeError, TypeError, ValueError):  # a device or torch without the fused kernel
        return kind(groups, **settings)


def _json_number(x: float):
    """JSON has no NaN or infinity: those are stored as their words, 'nan', 'inf', '-inf'."""
    return x if math.isfinite(x) else str(x)


def divergence(step: int, lr: float, loss: float, grad_norm: float, restored: bool, cfg: TrainConfig,
               inputs: torch.Tensor | None = None) -> dict:
    """What a diverged run records (summary.json) and the one line of advice it ends with. The data's scale is
    worth checking only for numbers as given: not for token ids (text, corpora), nor for the images of a
    `glassbox train` run, whose encoder standardised every channel."""
    numbers = inputs is not None and torch.is_tensor(inputs) and inputs.is_floating_point()
    scale = numbers and cfg.task != "lm" and not (cfg.data is not None and inputs.dim() == 4)
    return {"step": step, "lr": lr, "loss": _json_number(loss), "grad_norm": _json_number(grad_norm), "restored": restored,
            "advice": f"lower --lr (this run used {cfg.lr:g} with {cfg.optimizer})"
                      + (" or check the data's scale (inputs with very large values)" if scale else "")}


def fit(model: nn.Module, train_data, val_data, loss_fn=None, config: TrainConfig | None = None,
        run_dir: str | Path | None = None, augment=None, n_train: int | None = None, restore_best: bool = True,
        chance_fn=chance_level) -> FitResult:
    """Train any nn.Module whose forward maps a batch of inputs to logits.

    train_data: (X, y) tensors, a torch Dataset, or a batch source (see train/batches.py).
    val_data:   (X, y) tensors or a Dataset, never trained on; it picks the sweet spot.
    run_dir:    where checkpoints and metrics.jsonl go (None: nothing is written).
    chance_fn:  (model, val, loss_fn, batch_size, device) -> what knowing nothing scores, with its "loss" and
                "sentence" (a regression: predicting the training mean, run/train/regression.py)."""
    cfg = config or TrainConfig()
    loss_fn, objective = losses(loss_fn, cfg)
    device = pick_device(cfg.device)
    dist = distributed.setup(device)
    torch.manual_seed(cfg.seed)
    model.to(device)
    train = as_batches(train_data, cfg, dist, augment)
    val = validation_tensors(val_data)
    plan = schedule(cfg, n_train or _size(train_data, cfg.batch_size), len(val[1]))  # config.py: DERIVED
    total, warmup, min_lr = plan["steps"], plan["warmup_steps"], plan["min_lr"]
    note_long_warmup(cfg, warmup, total)
    optimizer = make_optimizer(model, cfg)
    state = TrainState(train, EarlyStopping(cfg.patience, cfg.min_delta), device, dist)
    run = RunDir(run_dir, dist) if run_dir else None
    if run is not None:  # resumes with --resume and a checkpoint
        run.start(model, optimizer, state, cfg, total)
    forward = training_forward(model, cfg, dist)
    progress = Progress(total, quiet=cfg.quiet or not dist.is_main, metrics_path=run.metrics if run else None,
                        start_step=state.step, tensorboard=cfg.tensorboard)
    validation = Validation(val, loss_fn, eval_rows(cfg.batch_size, val[0]), device)
    if state.chance is None:  # before the first update: what do random weights know?
        untrained_evaluation(model, validation, chance_fn, state, progress)
    state.early_stopping.must_beat = state.chance["untrained_loss"]  # no early stop before the model beats its random start

    model.train()
    threads = loop_threads(model, val, cfg.batch_size // dist.world_size, lambda m: make_optimizer(m, cfg), cfg.threads,
                           state.threads, validation.rows, device, progress.say)
    state.threads, validation.threads = threads.training, threads.evaluation
    reason, diverged = "max_steps", None  # diverged: divergence(...) of the first non-finite loss or gradient norm
    state.start_session()
    with cpu_threads(threads.training), steps_running():  # a stop asked for now waits for the end of the step
        try:
            while state.step < total and not state.early_stopping.should_stop:  # (a resumed run may have stopped early already)
                # each rank's random draws follow from the seed, its rank and the examples seen: exact on any resume
                distributed.reseed(cfg.seed, dist.rank, state.step * cfg.batch_size * cfg.grad_accum, device)
                lr = set_lr(optimizer, lr_at(state.step, cfg.lr, warmup, total, min_lr))
                step_loss = None  # this update's loss summed over its micro-batches, for the divergence check
                for micro in range(cfg.grad_accum):
                    x, y = on_device(train.next(), device)           # 1. take a batch
                    with sync_on_last(forward, dist, micro, cfg.grad_accum):
                        logits = forward(x)                          # 2. predict
                        loss = loss_fn(logits, y)                    # 3. measure the error
                        learn = loss if objective is None else objective(logits, y)
                        (learn / cfg.grad_accum).backward()          # 4. compute gradients
                    state.count(loss, len(y))
                    step_loss = loss.detach() if step_loss is None else step_loss + loss.detach()
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
                finite, stop = step_check(step_loss, grad_norm, dist)  # a stop asked of any rank: all finish this step
                if not finite:                                       # diverged: stop now, before the update spreads it
                    diverged = diverged_at(state.step + 1, lr, step_loss.item() / cfg.grad_accum, grad_norm, state, cfg, val)
                    break
                optimizer.step()                                     # 5. nudge every weight
                optimizer.zero_grad(set_to_none=True)
                state.step += 1                                      # 6. repeat
                progress.step(state.step)

                if state.step % plan["eval_every"] == 0 or state.step == total:
                    diverged = evaluate_and_keep_best(model, validation, state, lr, grad_norm, run, progress, cfg)
                    if diverged is not None:
                        break
                if run is not None and (state.step % plan["checkpoint_every"] == 0 or state.step == total or stop):
                    run.save(model, optimizer, state, cfg)
                if stop:
                    reason = "stopped"
                    break
            if state.early_stopping.should_stop:
                reason = "early_stop"
            if diverged is not None:
                reason = "diverged"
        except KeyboardInterrupt:
            reason = "interrupted"
            progress.say("interrupted: stopping and restoring the best weights seen so far")
    progress.close()
    if reason == "stopped":  # every rank stops here alike, the checkpoint of this step written
        raise stop_run(stop, state.step, total, state.early_stopping.best_step, run.path if run else None, dist)
    return fit_result(model, state, reason, diverged, threads, dist, restore_best, progress)


# The pieces `fit` calls, in the order it calls them.

def losses(loss_fn, cfg: TrainConfig) -> tuple:
    """(the loss reported, the loss the weights learn from; None: the same one). With label smoothing the weights
    learn from softened targets, but every loss reported (train, validation, the chance level ln K, the sweet spot)
    is plain cross-entropy, the one the summary and report use."""
    if loss_fn is not None:
        return loss_fn, None
    if not cfg.label_smoothing:
        return cross_entropy, None
    return cross_entropy, lambda logits, y: F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1),
                                                            label_smoothing=cfg.label_smoothing)


def validation_tensors(val_data) -> tuple[torch.Tensor, torch.Tensor]:
    val = as_tensors(val_data)
    if len(val[1]) == 0:
        raise ValueError("fit needs at least one validation example: validation data picks the sweet spot and "
                         "is never trained on")
    return val


def note_long_warmup(cfg: TrainConfig, warmup: int, total: int) -> None:
    """Warm-up as long as the run is allowed (speed checks do it), but said."""
    if warmup >= total > 1 and not cfg.quiet and distributed.current().is_main:
        print(f"note: --warmup-steps {warmup} is not below the run's {total} steps: the learning rate never reaches "
              f"--lr ({cfg.lr:g}); use fewer warm-up steps for a full run (default 2% of the steps)", flush=True)


def training_forward(model: nn.Module, cfg: TrainConfig, dist) -> nn.Module:
    """What the training steps call: `model` wrapped by DDP under torchrun (which averages the gradients over the
    processes), compiled with --compile. Evaluations and the saved weights use `model` itself."""
    forward = torch.nn.parallel.DistributedDataParallel(model) if dist.enabled else model
    return torch.compile(forward) if cfg.compile else forward


@dataclass
class Validation:
    """How the loop evaluates: on which tensors, with which loss, how many rows at a time, on how many threads."""
    data: tuple[torch.Tensor, torch.Tensor]
    loss_fn: Callable
    rows: int                  # validation rows per forward pass (train/evaluation_plan.py)
    device: torch.device
    threads: int | None = None  # CPU threads, set once training's count is chosen

    def __call__(self, model: nn.Module) -> tuple[float, float | None]:
        """Validation loss and accuracy: under torchrun rank 0's, on every rank, so that each decision read from
        them (the sweet spot, early stopping, a non-finite loss) is the same everywhere."""
        with cpu_threads(self.threads):
            return rank0_figures(*evaluate(model, self.data, self.loss_fn, self.rows, self.device))


def untrained_evaluation(model: nn.Module, validation: Validation, chance_fn, state: TrainState,
                         progress: Progress) -> None:
    """The chance level and the untrained model's loss: the run's first evaluation (step 0)."""
    chance = state.chance = chance_fn(model, validation.data, validation.loss_fn, validation.rows, validation.device)
    chance["untrained_loss"], chance["untrained_accuracy"] = rank0_figures(chance["untrained_loss"],
                                                                         chance["untrained_accuracy"])
    record = {"step": 0, "epoch": 0, "train_loss": None, "val_loss": chance["untrained_loss"],
              "val_accuracy": chance["untrained_accuracy"], "lr": 0.0, "grad_norm": None, "examples_per_s": None,
              "chance_loss": chance["loss"]}  # ln K, for whoever watches metrics.jsonl as it grows
    state.history.append(record)
    progress.evaluation(record)
    progress.say(chance["sentence"])


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> float:
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr


def on_device(batch: tuple, device: torch.device) -> tuple:
    """A batch on the training device; from pinned memory a copy to a GPU runs alongside the GPU's work."""
    if device.type == "cpu":
        return batch
    return tuple(t.pin_memory().to(device, non_blocking=True) if t.device.type == "cpu" else t.to(device)
                 for t in batch)


def diverged_at(step: int, lr: float, loss: float, grad_norm: torch.Tensor, state: TrainState, cfg: TrainConfig,
                val: tuple) -> dict:
    """`divergence` at the step whose loss or gradient norm went non-finite; the best weights are restored only if
    an evaluation before it beat the untrained model."""
    return divergence(step, lr, loss, float(grad_norm), state.beat_untrained(), cfg, val[0])


def evaluate_and_keep_best(model: nn.Module, validation: Validation, state: TrainState, lr: float,
                           grad_norm: torch.Tensor, run: RunDir | None, progress: Progress,
                           cfg: TrainConfig) -> dict | None:
    """Score the validation data, log the evaluation, and keep the weights when they are the best yet. A
    non-finite validation loss logs nothing and returns where training diverged."""
    val_loss, val_acc = validation(model)
    train_loss = state.train_loss()  # over the global batch
    if not math.isfinite(val_loss):  # rank 0's figure on every rank (Validation): all stop here alike
        return diverged_at(state.step, lr, val_loss, grad_norm, state, cfg, validation.data)
    record = {"step": state.step, "epoch": state.batches.epoch, "train_loss": train_loss, "val_loss": val_loss,
              "val_accuracy": val_acc, "lr": lr, "grad_norm": float(grad_norm), "examples_per_s": state.evaluated()}
    record["best"] = state.early_stopping.update(state.step, val_loss, train_loss)
    if record["best"]:
        state.best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if run is not None:
            run.save_best(state.best_weights, state.step)
    state.history.append(record)
    progress.evaluation(record)
    return None


def fit_result(model: nn.Module, state: TrainState, reason: str, diverged: dict | None, threads: LoopThreads, dist,
               restore_best: bool, progress: Progress) -> FitResult:
    """The end of training: the sweet-spot weights back in `model`, the verdict said, and the whole run's figures
    (every session of a resumed run)."""
    totals = state.totals()
    if state.best_weights is not None and restore_best:  # back to the sweet spot
        model.load_state_dict(state.best_weights)
    best = state.best_record()
    verdict = explain(state.history, best["step"], reason == "early_stop", reason, diverged)
    progress.say(verdict)
    distributed.barrier()  # every rank ends training here
    return FitResult(model=model, best_step=best["step"], best_val_loss=best["val_loss"],
                     best_val_accuracy=best["val_accuracy"], steps=state.step, stopped_early=reason == "early_stop",
                     stop_reason=reason, verdict=verdict, chance=state.chance, history=state.history,
                     train_seconds=totals["seconds"], examples_seen=totals["seen"], threads=threads.training,
                     thread_choice=threads.choice, diverged=diverged, world_size=dist.world_size,
                     sessions=totals["sessions"])

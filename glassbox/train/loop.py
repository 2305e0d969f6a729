"""The training loop. Read `fit` top to bottom: it is the whole story.

    1. take a batch   2. predict   3. measure the error (loss)
    4. compute gradients   5. nudge every weight   6. repeat, evaluating on data never trained on
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.distributed

from glassbox.config import TrainConfig, schedule
from glassbox.runtime import distributed
from glassbox.runtime.device import pick_device
from glassbox.train.batches import LoaderBatches, TensorBatches
from glassbox.train.checkpoint import Checkpointer
from glassbox.runtime.threads import cpu_threads
from glassbox.train.early_stopping import EarlyStopping, explain
from glassbox.train.evaluation_plan import eval_rows, eval_threads
from glassbox.train.parallel import resume_note, session, step_check, stop_run, summed
from glassbox.train.progress import Progress, truncate_metrics
from glassbox.train.schedule import lr_at
from glassbox.train.thread_choice import choose_threads, describe as describe_threads


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
                "sentence" (train/regression.py: predicting the training mean)."""
    cfg = config or TrainConfig()
    # With label smoothing the weights learn from softened targets (`objective`), but every loss reported (train,
    # validation, the chance level ln K, the sweet spot) is plain cross-entropy, the one the summary and report use.
    objective = None
    if loss_fn is None:
        loss_fn = cross_entropy
        if cfg.label_smoothing:
            objective = lambda logits, y: F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1),  # noqa: E731
                                                          label_smoothing=cfg.label_smoothing)
    device = pick_device(cfg.device)
    dist = distributed.setup(device)
    torch.manual_seed(cfg.seed)
    model.to(device)
    train = as_batches(train_data, cfg, dist, augment)
    val = as_tensors(val_data)
    if len(val[1]) == 0:
        raise ValueError("fit needs at least one validation example: validation data picks the sweet spot and "
                         "is never trained on")
    plan = schedule(cfg, n_train or _size(train_data, cfg.batch_size), len(val[1]))  # config.py: DERIVED
    total, warmup, min_lr = plan["steps"], plan["warmup_steps"], plan["min_lr"]
    eval_every, ckpt_every = plan["eval_every"], plan["checkpoint_every"]
    if warmup >= total > 1 and not cfg.quiet and distributed.current().is_main:  # allowed (speed checks do it), but said
        print(f"note: --warmup-steps {warmup} is not below the run's {total} steps: the learning rate never reaches "
              f"--lr ({cfg.lr:g}); use fewer warm-up steps for a full run (default 2% of the steps)", flush=True)
    optimizer = make_optimizer(model, cfg)
    stopper = EarlyStopping(cfg.patience, cfg.min_delta)
    run_dir = Path(run_dir) if run_dir else None
    if run_dir is not None and dist.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    ckpt = Checkpointer(run_dir) if run_dir is not None else None  # every rank resumes from it; rank 0 alone writes
    writes = ckpt is not None and dist.is_main
    metrics = run_dir / "metrics.jsonl" if run_dir is not None and dist.is_main else None
    history: list[dict] = []
    step, best_weights, chance, running = 0, None, None, {"loss": 0.0, "n": 0}
    before = {"seconds": 0.0, "seen": 0, "sessions": []}  # training time, examples and processes of earlier sessions
    resumed_threads = None
    if cfg.resume and ckpt is not None and ckpt.latest() is not None:
        state = ckpt.load(model, optimizer)
        step, history, chance = state["step"], state["history"], state["chance"]
        running = state.get("running", running)  # the training loss summed since the last evaluation
        before = {**before, **state.get("before", {})}
        train.load_state_dict(state["batches"])
        stopper.load_state_dict(state["early_stopping"])
        best_weights = ckpt.load_best(stopper.best_step)
        resumed_threads = state.get("threads")  # the count it started with: the same seed, the same sums
        if metrics is not None:
            truncate_metrics(metrics, step)
        if not cfg.quiet and dist.is_main:
            print(resume_note(step, total, step >= total or stopper.should_stop, before["sessions"], dist.world_size),
                  flush=True)
    elif metrics is not None and metrics.exists():
        metrics.unlink()
    ddp_model = torch.nn.parallel.DistributedDataParallel(model) if dist.enabled else model
    if cfg.compile:  # only the training forward is compiled; evaluation and the saved weights use `model`
        ddp_model = torch.compile(ddp_model)
    progress = Progress(total, quiet=cfg.quiet or not dist.is_main, metrics_path=metrics, start_step=step,
                        tensorboard=cfg.tensorboard)

    if chance is None:  # before the first update: what do random weights know?
        chance = chance_fn(model, val, loss_fn, eval_rows(cfg.batch_size, val[0]), device)
        record = {"step": 0, "epoch": 0, "train_loss": None, "val_loss": chance["untrained_loss"],
                  "val_accuracy": chance["untrained_accuracy"], "lr": 0.0, "grad_norm": None, "examples_per_s": None,
                  "chance_loss": chance["loss"]}  # ln K, for whoever watches metrics.jsonl as it grows
        history.append(record)
        progress.evaluation(record)
        progress.say(chance["sentence"])
    stopper.must_beat = chance["untrained_loss"]  # no early stop before the model beats its random start

    model.train()
    on_gpu, no_sync = device.type != "cpu", contextlib.nullcontext()
    # On a CPU the count of threads is timed on this model's step (train/thread_choice.py); restored after.
    thread_choice = {"threads": torch.get_num_threads(), "how": "a GPU trains", "seconds_per_step": None}
    if not on_gpu:
        thread_choice = choose_threads(model, val, cfg.batch_size // dist.world_size,
                                       lambda m: make_optimizer(m, cfg), cfg.threads, resumed_threads)
        if thread_choice["seconds_per_step"]:
            progress.say(describe_threads(thread_choice))
    threads = thread_choice["threads"]
    rows = eval_rows(cfg.batch_size, val[0])
    at_eval = eval_threads(model, val[0], rows, threads, cfg.threads, on_gpu)  # the same rule on a resume
    threads_before = torch.get_num_threads()
    torch.set_num_threads(threads)
    reason, t0, seen, first_step = "max_steps", time.perf_counter(), 0, step  # seen: global examples, this session
    run_loss, run_n = torch.tensor(running["loss"], device=device), running["n"]
    diverged = None  # (step, lr, loss, grad norm) of the first non-finite loss or gradient norm
    t_last, seen_last = time.perf_counter(), 0
    distributed.steps_running(True)  # a stop asked for now waits for the end of the step
    try:
        while step < total and not stopper.should_stop:  # (a resumed run may have stopped early already)
            # each rank's random draws follow from the seed, its rank and the examples seen: exact on any resume
            distributed.reseed(cfg.seed, dist.rank, step * cfg.batch_size * cfg.grad_accum, device)
            lr = lr_at(step, cfg.lr, warmup, total, min_lr)
            for group in optimizer.param_groups:
                group["lr"] = lr
            step_loss = None  # this update's loss summed over its micro-batches, for the divergence check
            for micro in range(cfg.grad_accum):
                x, y = train.next()                              # 1. take a batch
                if on_gpu:  # from pinned memory the copy runs alongside the GPU's work
                    x, y = (t.pin_memory().to(device, non_blocking=True) if t.device.type == "cpu" else t.to(device)
                            for t in (x, y))
                with ddp_model.no_sync() if dist.enabled and micro < cfg.grad_accum - 1 else no_sync:
                    logits = ddp_model(x)                        # 2. predict
                    loss = loss_fn(logits, y)                    # 3. measure the error
                    learn = loss if objective is None else objective(logits, y)
                    (learn / cfg.grad_accum).backward()          # 4. compute gradients
                run_loss += loss.detach()
                step_loss = loss.detach() if step_loss is None else step_loss + loss.detach()
                run_n += 1
                seen += len(y) * dist.world_size  # every process took an equal share of the global batch
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
            finite, stop = step_check(step_loss, grad_norm, dist)  # a stop asked of any rank: all finish this step
            if not finite:                                       # diverged: stop now, before the update spreads it
                diverged = (step + 1, lr, step_loss.item() / cfg.grad_accum, float(grad_norm))
                break
            optimizer.step()                                     # 5. nudge every weight
            optimizer.zero_grad(set_to_none=True)
            step += 1                                            # 6. repeat
            progress.step(step)

            if step % eval_every == 0 or step == total:
                with cpu_threads(at_eval):
                    val_loss, val_acc = evaluate(model, val, loss_fn, rows, device)
                train_loss = summed(run_loss, dist) / dist.world_size / max(1, run_n)  # over the global batch
                if not math.isfinite(val_loss):  # the same weights and data on every rank: all stop here alike
                    diverged = (step, lr, val_loss, float(grad_norm))
                    break
                now = time.perf_counter()
                record = {"step": step, "epoch": train.epoch, "train_loss": train_loss, "val_loss": val_loss,
                          "val_accuracy": val_acc, "lr": lr, "grad_norm": float(grad_norm),
                          "examples_per_s": (seen - seen_last) / max(now - t_last, 1e-9)}
                record["best"] = stopper.update(step, val_loss, train_loss)
                if record["best"]:
                    best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
                    if writes:
                        ckpt.save_best(best_weights, step)
                history.append(record)
                progress.evaluation(record)
                run_loss, run_n, t_last, seen_last = torch.zeros((), device=device), 0, now, seen
            if ckpt is not None and (step % ckpt_every == 0 or step == total or stop):
                running = {"loss": summed(run_loss, dist) / dist.world_size, "n": run_n}  # every rank takes part
                elapsed = time.perf_counter() - t0
                if writes:
                    ckpt.save(step, model, optimizer, {
                        "history": history, "chance": chance, "batches": train.state_dict(), "running": running,
                        "before": {"seconds": before["seconds"] + elapsed, "seen": before["seen"] + seen,
                                   "sessions": [*before["sessions"], session(dist.world_size, first_step, step, elapsed)]},
                        "early_stopping": stopper.state_dict(), "best_step": stopper.best_step, "world_size": dist.world_size,
                        "config": cfg.to_dict(), "threads": threads})
            if stop:
                reason = "stopped"
                break
            if stopper.should_stop:
                reason = "early_stop"
                break
        if stopper.should_stop:
            reason = "early_stop"
        if diverged is not None:
            reason = "diverged"
    except KeyboardInterrupt:
        reason = "interrupted"
        progress.say("interrupted: stopping and restoring the best weights seen so far")
    finally:
        distributed.steps_running(False)
        torch.set_num_threads(threads_before)
    progress.close()
    if reason == "stopped":  # every rank stops here alike, the checkpoint of this step written
        raise stop_run(stop, step, total, stopper.best_step, run_dir, dist)
    elapsed = time.perf_counter() - t0
    train_seconds = before["seconds"] + elapsed  # across every session of a resumed run
    seen += before["seen"]
    sessions = [*before["sessions"], *([session(dist.world_size, first_step, step, elapsed)] if step > first_step else [])]

    evals = [h for h in history if h["step"] > 0]
    if best_weights is not None and restore_best:               # back to the sweet spot
        model.load_state_dict(best_weights)
    best = next((h for h in evals if h["step"] == stopper.best_step), history[0])
    if diverged is not None:  # weights worth keeping only if an evaluation beat the untrained model's loss
        diverged = divergence(*diverged, best["step"] > 0 and best["val_loss"] < chance["untrained_loss"], cfg, val[0])
    verdict = explain(history, best["step"], reason == "early_stop", reason, diverged)
    progress.say(verdict)
    if dist.enabled:
        torch.distributed.barrier()
    return FitResult(model=model, best_step=best["step"], best_val_loss=best["val_loss"], best_val_accuracy=best["val_accuracy"],
                     steps=step, stopped_early=reason == "early_stop", stop_reason=reason, verdict=verdict, chance=chance,
                     history=history, train_seconds=train_seconds, examples_seen=seen, threads=threads,
                     thread_choice=thread_choice,
                     diverged=diverged, world_size=dist.world_size, sessions=sessions)

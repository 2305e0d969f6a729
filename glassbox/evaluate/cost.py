"""The cost ledger: FLOPs counted on the real model, MFU against this machine's matmul peak (peak.py),
energy and money.

FLOPs come from torch's FlopCounterMode, which counts matrix products (mm, addmm, bmm,
convolutions, attention) at 2 FLOPs per multiply-add and ignores elementwise work
(activations, norms, bias adds, the loss); we add scatter-adds (index_add: the pooling of a
bag-of-n-grams model and the backward of a gather) at one FLOP per element added. For a Linear layer on m rows that is 2*m*k*n
forward; backward adds 2*m*k*n for the weight gradient and another 2*m*k*n for the input
gradient only when the input needs one (the first layer's input usually does not).
"""
from __future__ import annotations

import contextlib
import math

import torch
from torch.utils import flop_counter
from torch.utils.flop_counter import FlopCounterMode

from glassbox.config import TrainConfig


# AdamW's update is elementwise, so FlopCounterMode never sees it; we count it by hand from
# torch's single-tensor AdamW: weight decay p*=(1-lr*wd) 1, m.lerp_(g) 3, v*=b2 then v+=(1-b2)*g*g 4,
# denom = sqrt(v)/bias_correction+eps 3, p += -step*m/denom 3.
ADAMW_FLOPS_PER_PARAM = 14
# SGD with nesterov momentum (torch's single-tensor SGD): buf = m*buf + g 2, g += m*buf 2, p -= lr*g 2;
# plain SGD (momentum 0) is p -= lr*g alone; weight decay adds g += wd*p 2.
SGD_FLOPS_PER_PARAM = 6
PLAIN_SGD_FLOPS_PER_PARAM = 2
DEFAULT_POWER_WATTS = 65.0     # wall power of a small 2-core CPU machine under load; pass your own
GPU_FALLBACK_WATTS = 300.0     # a GPU whose power limit nvidia-smi cannot tell us
DEFAULT_PRICE_PER_KWH = TrainConfig.price_per_kwh  # electricity price per kWh: the setting's default


def _cpu_sdpa_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)


def _cpu_sdpa_backward_flops(grad_out_shape, query_shape, key_shape, value_shape, *args,
                             out_shape=None, **kwargs) -> int:
    return flop_counter.sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


def _scatter_add_flops(self_shape, dim, index_shape, source_shape, *args, out_shape=None, **kwargs) -> int:
    return math.prod(source_shape)  # one addition per element added in


def _counter() -> FlopCounterMode:
    """A FlopCounterMode that also counts CPU attention and scatter-adds.

    On CPU, scaled_dot_product_attention runs aten._scaled_dot_product_flash_attention_for_cpu,
    which torch (up to at least 2.13) leaves out of its registry, so attention counts as 0
    (pytorch/pytorch#195460). We give it the formulas torch uses for the GPU kernels.
    index_add (the sum that pools a fastText bag, and the backward of every gather) is a bag
    model's main work and is not in torch's registry either: one FLOP per element added.
    """
    mapping = {torch.ops.aten.index_add: _scatter_add_flops, torch.ops.aten.index_add_: _scatter_add_flops}
    for name, formula in [("_scaled_dot_product_flash_attention_for_cpu", _cpu_sdpa_flops),
                          ("_scaled_dot_product_flash_attention_for_cpu_backward", _cpu_sdpa_backward_flops)]:
        op = getattr(torch.ops.aten, name, None)
        if op is not None and op not in getattr(flop_counter, "flop_registry", {}):
            mapping[op] = formula
    return FlopCounterMode(display=False, custom_mapping=mapping)


def count_train_step_flops(model: torch.nn.Module, x, y, loss_fn) -> int:
    """FLOPs of one training step's forward and backward on batch (x, y): loss_fn(model(x), y).

    The optimizer step is not included: add optimizer_step_flops(model). The model comes back
    as it was: weights untouched, earlier .grad values, buffers (e.g. BatchNorm running stats),
    the random-number state and the train/eval mode all restored.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    saved_grads = [p.grad for p in params]
    saved_buffers = [b.detach().clone() for b in model.buffers()]
    was_training = model.training
    device = next(model.parameters()).device if params else torch.device("cpu")
    try:
        for p in params:
            p.grad = None
        model.train()
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            with _counter() as counter:
                loss_fn(model(x), y).backward()
        return int(counter.get_total_flops())
    finally:
        for p, g in zip(params, saved_grads):
            p.grad = g
        with torch.no_grad():
            for b, saved in zip(model.buffers(), saved_buffers):
                b.copy_(saved)
        model.train(was_training)


def optimizer_step_flops(model: torch.nn.Module, flops_per_param: int = ADAMW_FLOPS_PER_PARAM) -> int:
    """FLOPs of one optimizer step: flops_per_param for each trainable parameter (AdamW: 14)."""
    return flops_per_param * sum(p.numel() for p in model.parameters() if p.requires_grad)


def optimizer_flops_per_param(optimizer: str, weight_decay: float = 0.0, momentum: float = 0.9) -> int:
    """Elementwise FLOPs per weight of one step of glassbox's optimizers ('adamw' or 'sgd')."""
    if optimizer == "sgd":
        return (SGD_FLOPS_PER_PARAM if momentum else PLAIN_SGD_FLOPS_PER_PARAM) + (2 if weight_decay else 0)
    return ADAMW_FLOPS_PER_PARAM


def default_power_watts(device="cpu", world_size: int = 1) -> float:
    """The power draw the ledger assumes when the user gives none: 65 W for a CPU machine; for GPUs,
    each one's board power limit as nvidia-smi reports it (GPU_FALLBACK_WATTS when it cannot), times
    the number of processes (one GPU each under torchrun)."""
    device = torch.device(device)
    if device.type != "cuda":
        return DEFAULT_POWER_WATTS
    return world_size * _gpu_power_limit(device)


def _gpu_power_limit(device: torch.device) -> float:
    import subprocess

    index = device.index if device.index is not None else torch.cuda.current_device()
    try:
        out = subprocess.run(["nvidia-smi", f"--id={index}", "--query-gpu=power.limit", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10)
        watts = float(out.stdout.strip().splitlines()[0])
        return watts if math.isfinite(watts) and watts > 0 else GPU_FALLBACK_WATTS
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return GPU_FALLBACK_WATTS


def count_inference_flops(model: torch.nn.Module, x_one) -> int:
    """Forward FLOPs for one example: x_one is a batch of one (leading dimension 1).

    Runs in eval mode under torch.inference_mode, as serving does, then restores the mode. The fused
    fast path of nn.TransformerEncoderLayer and nn.MultiheadAttention is switched off while counting:
    its kernels do the same matrix products but are not in torch's FLOP registry (they count as 0).
    """
    if x_one.shape[0] != 1:
        raise ValueError(f"x_one must hold exactly one example (leading dimension 1); got shape "
                         f"{tuple(x_one.shape)}. Pass x[:1].")
    was_training = model.training
    try:
        model.eval()
        with torch.inference_mode(), _mha_fastpath(False), _counter() as counter:
            model(x_one.detach())
        return int(counter.get_total_flops())
    finally:
        model.train(was_training)


@contextlib.contextmanager
def _mha_fastpath(enabled: bool):
    mha = getattr(torch.backends, "mha", None)
    if mha is None or not hasattr(mha, "set_fastpath_enabled"):
        yield
        return
    before = mha.get_fastpath_enabled()
    mha.set_fastpath_enabled(enabled)
    try:
        yield
    finally:
        mha.set_fastpath_enabled(before)


def cost_ledger(train_flops_total: float, train_seconds: float, inference_flops: float,
                inference_seconds: float, peak_flops: float, power_watts: float = DEFAULT_POWER_WATTS,
                price_per_kwh: float = DEFAULT_PRICE_PER_KWH, peak_dtype: str = "float32",
                peak_threads: int | None = None, peak_how: str | None = None, processes: float = 1.0,
                peak_per_process: float | None = None) -> dict:
    """What training cost, what one prediction costs, and how many predictions equal one training run.

    inference_flops and inference_seconds are for one prediction. MFU (model FLOPs utilisation)
    = achieved FLOP/s / peak_flops, the matmul peak in the precision the model computes in (peak_dtype),
    on the CPU threads training ran on (peak_threads; None on a GPU). Under torchrun peak_flops is the sum over
    the processes (`processes`, averaged over training time when a resumed run changed their number) of
    `peak_per_process` each. Energy = power_watts x seconds (a constant draw: an estimate,
    not a meter reading); money = energy x price_per_kwh. JSON-safe dict:
      {"peak_flops", "peak_dtype", "power_watts", "price_per_kwh",
       "train": {"flops", "seconds", "flops_per_second", "mfu", "energy_kwh", "cost"},
       "inference": {"flops", "seconds", "flops_per_second", "mfu",
                     "energy_kwh_per_1000", "cost_per_1000"},
       "training_equals_predictions": {"by_flops", "by_time"}}
    report/words/cost.py says it in words.
    """
    for name, value in [("train_seconds", train_seconds), ("inference_seconds", inference_seconds),
                        ("peak_flops", peak_flops), ("power_watts", power_watts)]:
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"The {name!r} parameter of cost_ledger must be a number in (0, inf). Got {value!r} instead.")
    for name, value in [("train_flops_total", train_flops_total), ("inference_flops", inference_flops),
                        ("price_per_kwh", price_per_kwh)]:
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"The {name!r} parameter of cost_ledger must be a number in [0, inf). Got {value!r} instead.")

    def kwh(seconds: float) -> float:
        return power_watts * seconds / 3.6e6

    train = {"flops": float(train_flops_total), "seconds": float(train_seconds),
             "flops_per_second": train_flops_total / train_seconds,
             "mfu": train_flops_total / train_seconds / peak_flops,
             "energy_kwh": kwh(train_seconds), "cost": kwh(train_seconds) * price_per_kwh}
    infer = {"flops": float(inference_flops), "seconds": float(inference_seconds),
             "flops_per_second": inference_flops / inference_seconds,
             "mfu": inference_flops / inference_seconds / (peak_per_process or peak_flops),  # one process predicts
             "energy_kwh_per_1000": kwh(1000 * inference_seconds),
             "cost_per_1000": kwh(1000 * inference_seconds) * price_per_kwh}
    return {
        "peak_flops": float(peak_flops), "peak_dtype": peak_dtype, "peak_threads": peak_threads, "peak_how": peak_how,
        "processes": float(processes), "peak_per_process": float(peak_per_process or peak_flops / processes),
        "power_watts": float(power_watts),
        "price_per_kwh": float(price_per_kwh), "train": train, "inference": infer,
        "training_equals_predictions": {
            "by_flops": train_flops_total / inference_flops if inference_flops > 0 else None,
            "by_time": train_seconds / inference_seconds},
    }


def reprice(ledger: dict, power_watts: float | None = None, price_per_kwh: float | None = None) -> dict:
    """The same ledger with energy and money worked out again for another power draw or price. Its sentence, if it
    has one, said the old figures: it is left out (report/words/cost.py says the new ones)."""
    t, i = ledger["train"], ledger["inference"]
    new = cost_ledger(t["flops"], t["seconds"], i["flops"], i["seconds"], ledger["peak_flops"],
                      power_watts=ledger["power_watts"] if power_watts is None else power_watts,
                      price_per_kwh=ledger["price_per_kwh"] if price_per_kwh is None else price_per_kwh,
                      peak_dtype=ledger.get("peak_dtype", "float32"), peak_threads=ledger.get("peak_threads"),
                      peak_how=ledger.get("peak_how"), processes=ledger.get("processes", 1.0),
                      peak_per_process=ledger.get("peak_per_process"))
    for part in ("train", "inference"):
        new[part] = {**ledger[part], **new[part]}  # keep what the ledger knew besides (steps, FLOPs per step)
    return {**{k: v for k, v in ledger.items() if k != "sentence"}, **new}


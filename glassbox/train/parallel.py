"""What the loop needs to train one model on any number of processes and resume on another number:
one all-reduce a step for the divergence check and a stop request, the global training loss, gradients
exchanged once an update, and the record of which stretch of steps ran on how many processes (the cost
ledger sums their peaks)."""
from __future__ import annotations

import contextlib
import math
from pathlib import Path

import torch
import torch.distributed

from glassbox.errors import Stopped
from glassbox.runtime import distributed


def sync_on_last(forward: torch.nn.Module, dist, micro: int, micro_batches: int):
    """Under torchrun, DDP's gradients are averaged over the processes on an update's last micro-batch only: the
    earlier ones run under no_sync and just add up."""
    if dist.enabled and micro < micro_batches - 1:
        return forward.no_sync()
    return contextlib.nullcontext()


@contextlib.contextmanager
def steps_running():
    """Inside the block a stop asked for (a signal, the launcher's death) waits for the end of the step."""
    distributed.steps_running(True)
    try:
        yield
    finally:
        distributed.steps_running(False)


def step_check(loss: torch.Tensor, grad_norm: torch.Tensor, dist) -> tuple[bool, int]:
    """Whether this step's loss and gradient norm are finite on every rank, and the signal that asked any rank to
    stop (0: none).

    One all-reduce carries both: a loss that overflows on one rank alone would leave DDP's averaged gradients
    finite, and the ranks would part ways; a stop asked of one rank must stop all of them at the same step."""
    total = loss.detach().float() + grad_norm  # inf + -inf is nan: still caught
    if not dist.enabled:  # one addition and one read a step: the check costs next to nothing
        return math.isfinite(total.item()), 0
    flags = torch.stack([(~torch.isfinite(total)).float(),
                         torch.tensor(float(distributed.stop_requested()), device=total.device)])
    torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MAX)
    stop = int(flags[1].item())
    if stop:
        distributed.stop_seen()  # every rank ends at this step
    return flags[0].item() == 0, stop


def rank0_figures(loss: float, accuracy: float | None) -> tuple[float, float | None]:
    """Rank 0's validation loss and accuracy on every process (as given outside torchrun). Every rank scores the
    same weights on the same data, but a GPU's kernels need not sum alike on every device, and a fault may hit one
    rank alone: early stopping, the sweet spot and the non-finite check then read the same figures everywhere."""
    loss, acc, has_acc = distributed.from_rank0_numbers([loss, math.nan if accuracy is None else accuracy,
                                                          accuracy is not None])
    return loss, acc if has_acc else None


def summed(value: torch.Tensor, dist) -> float:
    """`value` summed over every process (the value itself outside torchrun)."""
    if dist.enabled:
        value = value.detach().clone()
        torch.distributed.all_reduce(value)
    return value.item()


def session(world_size: int, from_step: int, to_step: int, seconds: float) -> dict:
    """One stretch of a run's steps on one number of processes: from_step < step <= to_step."""
    return {"world_size": world_size, "from_step": from_step, "to_step": to_step, "seconds": seconds}


def resume_note(step: int, total: int, done: bool, sessions: list[dict], world_size: int) -> str:
    """What a resumed run says first: where it continues, on how many processes, and after what."""
    restarted = distributed.restart_count()
    words = (f"torchrun restarted the workers after a failure (restart {restarted}): " if restarted else "") + \
        f"resuming from the checkpoint at step {step} of {total}"
    if done:
        return words + " (training had already finished: only the evaluation runs again)"
    before = sessions[-1]["world_size"] if sessions else None
    if before is not None and before != world_size:
        words += (f" on {processes(world_size)} (it trained on {processes(before)} until then): every step still "
                  f"takes the same global batch, and the data continues where it stopped")
    return words


def processes(n: int) -> str:
    return f"{n} process{'es' if n != 1 else ''}"


def stop_run(sig: int, step: int, total: int, best_step: int, run_dir: Path | None, dist) -> Stopped:
    """The stop `sig` asked for (of any rank: a signal or the launcher's death), with where the run stopped and the
    command that continues it."""
    why = distributed.stop_words(sig)
    if run_dir is None:
        kept = "nothing is saved (fit was given no run folder)"
    else:
        kept = (f"the checkpoint of step {step} and the best weights so far (step {best_step}) are in "
                f"{run_dir / 'checkpoints'}; continue with: torchrun --nproc_per_node N -m glassbox train --out {run_dir} "
                f"--resume (N: any number of processes)")
    return Stopped(f"stopped on request ({why}) at step {step} of {total}: {kept}", main=dist.is_main)


def world_record(result, batch_size: int) -> dict:
    """What summary.json says about processes: how many trained this run's last session, each one's share of the
    global batch, and which steps ran on how many (a run resumed on another number has several sessions)."""
    return {"world_size": result.world_size, "batch_size_per_process": batch_size // result.world_size,
            "sessions": result.sessions}

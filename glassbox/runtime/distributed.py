"""Data-parallel training under torchrun: one process per device, gradients averaged by DDP.

Launched as `torchrun --nproc_per_node N -m glassbox train ...`; without torchrun this is a no-op.
What is global and what is per process: --batch-size is the global batch (each process takes its equal
share, `share`); the position in the data is counted in global batches; each process's random draws
(dropout) are reseeded every step from the seed, its rank and the examples seen so far (`reseed`), so a
run resumes exactly on any number of processes. A stop asked of the launcher or of any worker (Ctrl-C,
SIGTERM, the launcher's death) is honoured by every process at the end of the same step (`stop_requested`)."""
from __future__ import annotations

import contextlib
import datetime
import os
import signal
import threading
import time
from dataclasses import dataclass

import torch

from glassbox.errors import UserError

# How long a process waits for the others in one collective before it fails with an error instead of hanging:
# long enough for rank 0's work that the others wait on (the data audit, a tokenizer), short of a silent hang.
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=20)


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


_LOCAL = [False]  # True inside local(): training here is this process's own, not the group's


@contextlib.contextmanager
def local():
    """Inside the block, fit trains as if there were one process, even under torchrun. For work every
    rank does alike on its own (the audit's fold models): no gradient exchange per step, same results."""
    before, _LOCAL[0] = _LOCAL[0], True
    try:
        yield
    finally:
        _LOCAL[0] = before


def setup(device: torch.device) -> Dist:
    """Join the process group when started by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or _LOCAL[0]:
        return Dist()
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        if device.type == "cuda":  # one GPU per process: NCCL needs each rank on its own device
            if device.index not in (None, local_rank):
                raise UserError(f"--device {device} puts every process on one GPU; under torchrun each process takes "
                                f"its own (cuda:LOCAL_RANK): give --device cuda")
            torch.cuda.set_device(local_rank)
        backend = "nccl" if device.type == "cuda" else "gloo"
        if restart_count():  # a fresh namespace of keys for this attempt (see attempt_store)
            dist.init_process_group(backend=backend, store=attempt_store(world), rank=int(os.environ["RANK"]),
                                    world_size=world, timeout=COLLECTIVE_TIMEOUT)
        else:
            dist.init_process_group(backend=backend, timeout=COLLECTIVE_TIMEOUT)
        stop_on_signal()
    return Dist(rank=dist.get_rank(), world_size=world, local_rank=local_rank)


def current() -> Dist:
    """This process's place in the group (rank 0 of 1 outside torchrun); joins nothing."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or _LOCAL[0]:
        return Dist()
    return Dist(rank=int(os.environ.get("RANK", "0")), world_size=world, local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def from_rank0(flags: list[bool]) -> list[bool]:
    """Rank 0's flags on every process (the flags as given outside torchrun)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return flags
    on = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    values = torch.tensor([float(f) for f in flags], device=on)
    dist.broadcast(values, src=0)
    return [bool(v) for v in values.tolist()]


def barrier() -> None:
    """Wait until every process reaches this point (nothing to wait for outside torchrun)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def attempt_store(world: int):
    """The rendezvous store for a process that torchrun restarted after a failure, with this attempt's own prefix.
    torchrun's shared store keeps the keys of the failed attempt, and a restarted process may read a peer's old
    address from them and fail to connect (pytorch/pytorch#167288); the prefix makes every attempt start clean."""
    import torch.distributed as dist

    shared = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"  # the launcher hosts it; else rank 0 does
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world,
                          is_master=not shared and int(os.environ["RANK"]) == 0, timeout=COLLECTIVE_TIMEOUT,
                          multi_tenant=not shared)
    return dist.PrefixStore(f"glassbox/attempt_{restart_count()}", store)


def share(batch_size: int, world_size: int) -> int:
    """Each process's part of the global batch; a batch the processes cannot split evenly is refused."""
    if batch_size % world_size:
        lower, upper = batch_size // world_size * world_size, -(-batch_size // world_size) * world_size
        raise UserError(f"--batch-size {batch_size} is the global batch and does not divide among {world_size} "
                        f"processes; use a multiple of {world_size} (e.g. {max(lower, world_size)} or {upper})")
    return batch_size // world_size


def restart_count() -> int:
    """How many times torchrun has restarted this run's workers after a failure (0: the first attempt)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)


def reseed(seed: int, rank: int, examples: int, device: torch.device) -> None:
    """Seed this process's random draws (dropout) for the step that starts after `examples` global examples: a
    function of the seed, the rank and that count alone, so an uninterrupted run and one resumed on any number of
    processes draw alike. (Seeding the default generator directly: torch.manual_seed takes 100x longer.)"""
    value = (seed * 0x9E3779B97F4A7C15 + rank * 0xBF58476D1CE4E5B9 + examples) % (2**63)
    torch.random.default_generator.manual_seed(value)
    if device.type == "cuda":
        torch.cuda.default_generators[device.index if device.index is not None else torch.cuda.current_device()] \
            .manual_seed(value)


_STOP = {"signal": 0, "in_loop": False}  # the signal that asked for a stop; whether training steps are running


def _ask_stop(signum, frame) -> None:
    _STOP["signal"] = _STOP["signal"] or signum
    if not _STOP["in_loop"]:  # before or after the training steps there is no step to finish: stop now
        raise KeyboardInterrupt


def stop_on_signal() -> None:
    """Under torchrun: SIGINT or SIGTERM (the launcher forwards Ctrl-C and its own SIGTERM to every worker; a signal
    may also reach one worker alone), or SIGHUP, asks for a stop at the end of the current step. So does the
    launcher's death, as a SIGHUP this process sends itself: torchrun starts its workers in sessions of their own,
    so killing its process group would otherwise leave them training."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _ask_stop)
    parent = os.getppid()

    def watch_launcher():
        while os.getppid() == parent:
            time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGHUP)  # handled in the main thread, like any other stop

    threading.Thread(target=watch_launcher, name="glassbox-launcher-watch", daemon=True).start()


def steps_running(running: bool) -> None:
    """While training steps run, a stop request waits for the end of the current step; otherwise it interrupts."""
    _STOP["in_loop"] = running


def stop_requested() -> int:
    """The signal that asked this process to stop (0: none)."""
    return _STOP["signal"]


def lost_peers(error: BaseException) -> str | None:
    """One line for a collective that failed because another process died or stopped answering (its own error says
    why); None for any other error, or outside torchrun."""
    if current().world_size <= 1:
        return None
    names = {"DistError", "DistBackendError", "DistNetworkError", "DistStoreError"}
    text = (str(error).splitlines() or [type(error).__name__])[0]
    if type(error).__name__ not in names and not (isinstance(error, RuntimeError) and "gloo" in text.lower()):
        return None
    return (f"rank {current().rank}: the other processes stopped answering ({text[-160:].strip()}); the first error "
            f"above, from the process that failed, says why. Under torchrun --max-restarts N the workers restart and "
            f"resume from the last checkpoint")

"""Data-parallel training under torchrun: one process per device, gradients averaged by DDP.

Launched as `torchrun --nproc_per_node N -m glassbox train ...`; without torchrun this is a no-op.
What is global and what is per process: --batch-size is the global batch (each process takes its equal
share, `share`); the position in the data is counted in global batches; each process's random draws
(dropout) are reseeded every step from the seed, its rank and the examples seen so far (`reseed`), so a
run resumes exactly on any number of processes. A stop asked of the launcher or of any worker (Ctrl-C,
SIGTERM, the launcher's death) is honoured by every process at the end of the same step (`stop_requested`).

Every decision that changes what the processes do next (stop early, diverged, stop asked, which checkpoint to
resume from, the audit's verdict) is made once, by rank 0 or by a reduction over all ranks, and sent to every
process by a collective (`from_rank0`, `from_rank0_numbers`, `ranks_where`): the ranks take the same path by
construction, even when one rank's own view differs (a GPU kernel that is not deterministic, a network file system
that shows one rank an older folder).

Failures. gloo (CPU) raises in the waiting process when a peer dies; NCCL (GPU) does not: a dead peer leaves the
others inside the collective. So on a GPU the training collectives run in an NCCL group with a timeout of their own
(NCCL_TIMEOUT) and blocking waits (TORCH_NCCL_BLOCKING_WAIT=1: a collective that times out or fails raises in the
waiting process, which says so in one line, instead of torch's watchdog aborting it with none), while the waits for
rank 0's work alone (the audit, a tokenizer, a checkpoint being written) and the decisions run in a CPU (gloo) group
with the long COLLECTIVE_TIMEOUT. When torchrun stops the workers because one of them failed, it sends SIGTERM and,
30 s later, SIGKILL; a process blocked in a collective cannot reach the end of its step, so `stop_on_signal`'s
watcher ends it in one line after STOP_GRACE_SECONDS."""
from __future__ import annotations

import contextlib
import datetime
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass

import torch

from glassbox.errors import UserError
from glassbox.runtime.device import process_gpu, under_torchrun

# How long a process waits for the others in one collective before it fails with an error instead of hanging.
# gloo (and the CPU group beside NCCL): long enough for rank 0's work that the others wait on (the data audit, a
# tokenizer, a checkpoint written), short of a silent hang.
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=20)
# NCCL: the training steps' collectives only, where every process does the same work (torch's NCCL default).
NCCL_TIMEOUT = datetime.timedelta(minutes=10)
# After a stop signal, how long a process blocked in a collective waits for its step to end before it gives up in
# one line: torchrun sends SIGKILL 30 s after the SIGTERM with which it stops the workers.
STOP_GRACE_SECONDS = 25.0
EXIT_STUCK = 1  # the exit code of a process that gave up waiting for the others


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    enabled: bool = False  # in a process group: gradients and decisions are exchanged with the others

    @property
    def is_main(self) -> bool:
        return self.rank == 0


_LOCAL = [False]  # True inside local(): training here is this process's own, not the group's
_GROUP = {"control": None, "left": False}  # the CPU group beside NCCL (None: the one gloo group); group left


@contextlib.contextmanager
def local():
    """Inside the block, fit trains as if there were one process, even under torchrun. For work every
    rank does alike on its own (the audit's fold models): no gradient exchange per step, same results."""
    before, _LOCAL[0] = _LOCAL[0], True
    try:
        yield
    finally:
        _LOCAL[0] = before


def in_group() -> bool:
    """This process trains with others now (a process group joined and not left, outside local())."""
    import torch.distributed as dist

    return not _LOCAL[0] and not _GROUP["left"] and dist.is_available() and dist.is_initialized()


def setup(device: torch.device) -> Dist:
    """Join the process group when started by torchrun (even for 1 process: the same code paths, signals handled
    at the end of a step). After `leave`, or without torchrun, a process is on its own."""
    if _LOCAL[0] or _GROUP["left"] or not under_torchrun():
        return Dist()
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        join(device, int(os.environ.get("WORLD_SIZE", "1")), local_rank)
    return Dist(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank, enabled=True)


def join(device: torch.device, world: int, local_rank: int) -> None:
    """init_process_group with the backend of `device` and that backend's timeouts (see the module's docstring)."""
    import torch.distributed as dist

    if device.type == "cuda":  # one GPU per process: NCCL needs each rank on its own device
        own = process_gpu(local_rank)
        if device.index not in (None, own.index):
            raise UserError(f"--device {device} puts every process on one GPU; under torchrun each process takes "
                            f"its own ({own} for this one): give --device cuda")
        torch.cuda.set_device(own)
        os.environ.setdefault("TORCH_NCCL_BLOCKING_WAIT", "1")  # a failed collective raises here (a setting given wins)
        backend, timeout = "nccl", NCCL_TIMEOUT
    else:
        backend, timeout = "gloo", COLLECTIVE_TIMEOUT
    if restart_count():  # a fresh namespace of keys for this attempt (see attempt_store)
        dist.init_process_group(backend=backend, store=attempt_store(world), rank=int(os.environ["RANK"]),
                                world_size=world, timeout=timeout)
    else:
        dist.init_process_group(backend=backend, timeout=timeout)
    _GROUP["control"] = dist.new_group(backend="gloo", timeout=COLLECTIVE_TIMEOUT) if backend == "nccl" else None
    stop_on_signal()


def leave() -> Dist:
    """Every process leaves the group together after training (a barrier, then destroy_process_group): from here on
    each is on its own, so nothing later (rank 0's evaluation, the control run, the report) can wait for a peer that
    has exited. Returns this process's place in the group it left."""
    me = current()
    if in_group():
        import torch.distributed as dist

        barrier()
        dist.destroy_process_group()
        _GROUP["left"], _GROUP["control"] = True, None
    return me


def current() -> Dist:
    """This process's place in the group (rank 0 of 1 outside torchrun); joins nothing."""
    if _LOCAL[0] or not under_torchrun():
        return Dist()
    return Dist(rank=int(os.environ.get("RANK", "0")), world_size=int(os.environ.get("WORLD_SIZE", "1")),
                local_rank=int(os.environ.get("LOCAL_RANK", "0")), enabled=in_group())


def from_rank0_numbers(values: list[float]) -> list[float]:
    """Rank 0's numbers on every process (the numbers as given outside a group), exactly (float64)."""
    if not in_group():
        return values
    import torch.distributed as dist

    sent = torch.tensor([float(v) for v in values], dtype=torch.float64)
    dist.broadcast(sent, src=0, group=_GROUP["control"])
    return sent.tolist()


def from_rank0(flags: list[bool]) -> list[bool]:
    """Rank 0's flags on every process (the flags as given outside torchrun)."""
    return [bool(v) for v in from_rank0_numbers([float(f) for f in flags])]


def ranks_where(flag: bool) -> list[int]:
    """The ranks on which `flag` holds, known to every process (one all-reduce)."""
    if not in_group():
        return [0] if flag else []
    import torch.distributed as dist

    marks = torch.zeros(dist.get_world_size())
    marks[dist.get_rank()] = float(flag)
    dist.all_reduce(marks, op=dist.ReduceOp.MAX, group=_GROUP["control"])
    return [rank for rank, mark in enumerate(marks.tolist()) if mark]


def barrier() -> None:
    """Wait until every process reaches this point (nothing to wait for outside a group), in the CPU group: a long
    wait for rank 0's own work is never an NCCL timeout."""
    if in_group():
        import torch.distributed as dist

        dist.barrier(group=_GROUP["control"])


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


def share(batch_size: int, world_size: int, examples: int | None = None) -> int:
    """Each process's part of the global batch; a batch the processes cannot split evenly is refused, and so is a
    global batch larger than the `examples` it is drawn from (some processes would get no rows)."""
    if batch_size % world_size:
        lower, upper = batch_size // world_size * world_size, -(-batch_size // world_size) * world_size
        raise UserError(f"--batch-size {batch_size} is the global batch and does not divide among {world_size} "
                        f"processes; use a multiple of {world_size} (e.g. {max(lower, world_size)} or {upper})")
    if examples is not None and world_size > 1 and batch_size > examples:
        most = examples // world_size * world_size
        fix = (f"use --batch-size {most} or less (a multiple of {world_size})" if most else
               f"train on fewer processes than the {examples} examples, or add examples")
        raise UserError(f"--batch-size {batch_size} is the global batch, larger than the {examples:,} training "
                        f"examples: the {world_size} processes would not all get their share of rows; {fix}")
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


# Stop requests. LAUNCHER_GONE stands for the SIGHUP this process sends itself when its launcher dies; it is above
# every signal number, so the all-reduce (MAX) of the ranks' requests says so wherever it was seen.
LAUNCHER_GONE = 256
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# signal: what asked for a stop; in_loop: training steps are running; answered: the stop reached the main thread's
# code (the loop saw it, or it interrupted); launcher_gone: the SIGHUP came from watch_launcher; resume: the run
# folder to continue, once known
_STOP = {"signal": 0, "in_loop": False, "answered": False, "launcher_gone": False, "resume": ""}


def stop_words(code: int) -> str:
    """What asked for a stop, in words."""
    return "the launcher is gone" if code == LAUNCHER_GONE else signal.Signals(code).name


def _ask_stop(signum, frame) -> None:
    code = LAUNCHER_GONE if signum == signal.SIGHUP and _STOP["launcher_gone"] else signum
    _STOP["signal"] = _STOP["signal"] or code
    if not _STOP["in_loop"] or _GROUP["left"]:  # no step to finish (before or after the steps, or alone): stop now
        _STOP["answered"] = True
        raise KeyboardInterrupt


def stop_on_signal() -> None:
    """Under torchrun: SIGINT or SIGTERM (the launcher forwards Ctrl-C and its own SIGTERM to every worker; a signal
    may also reach one worker alone), or SIGHUP, asks for a stop at the end of the current step. So does the
    launcher's death, as a SIGHUP this process sends itself: torchrun starts its workers in sessions of their own,
    so killing its process group would otherwise leave them training. A process that cannot reach the end of its
    step (blocked in a collective with a peer that is gone) gives up after STOP_GRACE_SECONDS (`watch_stops`)."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, _ask_stop)
    read, write = os.pipe()
    os.set_blocking(write, False)
    signal.set_wakeup_fd(write, warn_on_full_buffer=False)  # the signal's number, even while Python code cannot run
    threading.Thread(target=watch_stops, args=(read,), name="glassbox-stop-watch", daemon=True).start()
    parent = os.getppid()

    def watch_launcher():
        while os.getppid() == parent:
            time.sleep(0.2)
        _STOP["launcher_gone"] = True
        os.kill(os.getpid(), signal.SIGHUP)  # handled in the main thread, like any other stop

    threading.Thread(target=watch_launcher, name="glassbox-launcher-watch", daemon=True).start()


def watch_stops(read_fd: int) -> None:
    """Python runs a signal handler in the main thread between two bytecodes, so a main thread blocked inside a
    collective (NCCL waiting for a dead peer, gloo for a stuck one) never sees the stop: this thread does, through
    the wakeup pipe, and when the stop is not answered within STOP_GRACE_SECONDS it ends the process in one line."""
    while True:
        got = os.read(read_fd, 64)
        if _STOP["answered"] or not any(b in (int(s) for s in STOP_SIGNALS) for b in got):
            continue
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while time.monotonic() < deadline and not _STOP["answered"]:
            time.sleep(0.05)
        if not _STOP["answered"] and not _GROUP["left"]:
            give_up()


def give_up() -> None:
    """One line (from rank 0) and the exit: the stop could not wait for the others."""
    me = current()
    asked = _STOP["signal"] or signal.SIGTERM
    if me.is_main:
        print(f"glassbox: error: rank {me.rank}: stopped on request ({stop_words(asked)}), but the step in progress did "
              f"not end within {STOP_GRACE_SECONDS:g} s: this process is waiting in a collective for another process "
              f"that is gone or stuck (its own error says why); the last checkpoint written is kept; continue with: "
              f"{resume_command()}", file=sys.stderr, flush=True)
    os._exit(EXIT_STUCK)


def steps_running(running: bool) -> None:
    """While training steps run, a stop request waits for the end of the current step; otherwise it interrupts."""
    _STOP["in_loop"] = running


def stop_requested() -> int:
    """What asked this process to stop: a signal's number, LAUNCHER_GONE, or 0 for nothing."""
    return _STOP["signal"]


def stop_seen() -> None:
    """The training loop has seen the stop that every rank agreed on: it ends at this step."""
    _STOP["answered"] = True


def exiting() -> None:
    """main() has returned: a stop signal now (torchrun ending the other workers) changes nothing, and raising
    KeyboardInterrupt in an exit handler would only print a traceback."""
    _STOP["answered"] = True
    if threading.current_thread() is threading.main_thread():
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)


def note_run_folder(path) -> None:
    """The run folder that a process stopped by a failure can be resumed from (said in its one line)."""
    _STOP["resume"] = str(path)


def resume_command() -> str:
    return (f"torchrun --nproc_per_node N -m glassbox train --out {_STOP['resume'] or 'RUN'} --resume "
            f"(N: any number of processes)")


# What torch names its errors of a collective whose peer failed: gloo's (a closed connection, a timeout) are
# RuntimeErrors naming gloo; NCCL's are DistBackendErrors naming NCCL or its watchdog ("Watchdog caught collective
# operation timeout", "NCCL communicator was aborted", "NCCL error in: ... ncclRemoteError", a blocking wait's
# "WorkNCCL(...) timed out in blocking wait").
PEER_ERRORS = {"DistError", "DistBackendError", "DistNetworkError", "DistStoreError"}
PEER_WORDS = ("gloo", "nccl", "watchdog")


def lost_peers(error: BaseException) -> str | None:
    """One line for a collective that failed because another process died or stopped answering (its own error says
    why), with the command that resumes the run; None for any other error, or outside a group of processes."""
    if current().world_size <= 1:
        return None
    text = (str(error).splitlines() or [type(error).__name__])[0]
    lower = text.lower()
    if type(error).__name__ not in PEER_ERRORS and not (isinstance(error, RuntimeError) and
                                                        any(word in lower for word in PEER_WORDS)):
        return None
    what = ("did not answer within the collective timeout" if "timed out" in lower or "timeout" in lower
            else "stopped answering")
    return (f"rank {current().rank}: the other processes {what} ({text[-160:].strip()}); the first error above, from "
            f"the process that failed, says why. Under torchrun --max-restarts N the workers restart and resume from "
            f"the last checkpoint by themselves; otherwise continue with: {resume_command()}")


# User errors under torchrun. torchrun restarts every failed attempt (--max-restarts), whatever its exit code; a user
# error would fail the same way each time, after the whole audit. So the process that meets one leaves a mark in the
# store that torchrun's agent keeps for the whole launch, and later attempts end at once with the same exit code.
REFUSED_KEY = "glassbox/refused"


def launch_store(timeout_s: float = 10.0):
    """A client of the store torchrun's agent keeps for the whole launch (it outlives every attempt); None where
    there is none (the launcher hosts no store, or it cannot be reached)."""
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True" or "MASTER_ADDR" not in os.environ:
        return None
    import torch.distributed as dist

    try:
        return dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
                             timeout=datetime.timedelta(seconds=timeout_s))
    except (RuntimeError, ValueError, OSError):
        return None


def refuse_restarts(code: int, message: str | None = None) -> str | None:
    """This attempt ends in a user error (exit `code`): mark the launch so that torchrun's restarts end at once. Returns
    the line this process should print: rank 0's message from rank 0; from another rank only when rank 0 did not say
    the same within a few seconds (an error of its own), with its rank; None for nothing to print."""
    store = launch_store()
    if store is None:
        return None if message is None else message if current().is_main else f"rank {current().rank}: {message}"
    said = f"glassbox/said/{restart_count()}"
    try:
        store.set(REFUSED_KEY, str(code))
        if message is None:
            return None
        if current().is_main:
            store.set(said, message)
            return message
        store.wait([said], datetime.timedelta(seconds=5))
        return None if store.get(said).decode() == message else f"rank {current().rank}: {message}"
    except (RuntimeError, ValueError, OSError):  # no word from rank 0 in time: this rank's error is its own
        return None if message is None else f"rank {current().rank}: {message}"


def earlier_refusal() -> int | None:
    """The exit code of the user error an earlier attempt of this torchrun launch ended in (None: none, or not a
    restarted attempt)."""
    if not restart_count():
        return None
    store = launch_store()
    try:
        return int(store.get(REFUSED_KEY)) if store is not None and store.check([REFUSED_KEY]) else None
    except (RuntimeError, ValueError, OSError):
        return None

"""Independent jobs on several CPU cores at once, in forked worker processes.

The audit's k fold models are independent and small: each runs a step of hundreds of tiny operations that a
second thread cannot split (glassbox/train/thread_choice.py times exactly that), so on a CPU with n cores they
finish sooner as n processes of one thread each, n fold models at a time. Workers are forked: they start with
the parent's imports and data already in memory (copy-on-write), so nothing is pickled on the way in; only each
job's result travels back. Forking needs Linux and a process that has not started CUDA; elsewhere
`parallel_workers` says 1 and the caller runs its jobs in turn.

    n = parallel_workers(jobs=5)                       # 1: run them in turn
    results = map_forked(job, range(5), n, on_result=lambda i, r: ...)
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import warnings
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Callable, Sequence

import torch

_JOB: Callable | None = None  # the job the forked workers run; set in the parent just before forking


def cpu_cores() -> int:
    """The cores this process may run on (its affinity mask, e.g. a container's share), not the machine's."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def parallel_workers(jobs: int) -> int:
    """How many forked workers `jobs` independent CPU jobs should use: one per core, at most one per job; 1 where
    forking is unavailable or unsafe (not Linux, CUDA already started in this process)."""
    # Linux only: macOS offers fork, but its system libraries (Accelerate among them) are not safe to use after it
    if not sys.platform.startswith("linux") or torch.cuda.is_initialized():
        return 1
    return max(1, min(jobs, cpu_cores()))


def _start_worker() -> None:
    # One thread each: the workers are the parallelism. Ctrl-C reaches the whole process group; the parent
    # answers it (and stops the workers), so a worker stays quiet instead of printing its own traceback.
    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run(item):
    return _JOB(item)


def map_forked(job: Callable, items: Sequence, workers: int, on_result: Callable | None = None,
               while_waiting: Callable | None = None) -> list:
    """[job(item) for item in items], computed in `workers` forked processes; results in the items' order.

    on_result(index, result): called in the parent as each job finishes (a progress bar); while_waiting(): run
    in the parent once every job is handed out, while the workers compute (e.g. importing what comes next).
    A job's exception is raised here; a worker that dies (killed, out of memory) raises BrokenProcessPool
    instead of leaving the parent waiting forever; on an exception or Ctrl-C the workers are stopped."""
    global _JOB
    _JOB = job
    for stream in (sys.stdout, sys.stderr):  # a worker flushes its copy of unwritten output when it exits
        stream.flush()
    results: list = [None] * len(items)
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"), initializer=_start_worker)
    try:
        with warnings.catch_warnings():  # the workers are forked at the first submit
            # Python >= 3.12 warns on fork() beside other threads: here torch's idle OpenMP pool, which a worker
            # never uses (one thread each, set before its first job).
            warnings.simplefilter("ignore", DeprecationWarning)
            pending = {pool.submit(_run, item): i for i, item in enumerate(items)}
        if while_waiting is not None:
            while_waiting()
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                i = pending.pop(future)
                results[i] = future.result()
                if on_result is not None:
                    on_result(i, results[i])
    except BaseException:
        for process in list(getattr(pool, "_processes", {}).values()):  # jobs already running would finish first
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        _JOB = None
    pool.shutdown()
    return results

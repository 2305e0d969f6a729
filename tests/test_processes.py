"""Forked workers (glassbox/runtime/processes.py) and the audit's fold models trained in them."""
from __future__ import annotations

import os
import signal
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import pytest
import torch

from glassbox.errors import UserError
from glassbox.runtime import processes
from glassbox.runtime.processes import map_forked, parallel_workers

pytestmark = pytest.mark.skipif(parallel_workers(2) < 2, reason="needs fork and at least 2 CPU cores")


def test_results_come_back_in_order_from_other_processes():
    seen = []
    out = map_forked(lambda i: (i * i, os.getpid(), torch.get_num_threads()), range(7), 2,
                     on_result=lambda i, r: seen.append(i))
    assert [r[0] for r in out] == [i * i for i in range(7)]
    pids = {r[1] for r in out}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert {r[2] for r in out} == {1}  # one thread per worker: the workers are the parallelism
    assert sorted(seen) == list(range(7))
    assert processes._JOB is None  # nothing of the job is left behind in this process


def test_a_job_error_reaches_the_caller_with_its_message():
    def job(i):
        if i == 3:
            raise UserError("fold 3 is broken; fix it")
        return i

    with pytest.raises(UserError, match="fold 3 is broken; fix it"):
        map_forked(job, range(5), 2)


def test_a_killed_worker_raises_instead_of_hanging():
    def job(i):
        if i == 2:
            os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's out-of-memory killer would
        return i

    with pytest.raises(BrokenProcessPool):
        map_forked(job, range(4), 2)


def test_while_waiting_runs_here_while_the_workers_compute():
    here = []
    out = map_forked(lambda i: os.getpid(), range(3), 2, while_waiting=lambda: here.append(os.getpid()))
    assert here == [os.getpid()] and os.getpid() not in out


def test_fold_models_in_workers_match_fold_models_in_turn(digits_csv, monkeypatch):
    """The label check's out-of-fold probabilities do not depend on where the folds trained: in 2 forked workers
    or one after another in this process, each on one thread, they are bit for bit the same."""
    from glassbox.config import TrainConfig
    from glassbox.run import out_of_fold
    from glassbox.data.kinds import KINDS

    ex = KINDS["tabular"].load(str(digits_csv), TrainConfig(label="digit"))
    plan = out_of_fold.FoldModels(ex, k=3, seed=0)
    plan.min_steps = 30  # a few updates each: the same either way, sooner
    together = plan.probabilities()
    apart = np.zeros_like(together)
    for fold in range(3):
        apart[plan.folds == fold] = plan.fold_probabilities(fold, 1)[0]
    assert np.array_equal(together, apart)
    assert np.allclose(together.sum(axis=1), 1.0) and (together.argmax(axis=1) == ex.labels).mean() > 0.8

"""Ready for GPUs and many of them, where no GPU and no second process is needed: each process takes its own GPU, the
group takes the backend and timeouts of its device (also on resume), NCCL's and gloo's failures of a peer are one
line with the resume command, a global batch larger than the training split is refused among processes. What only
NCCL or a GPU would do is checked on the functions that decide it (device selection, the group's backend and
timeouts, the error texts torch raises).

Under torchrun (gloo on the CPU): one rank's view made to differ while all ranks still agree, and a peer that stops
answering, in tests/test_torchrun_world.py; a user error said once and not retried, in tests/test_distributed.py; the
control run after training under torchrun, in benchmarks/gpu_check.py --smoke (tests/test_gpu_check.py)."""
import datetime
import os

import pytest
import torch

from glassbox.errors import UserError
from glassbox.runtime import device as device_module
from glassbox.runtime import distributed


@pytest.fixture
def gpus(monkeypatch):
    """This process sees `n` CUDA GPUs (none of them real: only the choice is tested)."""
    def see(n: int, **env: str):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
        for key, value in {"TORCHELASTIC_RUN_ID": "t", "WORLD_SIZE": "4", "RANK": "0", "LOCAL_RANK": "0", **env}.items():
            monkeypatch.setenv(key, value)
    return see


def test_each_process_takes_its_own_gpu_whether_it_sees_one_or_several(gpus):
    pick = device_module.pick_device
    gpus(1, LOCAL_RANK="3")  # a scheduler gave this task one GPU (CUDA_VISIBLE_DEVICES): its cuda:0, whatever the rank
    assert pick("auto") == pick("cuda") == torch.device("cuda:0")
    gpus(4, LOCAL_RANK="3")  # one node's 4 GPUs shared by its 4 processes
    assert pick("auto") == pick("cuda") == torch.device("cuda:3") and pick("cuda:1") == torch.device("cuda:1")
    gpus(2, LOCAL_RANK="3")  # 4 processes started on a node whose processes each see the same 2 GPUs
    with pytest.raises(UserError, match=r"^this process has LOCAL_RANK 3 but sees 2 CUDA GPUs \(cuda:0 to cuda:1\): "
                                        r"start at most 2 processes per node \(torchrun --nproc_per_node 2\), or give "
                                        r"each process one GPU of its own \(CUDA_VISIBLE_DEVICES\)$"):
        pick("auto")
    gpus(0)
    assert pick("auto") == torch.device("cpu")


@pytest.fixture
def group_calls(monkeypatch):
    """setup() under torchrun with torch.distributed's group functions recorded instead of run."""
    import torch.distributed as dist

    calls = []
    monkeypatch.setattr(dist, "is_initialized", lambda: bool(calls))
    monkeypatch.setattr(dist, "init_process_group", lambda **kw: calls.append(("init", kw)))
    monkeypatch.setattr(dist, "new_group", lambda **kw: calls.append(("new_group", kw)) or "cpu group")
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls.append(("set_device", d)))
    monkeypatch.setattr(distributed, "stop_on_signal", lambda: None)
    monkeypatch.setattr(distributed, "_GROUP", {"control": None, "left": False})
    monkeypatch.setenv("TORCH_NCCL_BLOCKING_WAIT", "")  # restored afterwards to what it was (setup sets it)
    monkeypatch.delenv("TORCH_NCCL_BLOCKING_WAIT")
    return calls


def test_the_group_takes_the_backend_and_timeouts_of_the_device(gpus, group_calls):
    gpus(1, RANK="1", LOCAL_RANK="1", WORLD_SIZE="2")
    dist = distributed.setup(device_module.pick_device("cuda"))
    # NCCL for the training steps, with its own timeout and blocking waits (a failed collective raises, in one line);
    # a CPU group with the long timeout for the waits on rank 0's work and for the shared decisions
    assert group_calls == [("set_device", torch.device("cuda:0")),
                           ("init", {"backend": "nccl", "timeout": distributed.NCCL_TIMEOUT}),
                           ("new_group", {"backend": "gloo", "timeout": distributed.COLLECTIVE_TIMEOUT})]
    assert os.environ["TORCH_NCCL_BLOCKING_WAIT"] == "1" and distributed._GROUP["control"] == "cpu group"
    assert (dist.rank, dist.world_size, dist.enabled) == (1, 2, True)
    assert distributed.NCCL_TIMEOUT < distributed.COLLECTIVE_TIMEOUT

    group_calls.clear()
    distributed.setup(torch.device("cpu"))  # gloo: one group, the long timeout
    assert group_calls == [("init", {"backend": "gloo", "timeout": distributed.COLLECTIVE_TIMEOUT})]
    assert distributed._GROUP["control"] is None


# Errors as torch raises them when a peer fails (first lines, as torch 2.4 to 2.13 word them)
NCCL_ERRORS = [
    "[Rank 0] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=812, OpType=ALLREDUCE, NumelIn=2, "
    "NumelOut=2, Timeout(ms)=600000) ran for 600081 milliseconds before timing out.",
    "[PG ID 0 PG GUID 0(default_pg) Rank 1] Work WorkNCCL(SeqNum=5, OpType=ALLREDUCE) timed out in blocking wait.",
    "NCCL error in: ../torch/csrc/distributed/c10d/NCCLUtils.hpp:317, remote process exited or there was a network "
    "error, NCCL version 2.21.5",
    "NCCL communicator was aborted on rank 1.",
]


def test_nccl_and_gloo_failures_of_a_peer_are_one_line_with_the_resume_command(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setitem(distributed._STOP, "resume", "")
    for text in NCCL_ERRORS:
        line = distributed.lost_peers(torch.distributed.DistBackendError(text))
        assert line.startswith("rank 1: the other processes ") and "--resume" in line and "\n" not in line
        assert ("did not answer within the collective timeout" in line) == ("tim" in text)
        assert distributed.lost_peers(RuntimeError(text)) == line  # older versions raise a plain RuntimeError
    gloo = RuntimeError("[../third_party/gloo/gloo/transport/tcp/pair.cc:534] Connection closed by peer [10.0.0.2]:5")
    assert "stopped answering" in distributed.lost_peers(gloo)
    distributed.note_run_folder("runs/a")
    assert distributed.lost_peers(gloo).endswith("continue with: torchrun --nproc_per_node N -m glassbox train --out "
                                                 "runs/a --resume (N: any number of processes)")
    for other in (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), ValueError("nccl"), KeyError("gloo")):
        assert distributed.lost_peers(other) is None  # a process's own error keeps its traceback
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert distributed.lost_peers(gloo) is None


def test_a_global_batch_larger_than_the_training_split_is_refused_among_processes():
    from glassbox.train.batches import TensorBatches

    x, y = torch.zeros(100, 3), torch.zeros(100, dtype=torch.long)
    with pytest.raises(UserError, match=r"^--batch-size 128 is the global batch, larger than the 100 training "
                                        r"examples: the 2 processes would not all get their share of rows; use "
                                        r"--batch-size 100 or less \(a multiple of 2\)$"):
        TensorBatches(x, y, 128, rank=1, world_size=2)
    with pytest.raises(UserError, match="train on fewer processes than the 3 examples"):
        distributed.share(8, 4, examples=3)
    assert TensorBatches(x, y, 128).next()[0].shape == (100, 3)  # one process takes the whole split, as before
    assert distributed.share(100, 2, examples=100) == 50


def test_a_resume_joins_the_group_on_the_saved_device_not_the_default_typed_now(tmp_path, monkeypatch):
    # A run started with --device cpu on a GPU host and resumed without --device trained on the CPU in an NCCL group
    # (the backend came from today's default, auto). The group now takes the device the run resumes on.
    from glassbox.config import TrainConfig
    from glassbox.run.train import start

    class Joined(Exception):
        pass

    def setup(device):
        raise Joined(device)

    (tmp_path / "config.json").write_text("{}")
    monkeypatch.setattr(start, "settings_for_resume", lambda run_dir, given, sources: (
        TrainConfig(device=given.get("device", "cpu"), data="saved.csv", out=str(run_dir), resume=True), None))
    monkeypatch.setattr(start, "pick_device", lambda name: f"picked {name}")
    monkeypatch.setattr(start.distributed, "setup", setup)
    for given, joined in (({}, "picked cpu"), ({"device": "cuda"}, "picked cuda")):  # saved, or --device given now
        with pytest.raises(Joined, match=f"^{joined}$"):
            start.train(out=str(tmp_path), resume=True, **given)


def test_stop_words_name_the_launchers_death_apart_from_a_hangup():
    import signal

    assert distributed.stop_words(distributed.LAUNCHER_GONE) == "the launcher is gone"
    assert distributed.stop_words(signal.SIGHUP) == "SIGHUP" and distributed.stop_words(signal.SIGTERM) == "SIGTERM"
    assert distributed.LAUNCHER_GONE > max(signal.Signals)  # it wins the all-reduce (MAX) of the ranks' requests
    assert datetime.timedelta(seconds=distributed.STOP_GRACE_SECONDS) < datetime.timedelta(seconds=30)  # torchrun's SIGKILL

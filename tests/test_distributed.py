"""`glassbox train` under torchrun: two CPU processes (gloo) train one model data-parallel; rank 0 writes the run."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import one_thread_env
from tests.killing import kill_at_checkpoint


def one_thread() -> dict:
    env = one_thread_env()
    if Path("/sys/class/net/lo").exists():  # gloo talks over loopback: no need for the host name to resolve
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    return env


PROBE = "import torch.distributed as d; d.init_process_group('gloo'); d.barrier(); d.destroy_process_group()"


@pytest.fixture(scope="module", autouse=True)
def process_group_works():
    """Two processes must be able to form a gloo group on this machine (loopback TCP); if the machine
    itself cannot, say so and skip, rather than report glassbox as broken."""
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("this torch build has no gloo backend")
    probe = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                            "--no-python", sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, env=one_thread())
    if probe.returncode != 0:
        pytest.skip(f"two processes cannot form a gloo group here: {probe.stderr.strip().splitlines()[-1:]}")


def torchrun_cmd(*args, nproc=2):
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", "-m", "glassbox", *args]


def torchrun(*args, nproc=2, cwd=None):
    return subprocess.run(torchrun_cmd(*args, nproc=nproc), capture_output=True, text=True, timeout=600, env=one_thread(),
                          cwd=cwd)


def test_two_processes_train_one_model_and_rank_zero_writes_the_run(tmp_path, digits_csv):
    args = ["train", str(digits_csv), "--label", "digit", "--max-steps", "120", "--batch-size", "32", "--eval-every", "20",
            "--patience", "0", "--quiet"]
    r = torchrun(*args, "--out", str(tmp_path / "ddp"))
    assert r.returncode == 0, r.stderr[-3000:]
    single = subprocess.run([sys.executable, "-m", "glassbox", *args, "--out", str(tmp_path / "one")],
                            capture_output=True, text=True, timeout=600, env=one_thread())
    assert single.returncode == 0, single.stderr

    s = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert s["steps"] == 120 and s["test_accuracy"] > 0.9
    ddp = [json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    one = [json.loads(line) for line in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in ddp] == [m["step"] for m in one] == list(range(0, 121, 20))  # one writer, no duplicates
    # each process walks its half of the training split: epochs pass twice as fast, and twice the examples per second
    per_epoch = len(json.loads((tmp_path / "ddp" / "split.json").read_text())["train"]) // 32
    assert one[-1]["epoch"] == 120 // per_epoch and ddp[-1]["epoch"] >= 2 * one[-1]["epoch"]
    assert s["examples_per_second"] > 0 and (tmp_path / "ddp" / "model" / "model.safetensors").exists()


def test_torchrun_without_out_is_refused(tmp_path, digits_csv):
    r = torchrun("train", str(digits_csv), "--label", "digit", "--max-steps", "10", cwd=tmp_path)
    assert r.returncode != 0 and "under torchrun give --out DIR" in r.stderr
    assert not (tmp_path / "runs").exists()  # refused before any default run folder was made


def test_sigkill_then_resume_under_torchrun_is_bit_identical(tmp_path, digits_csv):
    args = ["train", str(digits_csv), "--label", "digit", "--max-steps", "300", "--batch-size", "32", "--eval-every", "20",
            "--checkpoint-every", "7", "--dropout", "0.2", "--patience", "0", "--quiet"]
    full = torchrun(*args, "--out", str(tmp_path / "full"))
    assert full.returncode == 0, full.stderr[-3000:]
    killed = subprocess.Popen(torchrun_cmd(*args, "--out", str(tmp_path / "killed")), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=one_thread(), start_new_session=True)
    try:
        step = kill_at_checkpoint(killed, tmp_path / "killed", lambda s: 40 <= s < 300 and s % 20 != 0, group=True)
    finally:  # a failed assertion must not leave torchrun or its training processes running
        try:
            os.killpg(killed.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # the whole session is gone already
        killed.wait()
    assert not (tmp_path / "killed" / "summary.json").exists()
    resumed = torchrun("train", "--out", str(tmp_path / "killed"), "--resume", "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = load_file(tmp_path / "full" / "model" / "model.safetensors")
    b = load_file(tmp_path / "killed" / "model" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), f"weights differ after resuming from step {step}"


def test_local_block_trains_as_one_process_under_torchrun(monkeypatch):
    # The audit's fold models train inside distributed.local(): each rank alone, no process group joined.
    from glassbox.runtime import distributed

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert distributed.current().world_size == 2 and distributed.current().rank == 1
    with distributed.local():
        assert not distributed.current().enabled and distributed.setup(torch.device("cpu")).world_size == 1
    assert distributed.current().world_size == 2

"""`glassbox train` under torchrun: the gloo probe the torchrun tests share, and what needs no training run (a user
error said once and not retried by torchrun's restarts).
Training under torchrun (1 vs 2 processes, stop and resume on another count, restarts, two nodes):
tests/test_torchrun_world.py."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import one_thread_env


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


def test_torchrun_without_out_is_refused(tmp_path, digits_csv):
    r = torchrun("train", str(digits_csv), "--label", "digit", "--max-steps", "10", cwd=tmp_path)
    assert r.returncode != 0 and "under torchrun give --out DIR" in r.stderr
    assert not (tmp_path / "runs").exists()  # refused before any default run folder was made


def test_local_block_trains_as_one_process_under_torchrun(monkeypatch):
    # The audit's fold models train inside distributed.local(): each rank alone, no process group joined.
    from glassbox.runtime import distributed

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert distributed.current().world_size == 2 and distributed.current().rank == 1
    with distributed.local():
        assert not distributed.current().enabled and distributed.setup(torch.device("cpu")).world_size == 1
    assert distributed.current().world_size == 2


def test_a_user_error_under_torchrun_is_said_once_and_not_retried(tmp_path, digits_csv):
    # 1,797 digits, 80% to train: a global batch of 2048 gives some process no rows. It used to train and stop at
    # step 1 as "diverged", once per restart (the audit each time); now it is refused before the audit, by rank 0
    # alone, and the restart torchrun makes ends at once with the same exit code.
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        "--max-restarts", "1", "-m", "glassbox", "train", str(digits_csv), "--label", "digit",
                        "--batch-size", "2048", "--out", str(out)],
                       capture_output=True, text=True, timeout=300, env=one_thread())
    assert r.returncode != 0
    n = len(json.loads((out / "split.json").read_text())["train"])
    said = [line for line in r.stderr.splitlines() if line.startswith("glassbox:")]
    assert said == [f"glassbox: error: --batch-size 2048 is the global batch, larger than the {n:,} training "
                    f"examples: the 2 processes would not all get their share of rows; use --batch-size {n // 2 * 2} "
                    f"or less (a multiple of 2)"], r.stderr
    attempts = set(re.findall(r"failed \(exitcode: 2\) local_rank: \d+ \(pid: (\d+)\)", r.stderr))
    assert len(attempts) == 2  # torchrun did restart the workers (a failed process logged in each attempt)...
    assert r.stdout.count("data: 1797 tabular examples") == 1  # ...and the restarted attempt ended before reading any
    assert not (out / "audit.json").exists()  # no attempt reached the audit

"""Kill a training process with SIGKILL at a checkpoint the test chooses, without racing it.

The process is frozen (SIGSTOP) before each look at its newest checkpoint, so the checkpoint on disk cannot
move between the look and the kill, however fast the machine trains."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable


def kill_at_checkpoint(proc: subprocess.Popen, run_dir: Path, wanted: Callable[[int], bool], timeout: float = 300,
                       group: bool = False) -> int:
    """SIGKILL `proc` once its newest checkpoint step satisfies `wanted`; return that step.

    group=True signals the process's whole session (start it with start_new_session=True): torchrun
    and the training processes it started."""
    send = (lambda sig: os.killpg(proc.pid, sig)) if group else (lambda sig: os.kill(proc.pid, sig))  # noqa: E731
    latest = run_dir / "checkpoints" / "latest.json"
    deadline = time.time() + timeout
    while time.time() < deadline:
        send(signal.SIGSTOP)
        step = json.loads(latest.read_text())["step"] if latest.exists() else -1
        if step >= 0 and wanted(step):
            send(signal.SIGKILL)
            proc.wait()
            assert proc.returncode == -signal.SIGKILL
            assert json.loads(latest.read_text())["step"] == step
            return step
        send(signal.SIGCONT)
        assert proc.poll() is None, f"the run ended (exit {proc.returncode}) before a wanted checkpoint (last seen: step {step})"
        time.sleep(0.002)
    proc.kill()
    raise AssertionError(f"no wanted checkpoint within {timeout} s")


@contextmanager
def stopped_on_exit(*procs: subprocess.Popen):
    """Kill whichever of `procs` still runs when the block ends: a failed assertion leaves no training behind."""
    try:
        yield
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def torchrun_workers(launcher_pid: int) -> dict[int, int]:
    """rank -> pid of the training processes a torchrun launcher started (its children, each with RANK set)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) != launcher_pid:
                continue
            env = dict(kv.split("=", 1) for kv in (entry / "environ").read_bytes().decode(errors="replace").split("\0")
                       if "=" in kv)
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile, or not ours to read
        if "RANK" in env:
            found[int(env["RANK"])] = int(entry.name)
    return found


def at_checkpoint(pids: Callable[[], list[int]], run_dir: Path, wanted: Callable[[int], bool],
                  act: Callable[[int], None], timeout: float = 300) -> int:
    """Freeze the processes `pids()` (SIGSTOP), look at the newest checkpoint, and once its step satisfies `wanted`
    call act(step) while they are frozen; then let them go on (SIGCONT). Returns that step."""
    latest = run_dir / "checkpoints" / "latest.json"
    deadline = time.time() + timeout
    while time.time() < deadline:
        frozen = pids()
        _signal_all(frozen, signal.SIGSTOP)
        try:
            step = json.loads(latest.read_text())["step"] if latest.exists() else -1
            if step >= 0 and wanted(step):
                act(step)
                return step
        finally:
            _signal_all(frozen, signal.SIGCONT)
        time.sleep(0.002)
    raise AssertionError(f"no wanted checkpoint within {timeout} s")


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass  # already gone

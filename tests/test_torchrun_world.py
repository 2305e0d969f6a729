"""Beyond one process (torchrun, gloo on CPU): --batch-size is the global batch, so 1 and 2 processes take the same
steps; a run stopped on 2 processes resumes on 1; a killed worker is restarted and resumes by itself; two launchers
form one run as two nodes; the world size is recorded in config.json, summary.json, the report and the ledger; every
decision that changes control flow is made once, so the ranks agree when one rank's view differs, and a process
blocked in a collective with a stuck peer ends in one line when asked to stop."""
import json
import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from glassbox.cli import main
from tests.killing import at_checkpoint, stopped_on_exit, torchrun_workers
from tests.test_distributed import one_thread, process_group_works  # noqa: F401  (the module's gloo probe)

STEPS = 50
ARGS = ["--label", "digit", "--model", "mlp", "--max-steps", str(STEPS), "--batch-size", "64", "--eval-every", "1",
        "--checkpoint-every", "5", "--patience", "0", "--dropout", "0"]


def launcher(*launch_args: str, nproc: int = 2) -> list[str]:
    rendezvous = list(launch_args) or ["--standalone"]
    return [sys.executable, "-m", "torch.distributed.run", *rendezvous, f"--nproc_per_node={nproc}", "-m", "glassbox"]


def start(cmd: list[str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=one_thread(),
                            start_new_session=True)


def finish(cmd: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=one_thread())
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def metrics(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def worst_relative_gap(a: list[dict], b: list[dict], key: str = "train_loss") -> float:
    assert [m["step"] for m in a] == [m["step"] for m in b] == list(range(STEPS + 1))
    return max(abs(x[key] - y[key]) / abs(x[key]) for x, y in zip(a[1:], b[1:]))


def same_weights(run_a, run_b) -> bool:
    a, b = (load_file(r / "model" / "model.safetensors") for r in (run_a, run_b))
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two(tmp_path_factory, digits_csv):
    """The reference, uninterrupted on 2 processes: two launchers on this machine as two nodes over the loopback
    address (c10d rendezvous), 1 process each. (The restart test shows it equal, bit for bit, to one launcher
    with 2 processes.)"""
    run = tmp_path_factory.mktemp("world") / "two"
    nodes = ["--nnodes", "2", "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{free_port()}", "--rdzv-id", "t"]
    procs = [start([*launcher(*nodes, nproc=1), "train", str(digits_csv), *ARGS, "--quiet", "--out", str(run)])
             for _ in range(2)]
    with stopped_on_exit(*procs):
        for p in procs:
            _, err = p.communicate(timeout=300)
            assert p.returncode == 0, err[-3000:]
    return run


def test_one_and_two_processes_take_the_same_steps_and_the_run_says_on_how_many(two, tmp_path, digits_csv):
    one = tmp_path / "one"
    # one process, started as the two were (its own interpreter, one thread), so nothing earlier tests left in
    # this process can differ
    finish([sys.executable, "-m", "glassbox", "train", str(digits_csv), *ARGS, "--quiet", "--out", str(one)])
    # the same global batches in the same order: per-step losses differ only by the order of float32 sums
    assert worst_relative_gap(metrics(one), metrics(two)) < 1e-4
    assert worst_relative_gap(metrics(one), metrics(two), "val_loss") < 1e-4
    assert metrics(two)[-1]["epoch"] == metrics(one)[-1]["epoch"] == STEPS // (len(json.loads(
        (two / "split.json").read_text())["train"]) // 64)  # epochs pass as fast as on one process

    s1, s2 = (json.loads((r / "summary.json").read_text()) for r in (one, two))
    assert (s2["world_size"], s2["batch_size_per_process"], s1["world_size"]) == (2, 32, 1)
    assert s2["sessions"] == [{"world_size": 2, "from_step": 0, "to_step": STEPS, "seconds": s2["sessions"][0]["seconds"]}]
    derived = json.loads((two / "config.json").read_text())["derived"]
    assert derived["world_size"]["value"] == 2 and derived["batch_size_per_process"]["value"] == 32
    assert s2["steps"] == STEPS and s2["test_accuracy"] > 0.8 and abs(s2["test_accuracy"] - s1["test_accuracy"]) < 0.02

    # the ledger: the same global batches, plus one more copy of every AdamW update (14 FLOPs a weight) and of
    # every validation pass (one per step and the untrained model's), on the second process
    c1, c2 = s1["cost"], s2["cost"]
    extra = STEPS * 14 * s1["n_params"] + (STEPS + 1) * s1["n_examples"]["val"] * c1["inference"]["flops"]
    assert c2["train"]["flops"] - c1["train"]["flops"] == pytest.approx(extra, rel=1e-9)
    assert c2["processes"] == 2 and c2["peak_flops"] == pytest.approx(2 * c2["peak_per_process"])
    assert c2["train"]["mfu"] == pytest.approx(c2["train"]["flops"] / c2["train"]["seconds"] / c2["peak_flops"])
    assert "matmul peak of 2 processes" in c2["sentence"] and "processes" not in c1["sentence"]
    page = (two / "report.html").read_text()
    assert f"in {STEPS} steps" in page and "on 2 processes (global batch 64, 32 each)" in page


def ended(pid: int) -> bool:
    """The process has exited (a zombie nobody reaped yet has exited too)."""
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_run_stopped_on_two_processes_resumes_on_one_as_if_never_stopped(two, tmp_path, digits_csv, capsys):
    run = tmp_path / "stopped"
    proc = start([*launcher(), "train", str(digits_csv), *ARGS, "--quiet", "--out", str(run)])
    with stopped_on_exit(proc):
        # kill the launcher's whole process group, as a job scheduler would: its workers, in sessions of their own,
        # see the launcher gone and stop together at the end of a step, keeping that step's checkpoint
        everyone = lambda: [proc.pid, *torchrun_workers(proc.pid).values()]  # noqa: E731
        workers = []
        at_checkpoint(everyone, run, lambda step: step >= 25, lambda step: (
            workers.extend(torchrun_workers(proc.pid).values()), os.killpg(proc.pid, signal.SIGKILL)))
        _, err = proc.communicate(timeout=120)  # returns once every worker has closed the pipes
    said = "glassbox: stopped on request (the launcher is gone) at step "
    assert said in err, err[-3000:]
    stopped = int(err.split(said)[1].split()[0])
    assert f"{said}{stopped} of {STEPS}" in err and f"--out {run} --resume" in err
    assert json.loads((run / "checkpoints" / "latest.json").read_text())["step"] == stopped and 25 <= stopped < STEPS
    assert not (run / "summary.json").exists() and len(workers) == 2 and all(map(ended, workers))

    capsys.readouterr()
    assert main(["train", "--out", str(run), "--resume"]) == 0  # one process, in this one
    said = capsys.readouterr().out
    assert f"resuming from the checkpoint at step {stopped} of {STEPS} on 1 process (it trained on 2 processes " in said
    assert worst_relative_gap(metrics(run), metrics(two)) < 1e-4  # steps 1-30 on 2 processes, the rest on 1
    s = json.loads((run / "summary.json").read_text())
    assert [(x["world_size"], x["from_step"], x["to_step"]) for x in s["sessions"]] == [(2, 0, stopped), (1, stopped, STEPS)]
    seconds = [x["seconds"] for x in s["sessions"]]
    assert s["cost"]["processes"] == pytest.approx((2 * seconds[0] + seconds[1]) / sum(seconds))
    assert f"steps 1-{stopped} on 2, steps {stopped + 1}-{STEPS} on 1" in (run / "report.html").read_text()


def test_a_killed_worker_is_restarted_and_the_run_ends_with_the_same_weights(two, tmp_path, digits_csv):
    run = tmp_path / "restarted"
    proc = start([*launcher("--standalone", "--max-restarts", "1"), "train", str(digits_csv), *ARGS, "--out", str(run)])
    with stopped_on_exit(proc):
        workers = lambda: list(torchrun_workers(proc.pid).values())  # noqa: E731
        at_checkpoint(workers, run, lambda step: 20 <= step < STEPS,
                      lambda step: os.kill(torchrun_workers(proc.pid)[1], signal.SIGKILL))
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    assert "torchrun restarted the workers after a failure (restart 1): resuming from the checkpoint at step" in out
    assert "glassbox: error: rank 0: the other processes stopped answering" in err  # one line, no traceback
    assert "[rank0]: Traceback" not in err and "Exception ignored" not in err  # (torchrun's SIGTERM while exiting)
    # equal to the uninterrupted run on two nodes: the restart resumed exactly, and two nodes train as one
    assert same_weights(run, two)
    assert [m["step"] for m in metrics(run)] == list(range(STEPS + 1))  # rank 0 alone wrote, no step twice


def test_the_processes_slices_of_each_global_batch_are_the_one_process_batches_and_resume_on_any_count():
    from glassbox.data.corpus import RandomWindows
    from glassbox.errors import UserError
    from glassbox.runtime.distributed import share
    from glassbox.train.batches import TensorBatches

    x, y = torch.arange(100).float()[:, None], torch.arange(100)
    one = TensorBatches(x, y, 12, seed=3)
    ranks = [TensorBatches(x, y, 12, seed=3, rank=r, world_size=3) for r in range(3)]
    for _ in range(20):  # past the end of an epoch (8 batches of 12; the last 4 examples are dropped)
        assert torch.equal(torch.cat([b.next()[1] for b in ranks]), one.next()[1])
    resumed = TensorBatches(x, y, 12, seed=3, rank=1, world_size=2)  # 3 processes' position, 2 processes now
    resumed.load_state_dict(ranks[0].state_dict())
    assert torch.equal(resumed.next()[1], one.next()[1][6:12])

    ids = np.arange(500, dtype=np.uint16)
    windows = RandomWindows(ids, block_size=8, batch_size=4, seed=1)
    halves = [RandomWindows(ids, block_size=8, batch_size=4, seed=1, rank=r, world_size=2) for r in range(2)]
    for _ in range(3):
        assert torch.equal(torch.cat([h.next()[0] for h in halves]), windows.next()[0])

    assert share(64, 2) == 32
    with pytest.raises(UserError, match=r"--batch-size 64 is the global batch and does not divide among 3 processes; "
                                        r"use a multiple of 3 \(e.g. 63 or 66\)"):
        share(64, 3)


# One torchrun launch, 2 processes, each scenario a fit on the real digits. Rank 1's view is made to differ from
# rank 0's; each rank writes what it did. Without the shared decisions a scenario leaves one rank waiting in a
# collective; the group's timeout is a minute here, so such a failure ends in a minute, not twenty.
SCRIPT = r"""
import datetime, json, math, os, signal, sys, threading, time
import torch
from sklearn.datasets import load_digits
from glassbox.config import TrainConfig
from glassbox.errors import UserError
from glassbox.runtime import distributed
from glassbox.train import loop
from glassbox.train.checkpoint import Checkpointer, Damaged

distributed.COLLECTIVE_TIMEOUT = datetime.timedelta(seconds=60)
distributed.STOP_GRACE_SECONDS = 1.0
rank, folder = int(os.environ["RANK"]), sys.argv[1]
d = load_digits()
x, y = torch.tensor(d.data, dtype=torch.float32) / 16, torch.tensor(d.target)
train, val = (x[:1400], y[:1400]), (x[1400:], y[1400:])
SETTINGS = dict(batch_size=64, eval_every=3, quiet=True, seed=1, threads=1)


def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))


def fit(steps, patience=0, run=None, resume=False, net=None):
    cfg = TrainConfig(max_steps=steps, patience=patience, checkpoint_every=10, resume=resume, **SETTINGS)
    res = loop.fit(net or model(), train, val, config=cfg, run_dir=run)
    return {"reason": res.stop_reason, "steps": res.steps, "best": res.best_step, "diverged": (res.diverged or {}).get("step"),
            "losses": [h["val_loss"] for h in res.history], "from": [s["from_step"] for s in res.sessions]}


REAL = loop.evaluate
def evaluations(fault):  # this rank's n-th evaluation (the untrained model's is the 1st) scores fault(loss, n)
    calls = [0]
    def evaluate(*args, **kwargs):
        loss, accuracy = REAL(*args, **kwargs)
        calls[0] += 1
        return fault(loss, calls[0]), accuracy
    return evaluate


out = {}
# rank 1's 4th evaluation is NaN (it alone would stop, diverged), and from its 5th on its loss only rises (it alone
# would stop early, patience 2)
loop.evaluate = evaluations(lambda loss, n: math.nan if n == 4 else loss + n if n > 4 else loss) if rank == 1 else REAL
out["rank 1's evaluations"] = fit(30, patience=2)
# rank 0's 4th evaluation is NaN: every rank stops there, diverged
loop.evaluate = evaluations(lambda loss, n: math.nan if n == 4 else loss) if rank == 0 else REAL
out["rank 0's evaluation"] = fit(30)
loop.evaluate = REAL

# checkpoints at steps 10 and 20; rank 1 sees an older listing (latest.json naming step 10, no step 20), as a
# network file system not yet in step would show it
run = f"{folder}/run"
fit(20, run=run)
if rank == 1:
    Checkpointer.candidates = lambda self: ([self.dir / "step-0000010"], None)
out["rank 1's listing"] = fit(30, run=run, resume=True)
# rank 1 cannot read step 30, the newest intact checkpoint rank 0 finds: every rank refuses alike
if rank == 1:
    real_read = Checkpointer.read
    def read(self, folder, model):
        if folder.name == "step-0000030":
            raise Damaged(folder / "model.safetensors", "cannot be read on rank 1 (a test)")
        return real_read(self, folder, model)
    Checkpointer.read = read
try:
    fit(40, run=run, resume=True)
except UserError as e:
    out["rank 1 cannot read"] = str(e)

# a peer that does not answer within a group's timeout: gloo's error, worded as one line
quick = torch.distributed.new_group(backend="gloo", timeout=datetime.timedelta(seconds=1))
if rank == 0:
    try:
        torch.distributed.all_reduce(torch.ones(1), group=quick)
    except RuntimeError as e:
        out["timeout"] = distributed.lost_peers(e)
else:
    time.sleep(2)
torch.distributed.barrier()
with open(f"{folder}/rank{rank}.json", "w") as f:  # a file each: printed lines can interleave
    json.dump(out, f)


class Stuck(torch.nn.Module):  # rank 1 stops answering in its 5th training step; rank 0 is asked to stop meanwhile
    def __init__(self):
        super().__init__()
        self.net, self.calls = model(), 0

    def forward(self, x):
        if self.training:
            self.calls += 1
            if self.calls == 5 and rank == 1:
                time.sleep(600)
            if self.calls == 5 and rank == 0:
                threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
        return self.net(x)


fit(30, net=Stuck())
print(f"rank {rank}: the stuck step ended", flush=True)  # never: each rank ends in the stop watcher
"""


def test_all_ranks_take_the_same_path_when_one_ranks_view_differs(tmp_path):
    script = tmp_path / "views.py"
    script.write_text(SCRIPT)
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        str(script), str(tmp_path)], capture_output=True, text=True, timeout=240, env=one_thread())
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    faulty, nan, listing = (ranks[0][key] for key in ("rank 1's evaluations", "rank 0's evaluation", "rank 1's listing"))
    for key in ("rank 1's evaluations", "rank 0's evaluation", "rank 1's listing"):
        assert ranks[0][key] == ranks[1][key], key  # the same steps, stop, sweet spot and figures on both ranks
    # rank 1's faults changed nothing: rank 0's figures, to its last step
    assert faulty["reason"] == "max_steps" and faulty["steps"] == 30 and len(faulty["losses"]) == 11
    assert all(a > b for a, b in zip(faulty["losses"], faulty["losses"][1:5]))  # real learning, no NaN, no rise
    assert (nan["reason"], nan["steps"], nan["diverged"]) == ("diverged", 9, 9)  # rank 0's NaN stops both
    assert listing["from"] == [0, 20] and listing["steps"] == 30  # both continued from rank 0's choice, step 20
    said = "cannot be read by rank 1"
    assert said in ranks[0]["rank 1 cannot read"] and "whose own line says why" in ranks[0]["rank 1 cannot read"]
    assert "(" in ranks[1]["rank 1 cannot read"] and "cannot be read on rank 1 (a test)" in ranks[1]["rank 1 cannot read"]
    assert ranks[0]["timeout"].startswith("rank 0: the other processes did not answer within the collective timeout ")
    assert ranks[0]["timeout"].endswith(f"--out {tmp_path}/run --resume (N: any number of processes)")

    # the stuck peer: rank 0, asked to stop while blocked in a collective, gives up in one line after the grace
    # period; rank 1, stopped by torchrun, goes silently; neither is left behind
    assert r.returncode != 0 and "the stuck step ended" not in r.stdout
    line = ("glassbox: error: rank 0: stopped on request (SIGTERM), but the step in progress did not end within 1 s: "
            "this process is waiting in a collective for another process that is gone or stuck")
    assert r.stderr.count(line) == 1 and "rank 1: stopped" not in r.stderr, r.stderr[-3000:]
    assert "Traceback" not in r.stderr.split(line)[0]

"""A run whose loss or gradient goes infinite or NaN stops at that step, keeps the best weights that beat the
untrained model (or saves none), records `diverged` in summary.json and exits with code 3 in one line."""
import json
import math
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

import glassbox
from glassbox.train.loop import evaluate
from tests.conftest import shared, subprocess_env
from tests.test_distributed import one_thread, process_group_works  # noqa: F401  (skips where gloo cannot run)


def glassbox_cli(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "glassbox", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env=env or subprocess_env())


def one_line_exit_3(r, lr_shown: str):
    assert r.returncode == 3, r.stderr[-2000:]
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("glassbox: training diverged at step ") and "lower --lr" in r.stderr
    assert f"this run used {lr_shown}" in r.stderr


def test_table_at_lr_1e12_stops_at_once_and_saves_no_model(tmp_path, digits_csv):
    r = glassbox_cli("train", str(digits_csv), "--label", "digit", "--optimizer", "sgd", "--lr", "1e12",
                     "--max-steps", "200", "--quiet", "--out", str(tmp_path / "run"))
    one_line_exit_3(r, "1e+12")
    assert "check the data's scale" in r.stderr
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    d = s["diverged"]
    assert s["stop_reason"] == "diverged" and s["steps"] == d["step"] - 1 < 200  # the diverging update never ran
    assert d["restored"] is False and s["artifact"] is None and not (tmp_path / "run" / "model").exists()
    assert s["audit"]["errors"] == 0  # what the audit found is in the summary of a diverged run too
    batch_size = json.loads((tmp_path / "run" / "config.json").read_text())["batch_size"]
    assert (s["world_size"], s["batch_size_per_process"]) == (1, batch_size)  # as a finished run records them
    assert s["sessions"] == [{"world_size": 1, "from_step": 0, "to_step": s["steps"],
                              "seconds": pytest.approx(s["train_seconds"])}]
    assert d["lr"] == pytest.approx(1e12 * d["step"] / json.loads((tmp_path / "run" / "config.json").read_text())
                                    ["derived"]["warmup_steps"]["value"])  # the warm-up's lr at that step
    assert not (isinstance(d["loss"], float) and math.isfinite(d["loss"])
                and isinstance(d["grad_norm"], float) and math.isfinite(d["grad_norm"]))
    for written in (tmp_path / "run").rglob("*.json*"):  # no JSON the project writes holds NaN or Infinity
        for text in written.read_text().splitlines() if written.suffix == ".jsonl" else [written.read_text()]:
            json.loads(text, parse_constant=lambda name: pytest.fail(f"{written.name} holds {name}"))
    assert f"diverged at step {d['step']}" in s["verdict"] and "no model is saved" in s["verdict"]
    page = (tmp_path / "run" / "report.html").read_text()
    assert "training diverged" in page and "max_steps" not in page and "early_stop" not in page


def test_table_that_diverges_after_a_good_best_exports_the_best(tmp_path, digits_csv):
    # lr warms up from 0 to 1000 over 1000 steps: the first evaluations learn, then sgd blows up (near lr 200)
    # the plain MLP (--model mlp): its learning is what this schedule was set for
    r = glassbox_cli("train", str(digits_csv), "--label", "digit", "--model", "mlp", "--optimizer", "sgd", "--lr", "1000",
                     "--warmup-steps", "1000", "--max-steps", "1000", "--eval-every", "2", "--patience", "0",
                     "--quiet", "--out", str(tmp_path / "run"))
    one_line_exit_3(r, "1000")
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    best = min(logged[1:], key=lambda m: m["val_loss"])
    assert s["diverged"]["restored"] is True and best["val_loss"] < logged[0]["val_loss"]  # beat the untrained model
    assert s["best_step"] == best["step"] < s["diverged"]["step"] and logged[-1]["step"] < s["diverged"]["step"]
    assert all(math.isfinite(m["val_loss"]) for m in logged)
    # the exported weights are the best evaluation's: their validation loss, measured again, is the one logged then
    assert s["val_loss"] == pytest.approx(best["val_loss"], rel=1e-5)
    assert (tmp_path / "run" / "model" / "model.safetensors").exists()
    assert s["test_accuracy"] > s["chance"]["majority_accuracy"] + 0.1
    assert f"restored the weights from step {best['step']}" in s["verdict"]


def test_tiny_language_model_diverges_in_one_line(tmp_path):
    corpus = tmp_path / "shakespeare_60k.txt"
    corpus.write_text(shared("tinyshakespeare", "input.txt").read_text(encoding="utf-8")[:60_000], encoding="utf-8")
    r = glassbox_cli("train", str(corpus), "--task", "lm", "--n-layer", "1", "--n-head", "2", "--n-embd", "32",
                     "--block-size", "32", "--batch-size", "16", "--max-steps", "30", "--lr", "1e8", "--quiet",
                     "--out", str(tmp_path / "lm"))
    one_line_exit_3(r, "1e+08")
    assert "data's scale" not in r.stderr  # a corpus has no scale to check
    s = json.loads((tmp_path / "lm" / "summary.json").read_text())
    assert s["task"] == "lm" and s["stop_reason"] == "diverged" and s["steps"] < 30
    assert s["diverged"]["restored"] is False and not (tmp_path / "lm" / "model").exists()


def digits():
    d = load_digits()
    return torch.tensor(d.data, dtype=torch.float32) / 16, torch.tensor(d.target)


class LossGoesInfinite:
    """Cross-entropy, plus +inf at the `at`-th training step: a constant added, so the gradients stay finite."""

    def __init__(self, at: int):
        self.at, self.calls = at, 0

    def __call__(self, logits, y):
        loss = F.cross_entropy(logits, y)
        if not torch.is_grad_enabled():  # an evaluation, not a training step
            return loss
        self.calls += 1
        return loss + float("inf") if self.calls == self.at else loss


def test_fit_stops_at_the_first_infinite_loss_and_restores_the_best():
    x, y = digits()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    res = glassbox.fit(model, (x[:1200], y[:1200]), (x[1200:1500], y[1200:1500]), loss_fn=LossGoesInfinite(at=25),
                       config={"max_steps": 100, "batch_size": 32, "lr": 3e-3, "eval_every": 10, "patience": 0,
                               "quiet": True})
    assert res.stop_reason == "diverged" and res.diverged["step"] == 25 and res.steps == 24
    assert res.diverged["loss"] == "inf" and math.isfinite(res.diverged["grad_norm"])
    assert [h["step"] for h in res.history] == [0, 10, 20]
    assert res.diverged["restored"] and res.best_step == 20
    loss, _ = evaluate(res.model, (x[1200:1500], y[1200:1500]))
    assert loss == pytest.approx(res.history[-1]["val_loss"], rel=1e-6)


RANK_ONE_SCRIPT = """
import json, sys, torch, torch.nn as nn, torch.nn.functional as F, torch.distributed as dist
from sklearn.datasets import load_digits
import glassbox

calls = [0]
def loss_fn(logits, y):  # +inf on rank 1 alone at its 7th training step: its gradients stay finite
    loss = F.cross_entropy(logits, y)
    if torch.is_grad_enabled():
        calls[0] += 1
        if dist.get_rank() == 1 and calls[0] == 7:
            return loss + float("inf")
    return loss

d = load_digits()
x, y = torch.tensor(d.data, dtype=torch.float32) / 16, torch.tensor(d.target)
torch.manual_seed(0)
res = glassbox.fit(nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)), (x[:1200], y[:1200]),
                   (x[1200:1500], y[1200:1500]), loss_fn=loss_fn,
                   config={"max_steps": 40, "batch_size": 32, "eval_every": 5, "patience": 0, "quiet": True})
with open(f"{sys.argv[1]}/rank{dist.get_rank()}.json", "w") as f:  # a file each: printed lines can interleave
    json.dump({"rank": dist.get_rank(), "reason": res.stop_reason, "steps": res.steps,
               "step": (res.diverged or {}).get("step")}, f)
dist.destroy_process_group()  # leave the group together: a rank that exits first can fail the other's teardown
"""


def test_every_rank_stops_at_the_step_one_rank_diverged(tmp_path):
    # DDP averages gradients, so a NaN gradient on one rank reaches all; an infinite loss with finite gradients does
    # not: without the all-reduced flag rank 1 would stop alone and rank 0 would wait for it forever.
    script = tmp_path / "rank_one.py"
    script.write_text(RANK_ONE_SCRIPT)
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        str(script), str(tmp_path)], capture_output=True, text=True, timeout=180, env=one_thread())
    assert r.returncode == 0, r.stderr[-3000:]
    results = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert results == [{"rank": 0, "reason": "diverged", "steps": 6, "step": 7},
                       {"rank": 1, "reason": "diverged", "steps": 6, "step": 7}]


def test_torchrun_run_at_lr_1e12_stops_on_every_rank(tmp_path, digits_csv):
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        "-m", "glassbox", "train", str(digits_csv), "--label", "digit", "--optimizer", "sgd",
                        "--lr", "1e12", "--max-steps", "200", "--quiet", "--out", str(tmp_path / "ddp")],
                       capture_output=True, text=True, timeout=300, env=one_thread())
    assert r.returncode != 0 and "glassbox: training diverged at step " in r.stderr  # rank 0 exits 3, torchrun fails
    assert "Traceback (most recent call last)" not in r.stderr.split("glassbox: training diverged")[0]
    s = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert s["stop_reason"] == "diverged" and s["steps"] == s["diverged"]["step"] - 1 < 200
    assert not (tmp_path / "ddp" / "model").exists()


def test_the_data_scale_advice_only_where_inputs_are_numbers_as_given():
    from glassbox.config import TrainConfig
    from glassbox.train.loop import divergence

    def advice(inputs, **settings):
        return divergence(5, 1.0, float("inf"), 1.0, False, TrainConfig(**settings), inputs)["advice"]

    scale = "check the data's scale"
    assert scale in advice(torch.randn(4, 64), data="table.csv")            # table columns
    assert scale in advice(torch.randn(4, 3, 8, 8))                          # raw image tensors through the Python API
    assert scale not in advice(torch.randn(4, 3, 8, 8), data="photos/")     # a run's images: standardised per channel
    assert scale not in advice(torch.randint(0, 99, (4, 16)), data="sms.tsv", text="text")  # token ids
    assert advice(torch.randn(4, 64)).startswith("lower --lr (this run used 0.003 with adamw)")

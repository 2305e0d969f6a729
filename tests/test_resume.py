"""A run killed with SIGKILL mid-epoch and resumed ends with weights bit-identical to an uninterrupted run."""
import json
import subprocess
import sys

import torch
from tests.conftest import one_thread_env
from tests.killing import kill_at_checkpoint, stopped_on_exit
from safetensors.torch import load_file

from glassbox.cli import main

MAX_STEPS = 400
# The plain MLP: resuming is the same for every model, and on these 64 pixel columns the default MLP-PLR ensemble
# costs several times its step time.
ARGS = ["--label", "digit", "--model", "mlp", "--max-steps", str(MAX_STEPS), "--batch-size", "32", "--eval-every", "20",
        "--checkpoint-every", "7", "--dropout", "0.2", "--patience", "0", "--seed", "5", "--quiet"]


def train(data, out, *extra):
    return subprocess.Popen([sys.executable, "-m", "glassbox", "train", str(data), *ARGS, "--out", str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=one_thread_env())


def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path, digits_csv):
    full = train(digits_csv, tmp_path / "full")
    killed = train(digits_csv, tmp_path / "killed")
    with stopped_on_exit(full, killed):
        split = tmp_path / "killed" / "split.json"  # written before training starts
        per_epoch = lambda: len(json.loads(split.read_text())["train"]) // 32  # noqa: E731
        # resume from a checkpoint past the first epoch and mid-epoch
        kill_at_checkpoint(killed, tmp_path / "killed", lambda step: 50 <= step < MAX_STEPS and step % per_epoch() != 0)
        assert not (tmp_path / "killed" / "summary.json").exists()

        resumed = subprocess.run([sys.executable, "-m", "glassbox", "train", "--out", str(tmp_path / "killed"), "--resume",
                                  "--quiet"], capture_output=True, text=True, timeout=300, env=one_thread_env())
        assert resumed.returncode == 0, resumed.stderr
        assert full.wait(timeout=300) == 0, full.stderr.read()

    a = load_file(tmp_path / "full" / "model" / "model.safetensors")
    b = load_file(tmp_path / "killed" / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    ma = (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()
    mb = (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()
    strip = lambda lines: [{k: v for k, v in json.loads(l).items() if k != "examples_per_s"} for l in lines]  # noqa: E731
    assert strip(ma) == strip(mb)
    sa, sb = (json.loads((tmp_path / r / "summary.json").read_text()) for r in ("full", "killed"))
    assert sa["best_step"] == sb["best_step"] and sa["test_loss"] == sb["test_loss"]


def test_resuming_a_run_that_stopped_early_trains_no_further(tmp_path, digits_csv, capsys):
    out = tmp_path / "run"
    args = ["train", str(digits_csv), "--label", "digit", "--out", str(out), "--epochs", "40", "--patience", "1",
            "--eval-every", "20"]
    assert main([*args, "--quiet"]) == 0
    first = json.loads((out / "summary.json").read_text())
    weights = (out / "model" / "model.safetensors").read_bytes()
    assert first["stopped_early"] and first["steps"] < 40 * 23
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0
    assert "training had already finished" in capsys.readouterr().out
    again = json.loads((out / "summary.json").read_text())
    assert (again["steps"], again["best_step"], again["stop_reason"]) == (first["steps"], first["best_step"], "early_stop")
    assert (out / "model" / "model.safetensors").read_bytes() == weights

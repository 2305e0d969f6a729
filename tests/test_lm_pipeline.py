"""A small GPT on a slice of tinyshakespeare, through the CLI: it learns, generates deterministically
from the artifact alone, reports its knowledge cutoff, and resumes exactly after SIGKILL."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from glassbox.cli import main
from tests.conftest import one_thread_env, shared
from tests.killing import kill_at_checkpoint, stopped_on_exit

TINY = ["--task", "lm", "--n-layer", "2", "--n-head", "2", "--n-embd", "64", "--block-size", "32",
        "--batch-size", "16", "--lr", "3e-3", "--quiet"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    text = shared("tinyshakespeare", "input.txt").read_text(encoding="utf-8")[:200_000]
    path = tmp_path_factory.mktemp("corpus") / "shakespeare_slice.txt"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def lm_run(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("lm") / "run"
    assert main(["train", str(corpus), *TINY, "--max-steps", "300", "--out", str(out)]) == 0
    return out


def test_small_gpt_learns_and_reports(lm_run, corpus):
    s = json.loads((lm_run / "summary.json").read_text())
    assert s["task"] == "lm" and s["vocab_size"] > 40
    assert s["chance_loss"] == pytest.approx(math.log(s["vocab_size"]))
    assert s["val_loss"] < 0.7 * s["chance_loss"]  # clearly below knowing nothing
    assert s["perplexity"] == pytest.approx(math.exp(s["val_loss"]))
    assert len(s["samples"]) == 3
    # tokens/s is the tokens trained on (steps x 16 windows x 32 tokens) over the training time
    assert s["tokens_per_second"] * s["train_seconds"] == pytest.approx(s["steps"] * 16 * 32, rel=1e-9)
    memo = json.loads((lm_run / "memorization.json").read_text())
    assert memo["summary"] == s["memorization"]
    # novelty: 8 samples of 400 characters (a char tokenizer: one token, one character), n-grams at 8, 13, 32 characters
    for part in ("novelty", "novelty_of_held_out_text"):
        by_n = memo[part]["by_n"]
        assert [b["n"] for b in by_n] == [8, 13, 32]
        assert [b["ngrams"] for b in by_n] == [8 * (400 - n + 1) for n in (8, 13, 32)]
        assert all(b["share"] == b["copied"] / b["ngrams"] for b in by_n)
    # the held-out baseline, recomputed over the whole validation text: Shakespeare shares 31% of its
    # 8-character stretches and 4% of its 13-character ones with the 180,000 training characters
    text = corpus.read_text(encoding="utf-8")
    train_text, val_text = text[:s["corpus"]["characters"]["train"]], text[s["corpus"]["characters"]["train"]:]
    for b in memo["novelty_of_held_out_text"]["by_n"][:2]:
        seen = {train_text[i:i + b["n"]] for i in range(len(train_text) - b["n"] + 1)}
        share = np.mean([val_text[i:i + b["n"]] in seen for i in range(len(val_text) - b["n"] + 1)])
        assert b["share"] == pytest.approx(share, abs=0.05)
    # 300 steps of a 2-layer model: its text copies far fewer 8-character stretches than real text shares
    assert memo["novelty"]["by_n"][0]["share"] < 0.5 * memo["novelty_of_held_out_text"]["by_n"][0]["share"]
    for example in memo["novelty"]["examples"]:  # any copied stretch it reports is in the training text
        assert len(example) == 32 and example in train_text
    ex = memo["extraction"]
    assert ex["train"]["n"] == ex["val"]["n"] == 200
    assert ex["difference"] == pytest.approx(ex["train"]["rate"] - ex["val"]["rate"])
    assert all(0 <= ex[split]["token_match"] <= 1 for split in ("train", "val"))
    assert (lm_run / "data" / "train.bin").stat().st_size == 2 * s["corpus"]["tokens"]["train"]  # uint16 on disk


def test_generate_is_deterministic_from_the_artifact_alone(lm_run, tmp_path, capsys):
    import shutil

    art = tmp_path / "artifact"
    shutil.copytree(lm_run / "model", art)  # nothing but the artifact
    outs = []
    for seed in (1, 1, 2):
        assert main(["generate", str(art), "--prompt", "ROMEO:", "--max-new-tokens", "80", "--seed", str(seed)]) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1] and outs[0] != outs[2] and outs[0].startswith("ROMEO:")
    assert main(["generate", str(art), "--info"]) == 0
    info = capsys.readouterr().out
    assert "knows nothing" in info and "never changes its weights" in info


def test_prompt_with_unknown_characters_is_refused(lm_run, capsys):
    assert main(["generate", str(lm_run / "model"), "--prompt", "ROMEO§"]) == 2
    assert "'§'" in capsys.readouterr().err


def test_lm_resume_after_sigkill_is_bit_identical(corpus, tmp_path):
    args = [*TINY, "--max-steps", "200", "--eval-every", "25", "--checkpoint-every", "10", "--dropout", "0.1"]
    cmd = lambda out: [sys.executable, "-m", "glassbox", "train", str(corpus), *args, "--out", str(out)]  # noqa: E731
    full = subprocess.Popen(cmd(tmp_path / "full"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=one_thread_env())
    killed = subprocess.Popen(cmd(tmp_path / "killed"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=one_thread_env())
    with stopped_on_exit(full, killed):
        kill_at_checkpoint(killed, tmp_path / "killed", lambda step: 40 <= step < 200)
        r = subprocess.run([sys.executable, "-m", "glassbox", "train", "--out", str(tmp_path / "killed"), "--resume", "--quiet"],
                           capture_output=True, text=True, timeout=600, env=one_thread_env())
        assert r.returncode == 0, r.stderr
        assert full.wait(timeout=600) == 0, full.stderr.read()
    a = load_file(tmp_path / "full" / "model" / "model.safetensors")
    b = load_file(tmp_path / "killed" / "model" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_corpus_errors(tmp_path, capsys):
    (tmp_path / "empty.txt").write_text("")
    assert main(["train", str(tmp_path / "empty.txt"), "--task", "lm", "--out", str(tmp_path / "r1")]) == 2
    (tmp_path / "tiny.txt").write_text("to be or not")
    assert main(["train", str(tmp_path / "tiny.txt"), "--task", "lm", "--out", str(tmp_path / "r2")]) == 2
    (tmp_path / "bin.txt").write_bytes(b"\x00\x01\x02binary" * 100)
    assert main(["train", str(tmp_path / "bin.txt"), "--task", "lm", "--out", str(tmp_path / "r3")]) == 2
    errs = capsys.readouterr().err.splitlines()
    assert len(errs) == 3 and all(e.startswith("glassbox: error:") for e in errs)

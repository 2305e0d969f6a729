"""The end-of-training verdict claims memorising only on evidence: validation loss above the best by more than twice
its own scatter between evaluations, on two or more evaluations and still at the last, while training loss fell."""
import json
import math
from pathlib import Path

import numpy as np
import pytest

from glassbox.cli import main
from glassbox.report.card import performance
from glassbox.report.load import Run
from glassbox.report import worries
from glassbox.report.summary import load_summary
from glassbox.train.early_stopping import explain, val_noise
from tests.conftest import shared

SCATTER = 0.6745 * math.sqrt(6)  # for independent scatter s, |second difference| has median 0.6745 * sqrt(6) * s


def history(val: list[float], train: list[float] | None = None, every: int = 10) -> list[dict]:
    """Evaluations at steps 0, 10, 20, ...: the untrained model's first, then one per val loss given."""
    train = train or [1.0 - 0.01 * i for i in range(len(val))]  # falling unless told otherwise
    return [{"step": 0, "train_loss": None, "val_loss": 2.3}] + [
        {"step": every * (i + 1), "train_loss": t, "val_loss": v} for i, (v, t) in enumerate(zip(val, train))]


def verdict(h: list[dict], reason: str = "max_steps") -> str:
    best = min(h[1:], key=lambda r: r["val_loss"])["step"]  # the first of equal lows, as EarlyStopping keeps it
    return explain(h, best, reason == "early_stop", reason)


def test_noise_is_the_scatter_around_a_trend():
    # a steady fall of 0.02 per evaluation with +-0.01 on top: every second difference is exactly +-0.04
    h = history([1.0 - 0.02 * i + 0.01 * (-1) ** i for i in range(12)])
    assert val_noise(h) == pytest.approx(0.04 / SCATTER, rel=1e-9)
    assert val_noise(history([1.0, 0.9, 0.8, 0.7])) is None  # two second differences are too few to judge


def test_a_noisy_plateau_with_the_best_near_the_end_is_not_memorising():
    val = [1.0, 0.7, 0.5] + [0.40 + 0.01 * (-1) ** i for i in range(10)] + [0.385, 0.41, 0.39, 0.405]
    v = verdict(history(val))
    assert "memorise" not in v.replace("no clear sign of memorising", "")
    assert "no clear sign of memorising" in v and "more steps may help" in v and "step 140 (0.3850)" in v
    assert "max_steps" not in v and "Training ran to its last step" in v


def test_a_rise_beyond_the_noise_on_several_evaluations_while_training_falls_is_memorising():
    val = [1.0, 0.8, 0.6, 0.5, 0.45, 0.44, 0.46, 0.50, 0.55, 0.60]
    h = history(val)
    later = np.array(val[-6:])
    noise = np.median(np.abs(np.diff(later, 2))) / SCATTER  # 0.015 / 1.652, by hand: 0.0091
    assert val_noise(h) == pytest.approx(noise, rel=1e-9) and noise == pytest.approx(0.00908, abs=1e-5)
    v = verdict(h, "early_stop")
    line = 0.44 + 2 * noise
    assert "began to memorise" in v and f"4 of the 4 evaluations after it were above {line:.4f}" in v
    assert "early_stop" not in v and "Stopped early (--patience evaluations without improvement)" in v


def test_one_spike_or_a_rise_that_falls_back_is_not_memorising():
    plateau = [1.0, 0.7, 0.5] + [0.40 + 0.01 * (-1) ** i for i in range(9)]
    spike = plateau[:7] + [0.90] + plateau[8:]  # one wild evaluation, then back within the scatter
    v = verdict(history(spike))
    assert "began to memorise" not in v and "on only 1 of them and fell back" in v
    back = plateau + [0.6, 0.6, 0.40]  # above the line twice, but the last evaluation is back down
    v = verdict(history(back))
    assert "began to memorise" not in v and "on only 2 of them and fell back" in v


def test_a_rise_while_training_loss_also_stopped_falling_is_not_memorising():
    val = [1.0, 0.8, 0.6, 0.5, 0.45, 0.44, 0.46, 0.50, 0.55, 0.60]
    train = [1.0, 0.8, 0.6, 0.5, 0.45, 0.40, 0.41, 0.42, 0.43, 0.44]
    v = verdict(history(val, train), "early_stop")
    assert "began to memorise" not in v and "stopped learning" in v


def test_too_few_evaluations_to_judge_say_so():
    v = verdict(history([1.0, 0.5, 0.6, 0.7]))
    assert "began to memorise" not in v and "too few evaluations to tell a rise from noise" in v


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "run"
    assert main(["demo", "--out", str(out)]) == 0
    return out


def test_the_digits_demo_verdict_follows_its_own_evaluations(demo_run):
    s = json.loads((demo_run / "summary.json").read_text())
    h = [json.loads(line) for line in (demo_run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in h if r["step"] > 0]
    best = min(evals, key=lambda r: r["val_loss"])
    later = np.array([r["val_loss"] for r in evals][-max(6, len(evals) // 2):])
    noise = np.median(np.abs(np.diff(later, 2))) / SCATTER
    risen = [r for r in evals if r["step"] > best["step"] and r["val_loss"] > best["val_loss"] + 2 * noise]
    memorising = len(risen) >= 2 and risen[-1] is evals[-1] and evals[-1]["train_loss"] < best["train_loss"]
    assert s["best_step"] == best["step"] and f"step {best['step']} " in s["verdict"]
    assert f"({best['val_loss']:.4f})" in s["verdict"]
    assert ("began to memorise" in s["verdict"]) == memorising
    # measured on this demo (12 epochs at batch 128): validation loss was still at its lowest at the last step
    # (0.0472 at step 144), so the verdict says so and makes no claim about memorising
    assert not memorising
    if best is evals[-1]:
        assert "with validation loss still at its lowest" in s["verdict"] and "more steps may still help" in s["verdict"]
    else:
        assert "no clear sign of memorising" in s["verdict"]
    page = (demo_run / "report.html").read_text()
    assert "max_steps" not in page and "early_stop" not in page
    assert f"Training stopped at step {s['steps']} (" in page


def test_prose_counts_and_intervals_read_as_a_person_writes_them(tmp_path):
    assert "from 1 example," in worries.test_size(load_summary({"n_examples": {"test": 1}, "test_accuracy": 1.0}))[1]
    one = {"per_class": {"macro": {"f1": 0.9}, "worst_class": "a", "classes": [
        {"name": "a", "f1": 0.5, "recall": 1.0, "support": 1}, {"name": "b", "f1": 1.0, "recall": 1.0, "support": 9}]}}
    assert "of the 1 test example of that class" in worries.worst_class(load_summary(one))[1]
    gap = {"column": "sex", "value": "f", "gap": 0.038}
    run = Run(tmp_path, load_summary({"test_accuracy": 0.9, "n_examples": {"test": 1}, "chance": {"majority_accuracy": 0.5},
                                      "groups": {"largest_gap": gap, "columns": {"sex": {"worst": {"gap_ci": [0.034, 0.041]}}}}}))
    text = performance(run)
    assert "on 1 example " in text and "3.8 points below the rest (95% interval of the gap 3.4 – 4.1 " \
                                       "points)" in text
    # Adult by sex: men 0.842 against women 0.938 is a gap against the rest, not against the overall 0.874
    worst = {"value": "Male", "accuracy": 0.842, "rest_accuracy": 0.938, "gap": 0.096, "gap_ci": [0.087, 0.105],
             "gap_ci_adjusted": [0.085, 0.107]}
    groups = {"largest_gap": {"column": "sex", "value": "Male", "gap": 0.096},
              "columns": {"sex": {"worst": worst, "overall": {"accuracy": 0.874}}}}
    text = performance(Run(tmp_path, load_summary({"test_accuracy": 0.874, "groups": groups})))
    assert ("Largest group gap: sex=Male, 9.6 points below the rest (84.2% against 93.8% for everyone else; overall "
            "87.4%; 95% interval of the gap 8.7 – 10.5 points, beyond noise).") in text
    # the report's worry and the terminal's verdict say the same of a run whose best step was its last: "may"
    said = worries.stopping(load_summary({"steps": 120, "best_step": 120, "stopped_early": False}))[1]
    assert said.endswith("(its best was at the last step, 120): more steps may help.")


def test_language_model_names_both_validation_losses(tmp_path):
    corpus = tmp_path / "shakespeare_60k.txt"
    corpus.write_text(shared("tinyshakespeare", "input.txt").read_text(encoding="utf-8")[:60_000], encoding="utf-8")
    out = tmp_path / "lm"  # a 16-token context: 375 validation windows, more than the 256 the curve reads
    assert main(["train", str(corpus), "--task", "lm", "--n-layer", "1", "--n-head", "2", "--n-embd", "32",
                 "--block-size", "16", "--batch-size", "16", "--max-steps", "20", "--quiet", "--out", str(out)]) == 0
    s = json.loads((out / "summary.json").read_text())
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    best = min(logged[1:], key=lambda r: r["val_loss"])
    assert s["curve_val_windows"] == 256 < s["val_windows"] == (s["corpus"]["tokens"]["val"] - 1) // 16
    assert s["curve_val_loss"] == pytest.approx(best["val_loss"]) and s["curve_val_loss"] != s["val_loss"]
    page = (out / "report.html").read_text()
    assert f"on all {s['val_windows']} validation windows" in page
    assert f"256 of them, spread evenly over the text ({best['val_loss']:.4f} at the sweet spot)" in page

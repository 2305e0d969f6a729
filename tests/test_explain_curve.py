"""glassbox explain and glassbox curve on real data: every printed figure checked against torch's own
F.cross_entropy, autograd and AdamW, scikit-learn, torchmetrics, scipy and analytic counts."""
from __future__ import annotations

import contextlib
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from glassbox.cli import main
from glassbox.data.builtin import load_builtin
from glassbox.models.registry import build_model
from glassbox.run.curve.training import (FRACTIONS, nested_subsets, over_repeats, paired_interval, repeats_words,
                                         train_on)
from glassbox.run.curve.skew import figures
from glassbox.run.explain.step import DROPOUT_SEED
from glassbox.run.model_for_data import make_encoder, model_config
from glassbox.run.settings import settings_for_new_run
from tests.conftest import shared
from tests.test_report import chromium, render

ADULT_COLUMNS = ("age,workclass,fnlwgt,education,education_num,marital,occupation,relationship,race,sex,gain,loss,hours,"
                 "country,income")


def run_cli(args: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(args) == 0
    return out.getvalue()


@pytest.fixture(scope="module")
def explained(tmp_path_factory):
    """glassbox explain on the real digits: one step explained, then 6 on the same batch."""
    out = tmp_path_factory.mktemp("explain") / "run"
    printed = run_cli(["explain", "digits", "--out", str(out), "--steps", "6", "--every", "2"])
    return out, printed, json.loads((out / "explain.json").read_text())


def rebuilt_digits(out: Path, r: dict):
    """The random CNN and the batch, built again from the digits, the run's split.json and the batch's
    line names ("digits[i]"), in float32."""
    ex = load_builtin("digits")
    split = json.loads((out / "split.json").read_text())
    cfg = settings_for_new_run({"data": "digits"})
    train = ex.subset(split["train"])
    encoder = make_encoder(train, cfg)
    torch.manual_seed(cfg.seed)
    arch, config = model_config(train, encoder, cfg, bf16=False)
    model = build_model(arch, config)
    idx = [int(re.fullmatch(r"digits\[(\d+)\]", b["line"]).group(1)) for b in r["batch"]]
    val = ex.subset(split["val"])
    return (cfg, model, encoder.encode(ex.inputs[idx]), torch.from_numpy(ex.labels[idx]),
            encoder.encode(val.inputs), torch.from_numpy(val.labels))



def page_dom(page, tmp_path) -> str:
    """The page as headless Chromium built it (the test is skipped where Chromium is not installed)."""
    browser = chromium()
    if browser is None:
        pytest.skip("chromium is not installed (.ci/run installs it)")
    dom = render(browser, page, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    return dom.stdout

def test_explain_loss_is_torch_cross_entropy_and_its_words_are_its_numbers(explained):
    out, printed, r = explained
    cfg, model, x, y, _, _ = rebuilt_digits(out, r)
    model.train()
    torch.manual_seed(DROPOUT_SEED)
    logits = model(x)
    reference = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)  # the loss the loop minimises
    assert r["first_step"]["loss"] == pytest.approx(reference.item(), abs=1e-5)
    per_example = F.cross_entropy(logits, y, reduction="none", label_smoothing=cfg.label_smoothing).detach()
    assert np.allclose(r["predictions"]["loss"], per_example, atol=1e-5)
    assert f"mean over the batch: {reference.item():.4f}" in printed
    p = logits.detach().softmax(-1)
    top, guess = p.max(-1)
    assert r["predictions"]["wrong"] == int((guess != y).sum())
    assert r["predictions"]["confidently_wrong"] == int(((guess != y) & (top >= 0.9)).sum())
    p_true = p[0, y[0]].item()  # example #1 in words: -ln(probability of the right answer) is its loss
    assert f"probability {p_true:.4f}; -ln({p_true:.4f}) = {-math.log(p_true):.4f}" in printed
    assert r["predictions"]["uniform_loss"] == pytest.approx(math.log(10))


def test_explain_finite_differences_match_autograd_and_the_update_is_adamws(explained):
    out, printed, r = explained
    cfg, model, x, y, x_val, y_val = rebuilt_digits(out, r)
    model = model.double()
    model.eval()
    assert r["before"]["val_loss"] == pytest.approx(F.cross_entropy(model(x_val.double()), y_val).item(), abs=1e-9)
    model.train()
    loss = F.cross_entropy(model(x.double()), y, label_smoothing=cfg.label_smoothing)
    params = dict(model.named_parameters())
    grads = dict(zip(params, torch.autograd.grad(loss, list(params.values()))))
    for w in r["first_step"]["weights"]:
        name, index = re.fullmatch(r"(.+)\[([\d, ]+)\]", w["weight"]).groups()
        index = tuple(int(i) for i in index.split(","))
        assert w["backprop"] == pytest.approx(grads[name][index].item(), rel=1e-9)
        assert w["finite_difference"] == pytest.approx(grads[name][index].item(), rel=1e-6)
        assert f"{w['weight']}: backprop {w['backprop']:+.6e}, finite difference {w['finite_difference']:+.6e}" in printed
    zeros = sum(int((g == 0).sum()) for g in grads.values())
    assert sum(row["zero_grads"] for row in r["first_step"]["layers"]) == zeros
    for name, p in params.items():  # torch's own AdamW, one step with the run's lr, weight decay and clipping
        p.grad = grads[name].clone()
    before = {n: p.detach().clone() for n, p in params.items()}
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    groups = [{"params": [p for p in params.values() if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params.values() if p.dim() < 2], "weight_decay": 0.0}]
    torch.optim.AdamW(groups, lr=r["first_step"]["lr"]).step()
    for w in r["first_step"]["weights"]:
        name, index = re.fullmatch(r"(.+)\[([\d, ]+)\]", w["weight"]).groups()
        assert w["after"] == pytest.approx(params[name][tuple(int(i) for i in index.split(","))].item(), abs=1e-12)
    for row in r["first_step"]["layers"]:
        if row["update_ratio"] is not None:
            change = (params[row["layer"]] - before[row["layer"]]).norm() / before[row["layer"]].norm()
            assert row["update_ratio"] == pytest.approx(change.item(), rel=1e-6)


def test_explain_steps_memorise_the_batch_and_the_page_renders(explained, tmp_path):
    out, printed, r = explained
    h = r["history"]
    assert [row["step"] for row in h] == [0, 1, 2, 4, 6]
    assert h[-1]["batch_loss"] < h[0]["batch_loss"] - 0.1  # one batch, six steps: its loss falls
    assert all(row["max_fd_error"] < 1e-6 for row in h[1:])
    assert f"after 6 steps on this one batch its loss went {h[0]['batch_loss']:.4f} -> {h[-1]['batch_loss']:.4f}" in printed
    dom = page_dom(out / "explain.html", tmp_path)
    for section in ("batch", "predictions", "loss", "gradients", "update", "steps"):
        assert f'<section id="{section}">' in dom
    assert len(re.findall(r'<img src="data:image/png;base64,', dom)) == 3  # thumbnails, layers, steps
    assert "http" not in (out / "explain.html").read_text().replace("http-equiv", "")


def test_explain_sms_spam_takes_the_plain_sgd_step_of_fasttext(tmp_path):
    sms = shared("sms_spam_collection", "SMSSpamCollection")
    out = tmp_path / "run"
    printed = run_cli(["explain", str(sms), "--columns", "label,text", "--text", "text", "--label", "label",
                       "--out", str(out)])
    r = json.loads((out / "explain.json").read_text())
    step = r["first_step"]
    assert r["optimizer"] == "sgd" and r["momentum"] == 0 and r["weight_decay"] == 0 and not step["clipped"]
    for w in step["weights"]:  # plain SGD: w <- w - lr * dL/dw, exactly
        assert w["update"] == pytest.approx(-step["lr"] * w["backprop"], rel=1e-9)
        assert w["relative_error"] < 1e-6
    texts = sms.read_text(encoding="utf-8").splitlines()
    for b in r["batch"]:  # the batch is the file's own lines, as numbered there
        label, text = texts[int(b["line"]) - 1].split("\t", 1)
        assert label == b["label"] and text.startswith(b["input"].removesuffix("..."))
    embed = next(x for x in step["layers"] if x["layer"] == "embed.weight")
    assert embed["zero_grads"] > 0.9 * embed["weights"]  # only the n-grams in 8 texts get a gradient
    assert "SGD's first step moves each weight by lr x its gradient" in printed


def test_explain_a_language_model_checks_its_gradients_too(tmp_path):
    corpus = tmp_path / "shakespeare.txt"
    corpus.write_text(shared("tinyshakespeare", "input.txt").read_text(encoding="utf-8")[:30_000], encoding="utf-8")
    out = tmp_path / "run"
    run_cli(["explain", str(corpus), "--task", "lm", "--n-layer", "1", "--n-head", "2", "--n-embd", "16",
             "--block-size", "16", "--quiet", "--out", str(out)])
    r = json.loads((out / "explain.json").read_text())
    vocab = json.loads((out / "data" / "corpus.json").read_text())["vocab_size"]
    assert r["predictions"]["n_predictions"] == 8 * 16 and r["predictions"]["uniform_loss"] == pytest.approx(math.log(vocab))
    assert all(b["input"] in corpus.read_text() for b in r["batch"])
    assert np.mean(r["predictions"]["loss"]) == pytest.approx(r["first_step"]["loss"], rel=1e-12)
    assert all(w["relative_error"] < 1e-6 for w in r["first_step"]["weights"])


def test_explain_a_run_starts_from_its_earliest_checkpoint(tiny_lm_run, tmp_path):
    from glassbox.train.checkpoint import Checkpointer

    out = tmp_path / "run"
    run_cli(["explain", str(tiny_lm_run), "--quiet", "--out", str(out), "--steps", "2"])
    r = json.loads((out / "explain.json").read_text())
    earliest = int(Checkpointer(tiny_lm_run).step_folders()[-1].name[5:])
    config = json.loads((tiny_lm_run / "config.json").read_text())
    assert r["start_step"] == earliest and [h["step"] for h in r["history"]] == [earliest, earliest + 1, earliest + 2]
    warmup = config["warmup_steps"]  # the run's schedule: still warming up at its first checkpoint
    assert r["first_step"]["lr"] == pytest.approx(config["lr"] * (earliest + 1) / warmup)
    from safetensors.torch import load_file

    saved = load_file(Checkpointer(tiny_lm_run).step_folders()[-1] / "model.safetensors")
    for w in r["first_step"]["weights"]:  # the three weights start where the checkpoint left them
        name, index = re.fullmatch(r"(.+)\[([\d, ]+)\]", w["weight"]).groups()
        assert w["value"] == pytest.approx(saved[name][tuple(int(i) for i in index.split(","))].item(), abs=1e-7)
    assert all(w["relative_error"] < 1e-6 for w in r["first_step"]["weights"])
    assert main(["explain", str(tiny_lm_run), "--lr", "0.1", "--out", str(tmp_path / "other")]) == 2


@pytest.fixture(scope="module")
def digits_split():
    from glassbox.run.data import split_for

    cfg = settings_for_new_run({"data": "digits", "max_steps": 30, "quiet": True})
    ex = load_builtin("digits")
    parts = split_for(ex, cfg, has_test=False)
    return cfg, {name: ex.subset(idx) for name, idx in parts.items()}


def test_nested_subsets_are_stratified_seeded_and_each_inside_the_next(digits_split):
    _, split = digits_split
    labels = split["train"].labels
    subsets = nested_subsets(labels, FRACTIONS, seed=3)
    for small, big in zip(subsets, subsets[1:]):
        assert set(small) < set(big)
    for f, idx in zip(FRACTIONS, subsets):
        want = [max(1, round(f * n)) for n in np.bincount(labels)]
        assert np.bincount(labels[idx], minlength=10).tolist() == want
    assert all(np.array_equal(a, b) for a, b in zip(subsets, nested_subsets(labels, FRACTIONS, seed=3)))
    assert not np.array_equal(subsets[0], nested_subsets(labels, FRACTIONS, seed=4)[0])


def test_curve_scores_are_sklearns_and_torchmetrics(digits_split):
    from scipy import stats
    from sklearn.metrics import accuracy_score, log_loss
    from torchmetrics.classification import MulticlassCalibrationError

    cfg, split = digits_split
    idx = nested_subsets(split["train"].labels, FRACTIONS, cfg.seed)
    small, large = train_on(split, idx[2], cfg, 30), train_on(split, idx[5], cfg, 30)
    y = split["test"].labels
    for res in (small, large):
        assert res["test_accuracy"] == pytest.approx(accuracy_score(y, res["probs"].argmax(1)))
        assert res["test_loss"] == pytest.approx(log_loss(y, res["probs"], labels=range(10)), abs=1e-5)
        ece = MulticlassCalibrationError(num_classes=10, n_bins=15, norm="l1")(torch.from_numpy(res["probs"]),
                                                                               torch.from_numpy(y)).item()
        assert res["test_ece"] == pytest.approx(ece, abs=1e-5)
        got = figures(res["probs"], y, "all")
        assert got["accuracy"] == pytest.approx(res["test_accuracy"]) and got["ece"] == pytest.approx(ece, abs=1e-5)
    d = (large["probs"].argmax(1) == y).astype(float) - (small["probs"].argmax(1) == y)
    low, high = stats.norm.interval(0.95, loc=d.mean(), scale=stats.sem(d))
    assert paired_interval(d) == pytest.approx([low, high], abs=1e-3)


def test_a_difference_is_beyond_noise_only_when_every_repeat_agrees():
    """Three repeats' paired differences on the same 200 test examples: the interval is the test examples' (normal,
    paired, on each example's difference averaged over the repeats: scipy's), and a verdict needs it and every
    repeat on one side of 0."""
    from scipy import stats

    rng = np.random.default_rng(0)
    per_repeat = [(rng.random(200) < q).astype(float) - (rng.random(200) < 0.5) for q in (0.62, 0.65, 0.75)]
    x = over_repeats(per_repeat)
    means = [d.mean() for d in per_repeat]
    averaged = np.mean(per_repeat, axis=0)
    half = 1.96 * stats.sem(averaged)  # paired_interval's normal 95%, as glassbox rounds it
    assert x["mean"] == pytest.approx(np.mean(means)) and x["spread"] == pytest.approx([min(means), max(means)])
    assert x["interval"] == pytest.approx([averaged.mean() - half, averaged.mean() + half])
    assert min(means) > 0 and x["interval"][0] > 0 and x["beyond"] == "above"
    assert repeats_words(x, 100, " points") == (f"over 3 repeats (each its own seed) {100 * means[0]:+.1f}, "
                                               f"{100 * means[1]:+.1f} and {100 * means[2]:+.1f} points, a spread of "
                                               f"{100 * (max(means) - min(means)):.1f} points, all above 0")
    # one repeat on the other side of 0: the same interval no longer makes a verdict
    other = [*per_repeat[1:], -per_repeat[0] - 0.02]
    y = over_repeats(other)
    assert min(d.mean() for d in other) < 0 and y["beyond"] is None and "not all on one side of 0" in repeats_words(y)
    one = over_repeats(per_repeat[:1])  # one repeat: the test examples' noise alone, and said so
    assert one["repeats"] == 1 and one["interval"] == pytest.approx(paired_interval(per_repeat[0]))
    assert repeats_words(one).startswith("one repeat: the interval covers the test examples only")


def test_curve_on_the_digits_by_cli(tmp_path):
    out = tmp_path / "curve"
    printed = run_cli(["curve", "digits", "--max-steps", "20", "--out", str(out)])  # 3 repeats by default
    r = json.loads((out / "curve.json").read_text())
    assert r["repeats"] == 3 and "3 repeats, each its own seed" in printed
    for p in r["points"][1:]:  # each doubling judged over the repeats: every one of them on one side of 0
        g = p["gain_repeats"]
        assert g["repeats"] == 3 and p["gain"] == pytest.approx(np.mean(g["per_repeat"]))
        agree = min(g["per_repeat"]) > 0 and p["gain_interval"][0] > 0
        assert (g["beyond"] == "above") == agree
    last = r["points"][-1]["gain_repeats"]
    assert f"over 3 repeats (each its own seed) {100 * last['per_repeat'][0]:+.1f}, " in printed
    labels = load_builtin("digits").labels
    train = labels[json.loads((out / "split.json").read_text())["train"]]
    test = labels[json.loads((out / "split.json").read_text())["test"]]
    assert [p["n"] for p in r["points"]] == [sum(max(1, round(f * n)) for n in np.bincount(train)) for f in FRACTIONS]
    assert r["chance_accuracy"] == pytest.approx((test == np.bincount(train).argmax()).mean())
    for before, p in zip(r["points"], r["points"][1:]):
        assert p["gain"] == pytest.approx(p["test_accuracy"] - before["test_accuracy"])
        assert p["loss_drop"] == pytest.approx(before["test_loss"] - p["test_loss"], abs=1e-6)
        assert p["gap"] == pytest.approx(p["train_accuracy"] - p["val_accuracy"])
    assert r["points"][-1]["test_accuracy"] > r["points"][0]["test_accuracy"] > r["chance_accuracy"]
    assert f"bought {100 * r['points'][-1]['gain']:+.1f} points" in printed
    dom = page_dom(out / "curve.html", tmp_path)
    assert dom.count('<img src="data:image/png;base64,') == 1 and '<section id="curve">' in dom
    assert f"<td>{r['points'][-1]['n']:,}</td>" in dom  # the table's last row: the whole training split


def test_curve_skews_adult_by_sex(tmp_path):
    data = tmp_path / "adult_6000.data"  # the first 6,000 people of UCI Adult: encoding all 32,561 twice costs more
    data.write_text("".join(shared("uci_adult", "adult.data").read_text().splitlines(keepends=True)[:6000]))
    out = tmp_path / "run"
    printed = run_cli(["curve", str(data), "--columns", ADULT_COLUMNS, "--label", "income", "--skew", "sex=Female:0.05",
                       "--model", "mlp", "--max-steps", "10", "--batch-size", "256", "--repeats", "1",
                       "--out", str(out)])
    r = json.loads((out / "curve.json").read_text())
    people = pd.read_csv(data, header=None, names=ADULT_COLUMNS.split(","))
    split = json.loads((out / "split.json").read_text())
    female = people["sex"].str.strip() == "Female"
    s = r["skew"]
    assert s["members_before"] == int(female.iloc[split["train"]].sum())
    assert s["others"] == len(split["train"]) - s["members_before"]
    assert s["members_after"] == round(0.05 * s["others"] / 0.95)
    assert s["share_after"] == pytest.approx(0.05, abs=1e-3)
    test_female = int(female.iloc[split["test"]].sum())
    assert r["unskewed"]["group"]["n"] == r["skewed"]["group"]["n"] == test_female
    assert r["unskewed"]["rest"]["n"] == len(split["test"]) - test_female
    assert f"{test_female:,} test examples" in printed and "95% interval" in printed
    assert r["repeats"] == 1 and "one repeat (--repeats 1: verdicts allow for the test examples' noise only" in printed
    assert "one repeat: the interval covers the test examples only" in r["sentence"]


def test_curve_by_corpus_size_for_a_language_model(tmp_path):
    corpus = tmp_path / "shakespeare.txt"
    corpus.write_text(shared("tinyshakespeare", "input.txt").read_text(encoding="utf-8")[:80_000], encoding="utf-8")
    out = tmp_path / "run"
    run_cli(["curve", str(corpus), "--task", "lm", "--n-layer", "1", "--n-head", "2", "--n-embd", "16",
             "--block-size", "16", "--batch-size", "16", "--max-steps", "10", "--repeats", "1", "--quiet", "--out",
             str(out)])
    r = json.loads((out / "curve.json").read_text())
    record = json.loads((out / "data" / "corpus.json").read_text())
    assert [p["n"] for p in r["points"]] == [round(f * record["tokens"]["train"]) for f in FRACTIONS]
    assert r["chance_loss"] == pytest.approx(math.log(record["vocab_size"]))
    for p in r["points"]:
        assert p["perplexity"] == pytest.approx(math.exp(p["val_loss"])) and p["val_loss"] < r["chance_loss"]


@pytest.mark.parametrize("args, words", [
    (["curve", "digits", "--skew", "digit3:0.1"], "is not COL=VALUE:SHARE"),
    (["curve", "digits", "--skew", "label=3:1.5"], "between 0 and 1"),
    (["curve", "DIGITS_CSV", "--label", "digit", "--skew", "digit=3:0.5"], "already; --skew cuts a group down"),
    (["curve", "DIGITS_CSV", "--label", "digit", "--skew", "colour=red:0.05"], "not in the data; choose one of"),
    (["curve", "digits", "--repeats", "0"], "--repeats must be"),
    (["explain", "digits", "--steps", "0"], "--steps must be"),
    (["explain", "digits", "--device", "cuda"], "on the CPU; drop --device"),
    (["curve", "digits", "--control", "shuffled-labels"], "drop --control"),
])
def test_bad_input_is_one_line_and_exit_2(args, words, digits_csv, tmp_path, capsys):
    args = [str(digits_csv) if a == "DIGITS_CSV" else a for a in args]
    assert main([*args, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err, err

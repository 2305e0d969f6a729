"""Temperature scaling only where it helps: the decision on real digits logits, checked against torch,
torchmetrics and scipy; and what the artifact, `predict` and an old artifact say about it."""
import json
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import beta, bootstrap
from torchmetrics.functional.classification import multiclass_calibration_error

from glassbox.cli import main
from glassbox.evaluate import calibration as cal
from glassbox.evaluate import temperature as tm
from glassbox.infer.predictor import Predictor
from glassbox.report import sections, worries
from glassbox.report.load import Run
from glassbox.report.summary import load_summary
from glassbox.report.words.calibration import worded
from glassbox.run.train.start import train as run
from tests.test_calibration import digits_logits  # noqa: F401 (a fixture: logistic regression on real digits)
from tests.test_calibration import torch_lbfgs_temperature


@pytest.fixture(scope="module")
def calibrated(digits_logits):  # noqa: F811
    """The digits model made calibrated on its own test half (logits / its best T), then split in two halves."""
    logits, labels = digits_logits
    base = logits / cal.fit_temperature(logits, labels)
    return base, labels, len(labels) // 2


def test_over_confident_logits_are_scaled_and_the_evidence_checks_out(calibrated):
    base, labels, half = calibrated
    over = base * 3.0   # a good model made three times too sure of itself
    rep = worded(tm.calibration_report(over[:half], labels[:half], over[half:], labels[half:]))
    d, cf = rep["decision"], rep["decision"]["crossfit"]
    assert rep["applied"] and 2.5 < rep["temperature"] < 3.6 and d["val_errors"] == 20
    assert cf["change_ci"][1] < 0 and cf["change_ci_errors"][1] < 0 and ": a clear gain, also allowing for as many " \
        "wrong examples as 20 of 449 allows" in rep["reason"]
    # the cross-fitted change, recomputed with torch: each fold scored with a T fitted by LBFGS on the others
    val, y = over[:half], labels[:half]
    part = tm.fold_of(half)
    change = np.empty(half)
    for k in range(tm.FOLDS):
        held = part == k
        t = torch_lbfgs_temperature(val[~held], y[~held])
        x, yy = torch.tensor(val[held]), torch.tensor(y[held])
        change[held] = (F.cross_entropy(x / t, yy, reduction="none") - F.cross_entropy(x, yy, reduction="none")).numpy()
    assert cf["change"] == pytest.approx(change.mean(), abs=1e-5)
    # its 95% interval against scipy's percentile bootstrap (other resamples: agree to a fifth of the width)
    ref = bootstrap((change,), np.mean, n_resamples=2000, method="percentile", random_state=1).confidence_interval
    width = ref.high - ref.low
    assert cf["change_ci"] == pytest.approx([ref.low, ref.high], abs=0.2 * width)
    # the interval allowing for the share of wrong examples, drawn by scipy (its Beta, another generator)
    wrong = val.argmax(1) != y
    gen = np.random.default_rng(7)
    share = beta.rvs(wrong.sum() + 1, (~wrong).sum() + 1, size=4000, random_state=gen)
    draws = [(1 - e) * gen.choice(change[~wrong], (~wrong).sum()).mean() + e * gen.choice(change[wrong], wrong.sum()).mean()
             for e in share]
    low, high = np.percentile(draws, [2.5, 97.5])
    assert cf["change_ci_errors"] == pytest.approx([low, high], abs=0.2 * (high - low))
    # on test, the figures against torchmetrics (15 bins) and torch; test agrees with validation
    probs = torch.softmax(torch.tensor(over[half:] / rep["temperature"], dtype=torch.float32), dim=1)
    target = torch.tensor(labels[half:])
    for key, norm in (("ece", "l1"), ("mce", "max")):
        ref = multiclass_calibration_error(probs, target, num_classes=10, n_bins=15, norm=norm).item()
        assert rep["after"][key] == pytest.approx(ref, abs=1e-6)
    t_nll = F.cross_entropy(torch.tensor(over[half:]) / rep["temperature"], target).item()
    assert rep["test_check"]["nll_after"] == pytest.approx(t_nll, abs=1e-9) == rep["after"]["nll"]
    assert rep["test_check"]["agrees"] is True and rep["after"]["nll"] < 0.7 * rep["before"]["nll"]
    assert "Temperature scaling applied" in rep["sentence"] and "Test agrees" in rep["sentence"]
    record = tm.manifest_record(rep)
    assert record["temperature"] == rep["temperature"] and record["calibration"]["applied"] is True


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_model_calibrated_by_construction_keeps_t_one(digits_logits, seed):  # noqa: F811
    logits, _ = digits_logits
    rng = np.random.default_rng(seed)   # labels drawn from the model's own probabilities: calibrated exactly
    labels = np.array([rng.choice(10, p=row) for row in cal.softmax(logits)])
    half = len(labels) // 2
    rep = worded(tm.calibration_report(logits[:half], labels[:half], logits[half:], labels[half:], seed=seed))
    assert not rep["applied"] and rep["temperature"] == 1.0 and 0.85 < rep["fitted_temperature"] < 1.15
    lo, hi = rep["decision"]["crossfit"]["change_ci"]
    assert hi >= 0 and rep["reason"].endswith(": not clearly better" if lo < 0 else ": worse")
    assert rep["sentence"].startswith("Temperature scaling not applied (the saved model keeps T = 1)")
    assert tm.manifest_record(rep) == {"calibration": tm.manifest_record(rep)["calibration"]}  # no "temperature"


def test_a_t_that_few_errors_make_look_good_is_not_kept(calibrated):
    """Like a split that also picked the checkpoint: a slightly over-confident model (logits x 1.2), 300 right and 2
    wrong on validation. Sharpening looks good there (T = 0.47); neither it nor a milder T is a sure gain once the
    share of wrong examples is left uncertain, and on test it would hurt."""
    rep = _easy_split(calibrated, 1.2, wrong=2)
    d = rep["decision"]
    assert d["val_errors"] == 2 and rep["fitted_temperature"] < 0.5 and not rep["applied"] and d["milder"] is None
    assert rep["reason"].endswith(": not clearly better") and d["crossfit"]["change_ci"][0] < 0
    for power in tm.MILDER:  # each milder T, cross-fitted alike, reaches 0 too
        assert tm._crossfit(*_val(calibrated, 1.2, 2), 0, power)["change_ci_errors"][1] >= 0
    assert rep["test_check"]["change_ci"][0] > 0 and rep["test_check"]["agrees"] is True  # test: T = 1 was right


def test_a_large_consistent_gain_is_kept_whatever_the_error_count(calibrated):
    """An under-confident model (logits halved) with 8 wrong of 308 on validation: the gain survives the share of
    wrong examples being uncertain, it is kept (a count rule of 10 errors dropped it), and test confirms it."""
    rep = _easy_split(calibrated, 0.5, wrong=8)
    assert rep["decision"]["val_errors"] == 8 and rep["applied"] and ": a clear gain, also allowing" in rep["reason"]
    assert rep["decision"]["crossfit"]["change_ci_errors"][1] < 0
    assert rep["test_check"]["agrees"] is True and rep["test_check"]["change_ci"][1] < 0
    assert rep["after"]["ece"] < 0.5 * rep["before"]["ece"] and "Test agrees" in rep["sentence"]


def test_a_fitted_t_that_overshoots_gives_way_to_a_milder_one(calibrated):
    """The halved logits with 5 wrong of 305: the fitted T = 0.34 is not a sure gain, T ** 0.75 = 0.44 is; it ships,
    the words say both, and test confirms the milder one."""
    rep = _easy_split(calibrated, 0.5, wrong=5)
    d, m = rep["decision"], rep["decision"]["milder"]
    assert d["crossfit"]["change_ci"][1] >= 0 and m["power"] == 0.75 and m["change_ci_errors"][1] < 0
    assert rep["applied"] and rep["temperature"] == pytest.approx(rep["fitted_temperature"] ** 0.75)
    # the milder T's cross-fitted change by hand: each part scored with the other parts' T to the power 0.75
    val, y = _val(calibrated, 0.5, 5)
    part, change = tm.fold_of(len(y)), np.empty(len(y))
    for k in range(tm.FOLDS):
        held = part == k
        t = torch_lbfgs_temperature(val[~held], y[~held]) ** 0.75
        x, yy = torch.tensor(val[held]), torch.tensor(y[held])
        change[held] = (F.cross_entropy(x / t, yy, reduction="none") - F.cross_entropy(x, yy, reduction="none")).numpy()
    assert m["change"] == pytest.approx(change.mean(), abs=1e-5)
    assert f"The milder T = {rep['temperature']:.2f} (the fitted T to the power 0.75)" in rep["reason"]
    assert rep["test_check"]["agrees"] is True and rep["test_check"]["change_ci"][1] < 0
    assert f"with T = {rep['temperature']:.2f}, when it says" in rep["sentence"]
    assert tm.manifest_record(rep)["temperature"] == rep["temperature"]


def _val(calibrated, scale, wrong, right=300):
    base, labels, _ = calibrated
    logits = base * scale
    errs, good = np.flatnonzero(logits.argmax(1) != labels), np.flatnonzero(logits.argmax(1) == labels)
    val = np.concatenate([good[:right], errs[:wrong]])
    return logits[val], labels[val]


def _easy_split(calibrated, scale=0.5, wrong=3, right=300):
    """Like a split that also picked the checkpoint: the model's logits scaled, `right` right and `wrong` wrong on
    validation, the rest on test."""
    base, labels, _ = calibrated
    logits = base * scale
    errs, good = np.flatnonzero(logits.argmax(1) != labels), np.flatnonzero(logits.argmax(1) == labels)
    val, test = np.concatenate([good[:right], errs[:wrong]]), np.concatenate([good[right:], errs[wrong:]])
    return worded(tm.calibration_report(logits[val], labels[val], logits[test], labels[test]))


def test_the_report_says_whether_t_was_applied(calibrated, tmp_path):
    kept = _easy_split(calibrated, 0.5, wrong=2, right=90)   # under-confident; 92 examples: T not checked
    score, text = worries.calibration(load_summary({"calibration": kept}))
    assert kept["before"]["verdict"] == "under-confident" and score == 60 and not kept["applied"]
    assert "temperature scaling was not applied: " + kept["reason"] in text
    slightly = _easy_split(calibrated, 0.8, wrong=5)   # confidence 0.6 points below accuracy on 594 test examples
    b = slightly["before"]
    assert not slightly["applied"] and abs(b["mean_confidence"] - b["accuracy"]) < 0.01
    assert b["ece"] > slightly["tolerance"] and b["ece"] <= b["ece_noise"]  # above the tolerance, yet within chance
    assert b["verdict"] == "no miscalibration beyond chance on this many examples"
    assert worries.calibration(load_summary({"calibration": slightly})) is None
    b = {k: v for k, v in b.items() if k != "ece_noise"}  # a run from before the noise floor: the old check says it
    score, text = worries.calibration(load_summary({"calibration": {**slightly, "before": {**b, "verdict": "under-confident"}}}))
    assert score == 20 and "on 594 test examples the gap is within noise" in text and "the evidence is thin" in text
    html = sections.calibration(Run(tmp_path, load_summary({"calibration": kept})))
    assert f"with T = {kept['fitted_temperature']:.2f} (not applied)" in html and "was not kept" in html
    base, labels, half = calibrated
    disagree = worded(tm.calibration_report(base[:half] * 3, labels[:half], base[half:] * 0.3, labels[half:]))
    score, text = worries.calibration(load_summary({"calibration": disagree}))
    assert score == 60 and text.endswith("Test disagrees with validation about this T (see the calibration section).")
    html = sections.calibration(Run(tmp_path, load_summary({"calibration": disagree})))
    assert f"with T = {disagree['temperature']:.2f} (applied)" in html and "Test disagrees" in html


def test_small_validation_split_and_test_disagreement_are_said(calibrated):
    base, labels, half = calibrated
    rep = worded(tm.calibration_report(base[:60] * 3, labels[:60], base[half:], labels[half:]))
    assert not rep["applied"] and rep["reason"].startswith("the validation split holds 60 examples, fewer than the 100")
    # validation over-confident, test under-confident: the T that helps validation hurts test, and it says so
    rep = worded(tm.calibration_report(base[:half] * 3, labels[:half], base[half:] * 0.3, labels[half:]))
    assert rep["applied"] and rep["test_check"]["agrees"] is False and rep["test_check"]["change_ci"][0] > 0
    assert f"Test disagrees with validation: T = {rep['temperature']:.2f} changed test NLL" in rep["sentence"]


@pytest.fixture(scope="module")
def digits_artifact(digits_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("temperature_digits") / "r"
    run(str(digits_csv), label="digit", out=str(out), max_steps=40, quiet=True)
    return out


def _with_manifest(artifact, tmp_path, name, **changes):
    """A copy of the artifact whose manifest is changed (keys set, or removed where the value is None) and sealed
    again: an artifact exported with those values."""
    from glassbox.export.artifact import write_manifest

    copy = tmp_path / name
    shutil.copytree(artifact, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest.update(changes)
    write_manifest(copy, {k: v for k, v in manifest.items() if v is not None})
    return copy


def test_the_artifact_and_predict_say_whether_t_is_applied(digits_artifact, digits_csv, tmp_path, capsys):
    summary = json.loads((digits_artifact / "summary.json").read_text())
    manifest = json.loads((digits_artifact / "model" / "manifest.json").read_text())
    c = summary["calibration"]
    assert manifest["calibration"]["applied"] == c["applied"] and manifest["calibration"]["reason"] == c["reason"]
    assert ("temperature" in manifest) == c["applied"] and summary["temperature"] == c["temperature"]
    row = digits_csv.read_text().splitlines()[1].rsplit(",", 1)[0]
    capsys.readouterr()
    assert main(["predict", str(digits_artifact / "model"), row, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["calibrated"] is c["applied"]
    # the same weights scaled two ways: T removed, and an older artifact's unchecked T = 0.5
    plain = _with_manifest(digits_artifact / "model", tmp_path, "plain", temperature=None, calibration=None)
    old = _with_manifest(digits_artifact / "model", tmp_path, "old", temperature=0.5, calibration=None)
    checked = _with_manifest(digits_artifact / "model", tmp_path, "checked", temperature=0.5,
                             calibration={"applied": True, "reason": "a clear gain"})
    p_plain, p_old = Predictor(plain), Predictor(old)
    x = p_plain.parse([row])
    sharpened = p_plain.predict_proba(x) ** 2           # softmax(z / 0.5) is softmax(z) squared, renormalised
    assert torch.allclose(p_old.predict_proba(x), sharpened / sharpened.sum(1, keepdim=True), atol=1e-6)
    assert not p_plain.calibrated and not p_old.calibrated and Predictor(checked).calibrated
    assert "older glassbox that did not check" in p_old.how_scaled()
    assert main(["predict", str(old), row]) == 0 and "not verified as calibrated" in capsys.readouterr().err

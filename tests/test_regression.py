"""Regression on a real table (scikit-learn's diabetes data, 442 patients, disease progression a year on): the plain
`glassbox train` command picks regression for the numeric label and says so; its RMSE, MAE and R^2, the training
mean's chance level, the target's scale, the split-conformal intervals and per-group errors are checked against
scikit-learn, numpy and scipy on the run's own split; predict, serve and eval give the same numbers; the report
renders in headless Chromium; and what regression cannot take is refused in one line."""
import contextlib
import io
import json
import math
import re
import shutil
import subprocess

import httpx
import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import beta
from sklearn.dummy import DummyRegressor
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from glassbox.board.detail import headlines
from glassbox.board.runs import score
from glassbox.cli import main
from glassbox.infer.predictor import Predictor
from glassbox.report.summary import load_summary
from glassbox.train.regression import LOSSES
from tests.serving import running_server
from tests.test_bad_input import assert_one_line_error, run_cli

FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory):
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame
    path = tmp_path_factory.mktemp("diabetes") / "diabetes.csv"
    frame.to_csv(path, index=False)
    return path, pd.read_csv(path, dtype=str)  # the rows as the file holds them


@pytest.fixture(scope="module")
def run(diabetes, tmp_path_factory):
    """The plain command (no --task) with a group column, long enough to pass its sweet spot."""
    out = tmp_path_factory.mktemp("reg") / "run"
    said = io.StringIO()
    with contextlib.redirect_stdout(said):
        code = main(["train", str(diabetes[0]), "--label", "target", "--group", "sex", "--epochs", "60",
                     "--out", str(out)])
    assert code == 0
    return out, said.getvalue()


def part(diabetes, run, name: str) -> pd.DataFrame:
    rows = json.loads((run[0] / "split.json").read_text())[name]
    return diabetes[1].iloc[rows].reset_index(drop=True)


def predicted(run, rows: pd.DataFrame) -> np.ndarray:
    return Predictor(run[0] / "model").predict_values(rows[FEATURES])


def test_a_numeric_label_trains_as_regression_and_its_scores_are_sklearns(diabetes, run):
    assert "task: regression, because the label 'target' holds 214 distinct numbers (25 to 346)" in run[1]
    assert "give --task classify" in run[1]
    s = json.loads((run[0] / "summary.json").read_text())
    train, val, test = (part(diabetes, run, name) for name in ("train", "val", "test"))
    for name, rows in (("val", val), ("test", test)):
        y, pred = rows["target"].astype(float), predicted(run, rows)
        assert s[f"{name}_rmse"] == pytest.approx(math.sqrt(mean_squared_error(y, pred)), rel=1e-6)
        assert s[f"{name}_mae"] == pytest.approx(mean_absolute_error(y, pred), rel=1e-6)
        assert s[f"{name}_r2"] == pytest.approx(r2_score(y, pred), rel=1e-6, abs=1e-9)
        mean = DummyRegressor().fit(np.zeros((len(train), 1)), train["target"].astype(float)).predict(np.zeros((len(y), 1)))
        assert s["chance"][f"{name}_rmse"] == pytest.approx(math.sqrt(mean_squared_error(y, mean)), rel=1e-9)
        assert s["chance"][f"{name}_r2"] == pytest.approx(r2_score(y, mean), abs=1e-9)
    assert s["test_r2"] > s["chance"]["test_r2"] + 0.1  # it learned something beyond the mean (about 0.3 here)
    # the test RMSE's bootstrap interval: around the estimate, as wide as the delta method's normal interval
    squared = (test["target"].astype(float) - predicted(run, test)) ** 2
    delta = 1.96 * squared.std(ddof=1) / math.sqrt(len(squared)) / (2 * s["test_rmse"])
    low, high = s["test_ci"]["rmse"]
    assert low < s["test_rmse"] < high and high - low == pytest.approx(2 * delta, rel=0.3)
    target = json.loads((run[0] / "model" / "manifest.json").read_text())["target"]
    assert target["mean"] == pytest.approx(train["target"].astype(float).mean(), rel=1e-12)
    assert target["std"] == pytest.approx(train["target"].astype(float).std(ddof=0), rel=1e-12)
    # the sweet spot restored: the saved model's validation loss is the best evaluation's
    evals = [json.loads(line) for line in (run[0] / "metrics.jsonl").read_text().splitlines()]
    best = min((e for e in evals if e["step"] > 0), key=lambda e: e["val_loss"])
    assert s["best_step"] == best["step"] < s["steps"] and s["stopped_early"]
    assert s["val_loss"] == pytest.approx(best["val_loss"], rel=1e-5)
    z = (val["target"].astype(float).to_numpy() - target["mean"]) / target["std"]
    assert s["chance_loss"] == pytest.approx(float(np.mean(z ** 2)), rel=1e-5)  # MSE of predicting the training mean


def test_intervals_are_split_conformal_and_their_coverage_is_counted(diabetes, run):
    s = json.loads((run[0] / "summary.json").read_text())
    val, test = part(diabetes, run, "val"), part(diabetes, run, "test")
    scores = np.abs(val["target"].astype(float) - predicted(run, val))
    n = len(scores)
    q = np.quantile(scores, math.ceil((n + 1) * 0.9) / n, method="inverted_cdf")
    i = s["interval"]
    assert i["level"] == 0.9 and i["half_width"] == pytest.approx(q, rel=1e-12)
    inside = int((np.abs(test["target"].astype(float) - predicted(run, test)) <= q).sum())
    t = i["test"]
    assert (t["covered"], t["n"]) == (inside, len(test))
    low, high = beta.ppf(0.025, inside, len(test) - inside + 1), beta.ppf(0.975, inside + 1, len(test) - inside)
    assert t["ci"] == pytest.approx([low, high], rel=1e-6)
    expected = "below" if high < 0.9 else "above" if low > i["guaranteed_at_most"] else "consistent"
    assert t["verdict"] == expected and i["guaranteed_at_most"] == pytest.approx(0.9 + 1 / (n + 1))


def test_per_group_errors_are_pandas_groupby(diabetes, run):
    s = json.loads((run[0] / "summary.json").read_text())
    test = part(diabetes, run, "test")
    frame = pd.DataFrame({"sex": test["sex"], "res": test["target"].astype(float) - predicted(run, test)})
    report = s["groups"]["by_column"]["sex"]["groups"]
    for value, rows in frame.groupby("sex"):
        r = report[value]
        assert r["n"] == len(rows)
        assert r["rmse"] == pytest.approx(math.sqrt((rows["res"] ** 2).mean()), rel=1e-6)
        assert r["mae"] == pytest.approx(rows["res"].abs().mean(), rel=1e-6)
        assert r["mean_residual"] == pytest.approx(rows["res"].mean(), rel=1e-5, abs=1e-6)
        assert r["se_mean_residual"] == pytest.approx(rows["res"].sem(), rel=1e-5)
    assert s["groups"]["sentences"][0].startswith("group 'sex':")


def test_predict_serve_and_eval_give_the_runs_numbers(diabetes, run, capsys, tmp_path):
    model = run[0] / "model"
    test = part(diabetes, run, "test")
    rows = [",".join(r) for r in test[FEATURES].head(3).values.tolist()]
    assert main(["predict", str(model), "--json", *rows]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    half = json.loads((model / "manifest.json").read_text())["interval"]["half_width"]
    values = predicted(run, test.head(3))
    for p, v in zip(printed, values):
        assert p["value"] == pytest.approx(v, abs=1e-5) and p["level"] == 0.9
        assert p["interval"] == pytest.approx([v - half, v + half], abs=1e-5)
    with running_server(model) as (_, url):
        info = httpx.get(url + "/info", timeout=30).json()
        answer = httpx.post(url + "/predict", json={"inputs": rows}, timeout=30).json()
        assert main(["predict", "--url", url, "--json", *rows]) == 0  # the client prints what a local predict prints
        assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == printed
    assert info["task"] == "regression" and info["interval"]["half_width"] == half
    assert answer["predictions"] == [{k: p[k] for k in ("value", "level", "interval")} for p in printed]
    test.to_csv(tmp_path / "test.csv", index=False)
    assert main(["eval", str(model), str(tmp_path / "test.csv"), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    y = test["target"].astype(float)
    assert r["rmse"] == pytest.approx(math.sqrt(mean_squared_error(y, predicted(run, test))), rel=1e-6)
    assert r["r2"] == pytest.approx(r2_score(y, predicted(run, test)), rel=1e-6)
    assert r["seen"]["count"] == 0 and r["interval"]["test"]["covered"] == json.loads(
        (run[0] / "summary.json").read_text())["interval"]["test"]["covered"]
    # two rows, one of each sex: R^2 of a single value and a group's spread are undefined, and said so (JSON null)
    test.groupby("sex").head(1).to_csv(tmp_path / "two.csv", index=False)
    assert main(["eval", str(model), str(tmp_path / "two.csv"), "--group", "sex", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert [g["se_mean_residual"] for g in r["groups"]["sex"]["groups"].values()] == [None, None]
    assert [g["r2"] for g in r["groups"]["sex"]["groups"].values()] == [None, None] and r["n"] == 2


def test_report_audit_and_board_row(run, tmp_path):
    html = (run[0] / "report.html").read_text(encoding="utf-8")
    assert re.findall(r"<h2>(.*?)</h2>", html) == ["Summary", "Data audit", "Learning curves", "Residuals",
                                                   "Prediction intervals", "Groups", "Cost ledger", "Model card"]
    s = json.loads((run[0] / "summary.json").read_text())
    assert f"{s['test_rmse']:.4g}" in html and f"{s['interval']['half_width']:.4g}" in html
    card = html.split('<section id="card">')[1]
    assert f"Test RMSE {s['test_rmse']:.4g}, MAE {s['test_mae']:.4g}, R² {s['test_r2']:.3f}" in card
    findings = {f["name"]: f for f in json.loads((run[0] / "audit.json").read_text())["findings"]}
    assert not {"class_balance", "small_classes", "conflicting_labels", "group_coverage"} & set(findings)
    assert not findings["label_errors"]["checked"] and "the label is a number" in findings["label_errors"]["message"]
    assert {"exact_duplicates", "missing_values"} <= set(findings)
    assert score(load_summary(s)) == ("test RMSE", s["test_rmse"])
    told = headlines(load_summary(s), json.loads((run[0] / "audit.json").read_text()), None)  # the board's page
    assert told["calibration"] == s["interval"]["sentence"] and told["scores"]["test_r2"] == s["test_r2"]
    assert told["groups"] == [{"column": "sex", "sentence": s["groups"]["by_column"]["sex"]["sentence"]}]
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (.ci/run installs it)")
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path}",
                          "--dump-dom", (run[0] / "report.html").resolve().as_uri()], capture_output=True, text=True,
                         timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for section in ("summary", "curves", "residuals", "intervals", "groups"):
        assert f'<section id="{section}">' in dom.stdout
    assert len(re.findall(r'<img src="data:image/png;base64,', dom.stdout)) >= 2  # the curves and the residuals


def test_what_regression_cannot_take_is_refused_in_one_line(diabetes, digits_csv, capsys, tmp_path):
    data = str(diabetes[0])
    out = ["--out", str(tmp_path / "r")]
    assert_one_line_error(*run_cli(capsys, "train", data, "--label", "target", "--task", "classify", *out),
                          "the label looks continuous: 214 distinct numbers", "--task regression")
    assert_one_line_error(*run_cli(capsys, "train", str(digits_csv), "--label", "digit", "--loss", "huber", *out),
                          "--loss huber is a regression loss")
    assert_one_line_error(*run_cli(capsys, "train", data, "--label", "target", "--control", "shuffled-labels", *out),
                          "drop --control")
    for command in ("explain", "curve"):  # they show a classifier's step and learning curve
        assert_one_line_error(*run_cli(capsys, command, data, "--label", "target", "--out", str(tmp_path / command)),
                              f"glassbox {command} takes a classifier's data", "train it with glassbox train")
    words = diabetes[1].copy()
    words.loc[7, "target"] = "unknown"  # one label a word: line 9 of the file (the header is line 1)
    words.to_csv(tmp_path / "words.csv", index=False)
    assert_one_line_error(*run_cli(capsys, "train", str(tmp_path / "words.csv"), "--label", "target", "--task",
                                   "regression", *out), "line 9 holds 'unknown'", "--task classify")
    assert not (tmp_path / "r" / "model").exists()


def test_glassbox_audit_reads_a_numeric_label_as_train_does(diabetes, capsys):
    assert main(["audit", str(diabetes[0]), "--label", "target"]) == 0
    assert "task: regression, because the label 'target' holds 214 distinct numbers" in capsys.readouterr().err
    assert main(["audit", str(diabetes[0]), "--label", "target", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    names = {f["name"] for f in report["findings"]}
    assert names == {"exact_duplicates", "near_duplicates", "leakage", "near_leakage", "missing_values",
                     "extreme_lengths", "id_columns", "label_errors"}
    assert report["errors"] == 0 and report["n_examples"] == 442


def test_huber_with_a_test_file_of_ones_own(diabetes, tmp_path):
    pred, y = torch.tensor([[0.0], [0.5], [3.0]]), torch.tensor([[0.2], [-0.5], [0.0]])
    by_hand = np.mean([0.5 * 0.2 ** 2, 0.5 * 1.0 ** 2, 3.0 - 0.5])  # squared within 1, linear beyond
    assert float(LOSSES["huber"](pred, y)) == pytest.approx(by_hand, rel=1e-6)
    rows = diabetes[1]
    rows.iloc[:380].to_csv(tmp_path / "train.csv", index=False)
    test = pd.concat([rows.iloc[380:], rows.iloc[:1]])  # the last 62 patients, and a copy of the first
    test.to_csv(tmp_path / "test.csv", index=False)
    assert main(["train", str(tmp_path / "train.csv"), "--label", "target", "--task", "regression", "--loss", "huber",
                 "--test", str(tmp_path / "test.csv"), "--max-steps", "20", "--quiet", "--tensorboard",
                 "--out", str(tmp_path / "h"), "--force"]) == 0  # without --force the leak below stops the run
    s = json.loads((tmp_path / "h" / "summary.json").read_text())
    assert s["target"]["loss"] == "huber" and s["task"] == "regression" and s["n_examples"]["test"] == 63
    y_test = test["target"].astype(float)
    assert s["test_rmse"] == pytest.approx(math.sqrt(mean_squared_error(y_test, predicted((tmp_path / "h",), test))),
                                           rel=1e-6)
    leak = next(f for f in json.loads((tmp_path / "h" / "audit.json").read_text())["findings"] if f["name"] == "leakage")
    assert (leak["count"], leak["severity"]) == (1, "error")  # the copied patient: in training and in the test file
    z = json.loads((tmp_path / "h" / "metrics.jsonl").read_text().splitlines()[0])
    val = rows.iloc[:380].iloc[json.loads((tmp_path / "h" / "split.json").read_text())["val"]]
    scaled = (val["target"].astype(float).to_numpy() - s["target"]["mean"]) / s["target"]["std"]
    huber_of_mean = np.mean(np.where(np.abs(scaled) <= 1, 0.5 * scaled ** 2, np.abs(scaled) - 0.5))
    assert z["chance_loss"] == pytest.approx(s["chance_loss"]) == pytest.approx(huber_of_mean, rel=1e-5)
    # 20 steps explain little: the report's first worry says so, with the run's own R^2 and the mean's RMSE
    html = (tmp_path / "h" / "report.html").read_text(encoding="utf-8")
    assert s["test_r2"] < 0.3 and f"It explains only {100 * s['test_r2']:.1f}% of the test set" in html
    assert f"the {s['chance']['test_rmse']:.4g} of always predicting the training mean" in html
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "h" / "tensorboard"))
    events.Reload()
    for key in ("test_rmse", "test_mae", "test_r2"):  # the final figures next to the loop's scalars
        assert events.Scalars(f"final/{key}")[-1].value == pytest.approx(s[key], rel=1e-6)

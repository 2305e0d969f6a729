"""Regression on texts and on images, the proof that a task is not tied to a kind of data: the SMS Spam Collection's
messages scored as a number (spam 1, ham 0), and scikit-learn's handwritten digits read as the digit's value. Each
goes through the same audit, loop, report, predict, serve, board and eval as a table's regression; the scores
summary.json prints are scikit-learn's on the run's own test split, and a model that learned nothing could not pass."""
import base64
import json
import math

import httpx
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from glassbox.board.runs import score
from glassbox.cli import main
from glassbox.data.builtin import load_builtin
from glassbox.infer.predictor import Predictor
from glassbox.report.summary import load_summary
from tests.conftest import shared
from tests.serving import running_server


def train(capsys, *args) -> None:
    assert main(["train", *args, "--threads", "1"]) == 0
    capsys.readouterr()


def test_part(run, name: str) -> list[int]:
    return json.loads((run / "split.json").read_text())[name]


test_part.__test__ = False  # a helper, not a test


def check_scores(run, truth: np.ndarray, predicted: np.ndarray) -> dict:
    """summary.json's test RMSE, MAE and R^2 are scikit-learn's on the same predictions, and beat the mean's."""
    s = json.loads((run / "summary.json").read_text())
    assert s["task"] == "regression"
    assert s["test_rmse"] == pytest.approx(math.sqrt(mean_squared_error(truth, predicted)), rel=1e-5)
    assert s["test_mae"] == pytest.approx(mean_absolute_error(truth, predicted), rel=1e-5)
    assert s["test_r2"] == pytest.approx(r2_score(truth, predicted), rel=1e-5, abs=1e-6)
    mean_rmse = float(np.sqrt(np.mean((truth - s["target"]["mean"]) ** 2)))
    assert s["chance"]["test_rmse"] == pytest.approx(mean_rmse, rel=1e-6)
    return s


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("imgreg") / "run"
    assert main(["train", "digits", "--task", "regression", "--threads", "1", "--quiet", "--out", str(out)]) == 0
    return out


def test_image_regression_learns_the_digits_value(digits_run, capsys, tmp_path):
    ex = load_builtin("digits")
    rows = test_part(digits_run, "test")
    truth = ex.labels[rows].astype(float)  # the digit's value
    predictor = Predictor(digits_run / "model")
    predicted = predictor.predict_values(ex.inputs[rows])
    s = check_scores(digits_run, truth, predicted)
    assert s["kind"] == "image" and s["test_r2"] > 0.8  # the mean scores 0; a digit's value is learnable from pixels
    assert score(load_summary(s)) == ("test RMSE", s["test_rmse"])  # the board's row
    html = (digits_run / "report.html").read_text(encoding="utf-8")
    assert '<section id="residuals">' in html and f"{s['test_rmse']:.4g}" in html

    # predict on image files, a folder for eval (sub-folders named by the value), and serve with base64 bytes
    folder = tmp_path / "digits"
    for i in rows[:60]:
        (folder / str(ex.labels[i])).mkdir(parents=True, exist_ok=True)
        Image.fromarray(ex.inputs[i, 0]).save(folder / str(ex.labels[i]) / f"{i}.png")
    files = sorted(folder.rglob("*.png"))[:3]
    assert main(["predict", str(digits_run / "model"), "--json", *map(str, files)]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    from_files = predictor.predict_values(np.stack([np.asarray(Image.open(f))[None] for f in files]))
    assert [p["value"] for p in printed] == pytest.approx(from_files.tolist(), abs=1e-5)
    assert main(["eval", str(digits_run / "model"), str(folder), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    names = sorted(folder.rglob("*.png"))
    y = np.array([float(f.parent.name) for f in names])
    pred = predictor.predict_values(np.stack([np.asarray(Image.open(f))[None] for f in names]))
    assert r["rmse"] == pytest.approx(math.sqrt(mean_squared_error(y, pred)), rel=1e-5)
    assert r["seen"]["count"] == 0  # every one from the test split
    sent = [base64.b64encode(f.read_bytes()).decode() for f in files]
    with running_server(digits_run / "model") as (_, url):
        assert httpx.get(url + "/info", timeout=30).json()["input"] == "image"
        answer = httpx.post(url + "/predict", json={"inputs": sent}, timeout=30).json()
    assert [p["value"] for p in answer["predictions"]] == [p["value"] for p in printed]


@pytest.fixture(scope="module")
def spam_scores(tmp_path_factory):
    frame = pd.read_csv(shared("sms_spam_collection", "SMSSpamCollection"), sep="\t", header=None,
                        names=["label", "text"], quoting=3, dtype=str)
    frame["spam"] = (frame["label"] == "spam").astype(int)
    path = tmp_path_factory.mktemp("spamreg") / "spam.csv"
    frame[["spam", "text"]].to_csv(path, index=False)
    return path, pd.read_csv(path, dtype=str, keep_default_na=False)


def test_text_regression_scores_a_message(spam_scores, capsys, tmp_path):
    path, frame = spam_scores
    out = tmp_path / "run"
    train(capsys, str(path), "--text", "text", "--label", "spam", "--task", "regression", "--epochs", "5",
          "--out", str(out))  # no --force: the split keeps the collection's 403 repeated messages together
    rows = test_part(out, "test")
    test = frame.iloc[rows]
    predictor = Predictor(out / "model")
    predicted = predictor.predict_values(test["text"].tolist())
    s = check_scores(out, test["spam"].astype(float).to_numpy(), predicted)
    assert s["kind"] == "text" and s["label"] == "spam" and s["test_r2"] > 0.6
    findings = {f["name"]: f for f in json.loads((out / "audit.json").read_text())["findings"]}
    assert not findings["label_errors"]["checked"]  # a number has no classes for cleanlab to doubt
    texts = test["text"].head(3).tolist()
    assert main(["predict", str(out / "model"), "--json", *texts]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [p["value"] for p in printed] == pytest.approx(predicted[:3].tolist(), abs=1e-5)
    test[["spam", "text"]].to_csv(tmp_path / "test.csv", index=False)
    assert main(["eval", str(out / "model"), str(tmp_path / "test.csv"), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["r2"] == pytest.approx(s["test_r2"], rel=1e-5)
    with running_server(out / "model") as (_, url):
        answer = httpx.post(url + "/predict", json={"inputs": texts}, timeout=30).json()
    assert [p["value"] for p in answer["predictions"]] == [p["value"] for p in printed]


def test_a_classifiers_setting_on_an_image_regression_is_refused(capsys, tmp_path):
    from tests.test_bad_input import assert_one_line_error, run_cli

    assert_one_line_error(*run_cli(capsys, "train", "digits", "--task", "regression", "--label-smoothing", "0.1",
                                   "--out", str(tmp_path / "r")), "--label-smoothing 0.1 softens a classifier's",
                          "drop --label-smoothing")
    assert not (tmp_path / "r" / "model").exists()

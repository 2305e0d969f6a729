"""glassbox.train from Python. A DataFrame, (X, y) arrays and (texts, labels) go through the same reader, audit and
split as a file: the same table as a DataFrame, a CSV and a Parquet file trains the same weights (same seed); the run
keeps a copy of in-memory data that --resume and `glassbox eval` read; the Run it returns holds the typed summary,
the predictor, the report inline and the board; ambiguous data is refused in one line. docs/python-api.md runs, and
its runs show (X, y) arrays training a table and (texts, labels) training as the same texts in a Parquet file."""
import json
import re
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

import glassbox
from glassbox.cli import main
from glassbox.errors import UserError
from glassbox.run.in_memory import arrow_table, content_sha256
from glassbox.run.folder import source_record
from tests.conftest import ROOT, SHARED, shared

COLUMNS = ["age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation", "relationship",
           "race", "sex", "capital_gain", "capital_loss", "hours_per_week", "native_country", "income"]
QUICK = {"max_steps": 20, "threads": 1, "quiet": True}  # equality, not accuracy, is the point: a short run, 1 thread
QUICK_FLAGS = ["--max-steps", "20", "--threads", "1", "--quiet"]


@pytest.fixture(scope="module")
def adult(tmp_path_factory):
    """The first 2,000 rows of UCI Adult as the file holds them (with a header), as the DataFrame pandas reads from
    them, and as Parquet written from that DataFrame; the first 500 rows of adult.test likewise, for --test."""
    folder = tmp_path_factory.mktemp("adult")
    header = ",".join(COLUMNS) + "\n"
    data = shared("uci_adult", "adult.data").read_text().splitlines(keepends=True)[:2000]
    test = shared("uci_adult", "adult.test").read_text().splitlines(keepends=True)[1:501]  # after its '|1x3' line
    (folder / "adult.csv").write_text(header + "".join(data))
    (folder / "test.csv").write_text(header + "".join(test))
    frame = pd.read_csv(folder / "adult.csv", skipinitialspace=True)
    frame.to_parquet(folder / "adult.parquet")
    pd.read_csv(folder / "test.csv", skipinitialspace=True).to_parquet(folder / "test.parquet")
    assert frame.shape == (2000, 15) and frame["age"].dtype == np.int64  # typed columns, not text
    return SimpleNamespace(folder=folder, frame=frame)


@pytest.fixture(scope="module")
def runs(adult, tmp_path_factory):
    """The same table trained three ways with the same seed: its CSV, its Parquet file, and the DataFrame."""
    out = tmp_path_factory.mktemp("runs")
    f = adult.folder
    assert main(["train", str(f / "adult.csv"), "--label", "income", "--test", str(f / "test.csv"), *QUICK_FLAGS,
                 "--out", str(out / "csv")]) == 0
    assert main(["train", str(f / "adult.parquet"), "--label", "income", "--test", str(f / "test.parquet"),
                 *QUICK_FLAGS, "--out", str(out / "parquet")]) == 0
    run = glassbox.train(adult.frame, label="income", test=str(f / "test.parquet"), out=str(out / "frame"), **QUICK)
    return SimpleNamespace(csv=out / "csv", parquet=out / "parquet", frame=out / "frame", run=run)


def read(run_dir: Path, name: str) -> dict:
    return json.loads((run_dir / name).read_text())


def test_a_dataframe_and_a_parquet_file_train_as_the_csv_does(runs):
    """Same split, same data fingerprint, bit-identical weights and the same test scores from all three."""
    csv = read(runs.csv, "model/manifest.json")
    for other in (runs.parquet, runs.frame):
        assert read(other, "split.json") == read(runs.csv, "split.json")
        manifest = read(other, "model/manifest.json")
        assert manifest["weights_sha256"] == csv["weights_sha256"]
        assert manifest["training_data_fingerprint"] == csv["training_data_fingerprint"]
        summary, base = read(other, "summary.json"), read(runs.csv, "summary.json")
        assert (summary["test_accuracy"], summary["test_loss"]) == (base["test_accuracy"], base["test_loss"])
    s = runs.run.summary
    assert s.n_examples.train + s.n_examples.val == 2000 and s.n_examples.test == 500
    assert s.steps == 20 and 0.6 < s.test_accuracy < 1.0  # a real score on 500 real test rows


def test_the_run_records_where_in_memory_data_came_from(runs, adult):
    record = runs.run.config["data_source"]
    copy = runs.frame / "data.parquet"
    assert record["data"] == str(copy) == runs.run.config["data"] == runs.run.summary.data
    assert record["sha256"] == source_record(str(copy))["sha256"] and record["files"] == 1  # what --resume checks
    kept = record["in_memory"]
    assert (kept["type"], kept["rows"], kept["columns"]) == ("DataFrame", 2000, 15)
    assert kept["content_sha256"] == content_sha256(arrow_table(adult.frame))
    assert kept["content_sha256"] != content_sha256(arrow_table(adult.frame.iloc[1:]))
    assert "a pandas DataFrame given to glassbox.train, 2,000 rows x 15 columns" in kept["words"]
    assert f"written to {copy} (Parquet)" in kept["words"]
    assert runs.run.config["sources"]["data"] == "glassbox.train: DataFrame in memory"


def test_resume_and_eval_read_the_copy(runs, adult, capsys):
    weights = (runs.frame / "model" / "model.safetensors").read_bytes()
    assert main(["train", "--out", str(runs.frame), "--resume"]) == 0
    assert "training had already finished" in capsys.readouterr().out
    assert (runs.frame / "model" / "model.safetensors").read_bytes() == weights
    with pytest.raises(UserError, match="is not the one the run in .* started on"):
        glassbox.train(adult.frame.iloc[:1500], out=str(runs.frame), resume=True)
    scores = {}
    for name in ("test.csv", "test.parquet"):
        capsys.readouterr()
        assert main(["eval", str(runs.frame / "model"), str(adult.folder / name), "--json"]) == 0
        scores[name] = json.loads(capsys.readouterr().out)
    assert scores["test.csv"]["accuracy"] == scores["test.parquet"]["accuracy"] == runs.run.summary.test_accuracy
    assert scores["test.parquet"]["n"] == 500


def test_the_run_object(runs, adult):
    run = glassbox.Run.open(runs.frame)
    assert run.summary.test_accuracy == runs.run.summary.test_accuracy and run.summary.kind == "tabular"
    rows = adult.frame.drop(columns="income").head(40)
    predicted = run.predict(rows)
    assert predicted == run.predict(rows.to_dict("records")) == run.predictor.predict(
        run.predictor.parse([", ".join(map(str, r)) for r in rows.itertuples(index=False)]))
    assert sum(p["label"] == y for p, y in zip(predicted, adult.frame.income)) >= 28  # a majority of 40 real rows
    assert run.report() == run.report_path == runs.frame / "report.html" and run.report_path.is_file()
    assert (run.model_path / "manifest.json").is_file() and len(run.metrics) >= 2 and run.audit["findings"]
    html = run._repr_html_()
    assert html.startswith('<div class="glassbox-run">') and "<style>.glassbox-run" in html
    assert "&lt;=50K" in html and "<=50K" not in html  # the class names, from the data, escaped
    assert "What to worry about most" in html and "Learning curves" in html and "data:image/png;base64," in html
    assert "Confusion matrix" not in html  # the rest stays in report.html, named at the end
    assert f"The whole report (audit, calibration, groups, cost, model card): {runs.frame / 'report.html'}" in html
    with pytest.raises(UserError, match="give a list of inputs"):
        run.predict("39, State-gov")
    with pytest.raises(UserError, match="not a glassbox run folder"):
        glassbox.Run.open(adult.folder)


def test_board_starts_on_the_run(runs):
    run = glassbox.Run.open(runs.frame)
    url = run.board()
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url)
        with urllib.request.urlopen(url + "api/runs", timeout=30) as answer:
            rows = json.loads(answer.read())
        assert [r["status"] for r in rows["runs"]] == ["finished"], rows
    finally:
        run.board_process.terminate()
        run.board_process.wait(timeout=30)


@pytest.mark.parametrize("data, settings, message", [
    (["free prize", "see you"], {}, "a list of 2 texts needs their labels: glassbox.train((texts, labels))"),
    ((np.zeros((4, 2)), [0, 1, 0, 1]), {"labels": [0, 1, 0, 1]}, "labels= is not a setting"),
    ((np.zeros((4, 2)), [0, 1, 0, 1]), {"label": "y"}, "a pair (inputs, labels) names its own columns"),
    ((np.zeros((4, 2)), [0, 1, 0]), {}, "4 inputs but 3 labels; give one label per example"),
    ((np.zeros(4), [0, 1, 0, 1]), {}, "the inputs are 1-D (4 values); give a 2-D array"),
    ((np.zeros((4, 8, 8)), [0, 1, 0, 1]), {}, "the inputs have shape (4, 8, 8)"),
    ((np.zeros((4, 2)), np.eye(4)), {}, "the labels have shape (4, 4); give one label per example"),
    ((["a text", 3.5], [0, 1]), {}, "the inputs mix 1 texts with 1 other values"),
    ((np.zeros((4, 2)), [0, 1, 0, 1], [1]), {}, "a tuple of 3 items"),
    ({"x": [1, 2]}, {}, "glassbox.train cannot read a dict"),
    (pd.DataFrame({"a": [1, 2], "b": [3, 4]}), {}, "a DataFrame needs label='COL' naming the column to predict; its "
                                                   "columns are: a, b"),
    (pd.DataFrame({"a": [1, 2], "b": [3, 4]}), {"label": "a", "group": ["sex"]}, "group='sex' is not a column"),
    (pd.DataFrame({"a": ["x y", "z"]}), {"task": "lm"}, "a language model (task='lm') trains on a text corpus"),
    (pd.DataFrame({"a": [1, 2], "b": [3, 4]}).rename(columns={"b": "a"}), {"label": "a"}, "repeated column names: a"),
])
def test_ambiguous_or_unreadable_data_is_refused_in_one_line(data, settings, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError) as refused:
        glassbox.train(data, **settings)
    assert message in str(refused.value) and "\n" not in str(refused.value)
    assert not (tmp_path / "runs").exists()  # refused before a run folder was made


def test_the_python_api_page_runs(tmp_path, monkeypatch, capsys):
    """Every python block of docs/python-api.md, in order, from a folder beside ../shared/data, as the page says; then
    what its runs show: (X, y) arrays train a table, and (texts, labels) train the same weights as the same texts in
    a Parquet file."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "python-api.md").read_text(), re.S)
    assert len(blocks) >= 6
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "shared").symlink_to(SHARED.parent)
    monkeypatch.chdir(work)
    page, threads = {}, torch.get_num_threads()
    torch.set_num_threads(1)  # the page's runs on one thread, as the Parquet file's run below: the same sums
    try:
        for block in blocks:
            exec(compile(block, "docs/python-api.md", "exec"), page)  # noqa: S102 (the page's own code)
    finally:
        torch.set_num_threads(threads)
    assert page["frame_run"].summary.test_accuracy > 0.75 and list(page["frame_run"].summary.groups["columns"]) == ["sex"]
    assert page["refused"] == "a list of 500 texts needs their labels: glassbox.train((texts, labels))"

    arrays = page["digits_run"]  # (X, y): 64 pixel columns x0..x63 and a label column
    s, kept = arrays.summary, arrays.config["data_source"]["in_memory"]
    assert s.kind == "tabular" and s.classes == [str(d) for d in range(10)] and s.test_accuracy > 0.9
    assert (kept["type"], kept["rows"], kept["columns"]) == ("arrays", 1797, 65)
    assert arrays.config["label"] == "label" and arrays.config["sources"]["label"].startswith("the pair (inputs, labels)")
    digits = page["digits"]
    first = arrays.predict(torch.tensor(digits.data[:100], dtype=torch.float32))
    assert first == arrays.predict(digits.data[:100])  # a float32 tensor or a float64 array: the same numbers
    assert np.mean([p["label"] == str(t) for p, t in zip(first, digits.target[:100])]) > 0.9

    texts = page["run"]  # (texts, labels): the same 500 texts as a Parquet file
    assert texts.summary.kind == "text" and texts.config["text"] == "text" and texts.summary.test_accuracy > 0.9
    path = tmp_path / "sms.parquet"
    pd.DataFrame({"id": range(500), "label": page["labels"], "text": page["texts"]}).to_parquet(path)
    assert main(["train", str(path), "--text", "text", "--label", "label", "--threads", "1", "--quiet",
                 "--out", str(tmp_path / "file")]) == 0
    assert read(tmp_path / "file", "model/manifest.json")["weights_sha256"] == \
        read(texts.path, "model/manifest.json")["weights_sha256"]
    assert read(tmp_path / "file", "summary.json")["test_accuracy"] == texts.summary.test_accuracy
    assert [p["label"] for p in texts.predict(["WINNER!! Claim your FREE prize now, call 09061701461",
                                               "ok see you at home"])] == ["spam", "ham"]

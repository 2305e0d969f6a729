"""RUN/report.html: built from real runs' JSON, self-contained, escaped, and rendered by a real browser."""
from __future__ import annotations

import base64
import io
import json
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from glassbox.errors import UserError
from glassbox.run.train.start import train
from glassbox.report import build_report, load_run, plots, write_report
from glassbox.report.html import sig
from glassbox.report.summary import MemorisationControl, load_summary
from glassbox.report.worries import top_worries

CLASSIFIER_HEADINGS = ["Summary", "Data audit", "Learning curves", "Confusion matrix and per-class scores",
                       "Calibration", "Cost ledger", "Model card"]
BOLD_CLASS = "<b>yes</b>"                       # a class name that must never become a tag
EVIL_CITY = "<script>alert('x')</script>"       # a feature value shown among the audit's flagged rows


@pytest.fixture(scope="module")
def digits_run(digits_csv, tmp_path_factory) -> Path:
    """The 1,797 real handwritten digits as a table (an MLP trains on them in seconds), 10 classes."""
    out = tmp_path_factory.mktemp("report") / "digits"
    train(str(digits_csv), label="digit", out=str(out), max_steps=40, quiet=True)
    write_report(out)
    return out


@pytest.fixture(scope="module")
def tabular_run(tmp_path_factory) -> Path:
    """1,000 rows whose label is learnable from x1, with a group column, markup in a class name and a
    feature value, and repeated rows so the audit flags (and shows) examples holding that markup."""
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("report_tab")
    rows = ["x1,x2,city,team,answer"]
    for i in range(1000):
        x1, x2 = rng.normal(size=2)
        city = EVIL_CITY if i % 10 == 1 else ["Paris", "Oslo", "Lima"][i % 3]
        label = BOLD_CLASS if x1 + 0.3 * rng.normal() > 0 else "no"
        rows.append(f"{x1:.3f},{x2:.3f},\"{city}\",{'A&B' if i % 2 else 'C'},{label}")
    rows += rows[1:6]  # exact duplicates for the audit to flag
    data = folder / "people.csv"
    data.write_text("\n".join(rows) + "\n")
    out = folder / "run"
    train(str(data), label="answer", group=["team"], out=str(out), max_steps=30, control="shuffled-labels",
          force=True, quiet=True)
    write_report(out)
    return out


EVIL_LINE = "<script>alert('x')</script> & so say all of us"  # markup in the corpus: audit rows and samples


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory) -> Path:
    """A real tiny GPT run (about 2 s of training) on 60,000 characters of tinyshakespeare with markup planted
    twice: a 45-character line repeated 40 times in the training text (the audit flags it and the report lists
    it) and the same line opening the validation text, whose first 8 characters prompt the samples."""
    from tests.conftest import shared

    folder = tmp_path_factory.mktemp("report_lm")
    text = shared("tinyshakespeare", "input.txt").read_text(encoding="utf-8")
    repeated = (EVIL_LINE + "\n") * 40
    train_part = repeated + text[: 54_000 - len(repeated) - 1] + "\n"
    val_part = EVIL_LINE + "\n" + text[60_000: 60_000 + 6_000 - len(EVIL_LINE) - 1]
    corpus = folder / "corpus.txt"
    corpus.write_text(train_part + val_part, encoding="utf-8")  # 54,000 + 6,000: validation is the last 10%
    out = folder / "run"
    train(str(corpus), task="lm", n_layer=1, n_head=2, n_embd=32, block_size=32, batch_size=16, max_steps=30,
          out=str(out), quiet=True)
    return out


def html_of(run_dir: Path) -> str:
    return (run_dir / "report.html").read_text(encoding="utf-8")


def headings(html: str) -> list[str]:
    return re.findall(r"<h2>(.*?)</h2>", html)


def assert_self_contained(html: str) -> None:
    links = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", html)
    assert links, "expected inlined images and in-page links"
    outside = [link for link in links if not (link.startswith("data:") or link.startswith("#"))]
    assert not outside, outside
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html.lower() and "@import" not in html and "url(" not in html


def test_classifier_report_has_every_section_with_the_runs_numbers(digits_run):
    html = html_of(digits_run)
    summary = json.loads((digits_run / "summary.json").read_text())
    assert headings(html) == CLASSIFIER_HEADINGS  # no groups and no control in this run: left out
    assert html.count("data:image/png;base64,") == 3  # learning curves, confusion matrix, reliability
    assert_self_contained(html)
    assert f"right {100 * summary['test_accuracy']:.1f}% of the time" in html
    assert f"{summary['chance_loss']:.4f}" in html                       # ln K in the scores table
    assert summary["data_fingerprint"] in html                           # model card: training data
    assert html.count("<li>", html.index('class="worries"'), html.index("Scores at a glance")) == 3


def test_user_text_is_escaped_and_groups_and_control_are_shown(tabular_run):
    html = html_of(tabular_run)
    summary = json.loads((tabular_run / "summary.json").read_text())
    assert BOLD_CLASS in summary["classes"]
    assert BOLD_CLASS not in html and "&lt;b&gt;yes&lt;/b&gt;" in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html   # shown as text among flagged rows
    assert_self_contained(html)
    assert "Groups" in headings(html) and "Memorisation control" in headings(html)
    groups = summary["groups"]["columns"]["team"]["groups"]
    for g in groups:                                                     # every group named, escaped
        assert f"<td>{g['value'].replace('&', '&amp;')}</td>" in html
    assert "A&B<" not in html
    assert html.count("data:image/png;base64,") == 5  # + group accuracy, + control learning curves


LM_HEADINGS = ["Summary", "Data audit", "Learning curves", "Perplexity and samples", "Memorisation", "Cost ledger",
               "Model card"]


def test_language_model_report(lm_run):
    html = html_of(lm_run)
    summary = json.loads((lm_run / "summary.json").read_text())
    memo = json.loads((lm_run / "memorization.json").read_text())
    audit = json.loads((lm_run / "audit.json").read_text())
    assert headings(html) == LM_HEADINGS
    assert_self_contained(html)
    assert html.count("data:image/png;base64,") == 1                      # the learning curves
    # the planted line: flagged by the audit as a repeat and shown there as text, never as markup
    repeats = next(f for f in audit["findings"] if f["name"] == "exact_duplicates")
    assert repeats["severity"] == "warning" and sum(r["input"] == EVIL_LINE for r in repeats["flagged"]) == 39
    escaped = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; so say all of us"
    assert escaped in html[html.index('id="audit"'):html.index('id="curves"')]
    # every sample starts from the validation text's first 8 characters, "<script>", shown escaped
    assert len(summary["samples"]) == 3 and all(t.startswith("<script>") for t in summary["samples"])
    samples = html[html.index('id="samples"'):html.index('id="memorisation"')]
    assert samples.count("<pre>&lt;script&gt;") == 3
    assert f"Perplexity {summary['perplexity']:.2f} on validation text" in samples
    assert summary["perplexity"] == pytest.approx(math.exp(summary["val_loss"]))
    # 30 steps from random weights: validation loss is still above 90% of ln V, and the summary says so first
    assert summary["val_loss"] > 0.9 * summary["chance_loss"] == pytest.approx(0.9 * math.log(summary["vocab_size"]))
    worries = html[html.index('class="worries"'):html.index("Scores at a glance")]
    assert worries.count("<li>") == 3 and worries.index("has learned little") < worries.index("Repeated lines")
    memorisation = html[html.index('id="memorisation"'):html.index('id="cost"')]
    for row in memo["novelty"]["by_n"]:                                   # the real novelty figures, per length
        assert f"<td>{row['n']} characters</td><td class=\"num\">{100 * row['share']:.1f}%</td>" in memorisation
    ext = memo["extraction"]
    assert f"<td>training text</td><td class=\"num\">{100 * ext['train']['rate']:.1f}%</td>" in memorisation
    assert summary["data_fingerprint"] in html[html.index('id="card"'):]  # model card: the corpus sha256


def test_worries_put_a_suspected_leak_first(digits_run):
    run = load_run(digits_run)
    run.summary.control = MemorisationControl(leak_suspected=True, val_accuracy=0.6, chance_accuracy=0.1,
                                              train_accuracy=0.9, sentence="leak")
    worries = top_worries(run.summary, run.audit)
    assert len(worries) == 3 and worries[0].startswith("Something may leak the answer")
    run.summary.calibration = None
    assert "Calibration" not in headings(build_report(run))  # missing data: the section is left out


@pytest.mark.parametrize("task", ["classify", "lm"])
def test_a_bare_summary_gives_a_report_without_the_missing_sections(task, tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps({"task": task, "data": "x.csv"}))
    assert headings(html_of(write_report(tmp_path).parent)) == ["Summary", "Model card"]


def test_a_folder_without_a_finished_run_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no summary.json"):
        write_report(tmp_path)


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def render(browser: str, page: Path, out: Path, *mode: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={out / 'chromium-profile'}", "--enable-logging=stderr", "--v=0",
             "--hide-scrollbars", "--window-size=1200,4000"]
    return subprocess.run([browser, *flags, *mode, page.resolve().as_uri()], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("which", ["digits_run", "tabular_run"])
def test_report_renders_in_headless_chromium(which, request, tmp_path):
    browser = chromium()
    if browser is None:
        pytest.skip("chromium is not installed (.ci/run installs it)")
    run_dir = request.getfixturevalue(which)
    shots = Path(os.environ.get("GLASSBOX_TEST_ARTIFACTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    dom = render(browser, run_dir / "report.html", tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    for section in ["summary", "audit", "curves", "classes", "calibration", "cost", "card"]:
        assert f'<section id="{section}">' in dom.stdout
    assert len(re.findall(r"<img src=\"data:image/png;base64,", dom.stdout)) >= 3
    # the learning curves as the browser holds them: a zoomed second row exactly when the run's curve needs one
    curves = dom.stdout.split('<section id="curves">')[1].split("</section>")[0]
    width, height = Image.open(io.BytesIO(base64.b64decode(re.search(r'base64,([^"]+)"', curves).group(1)))).size
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    zoomed = plots._zoom_start(*plots._series(metrics, "val_loss")) is not None
    assert (height / width > 0.75) == zoomed, (width, height, zoomed)
    shot = shots / f"report-{which}.png"
    done = render(browser, run_dir / "report.html", tmp_path, f"--screenshot={shot}")
    assert done.returncode == 0 and shot.stat().st_size > 10_000
    for log in (dom.stderr, done.stderr):
        errors = [line for line in log.splitlines() if "CONSOLE" in line or "Uncaught" in line
                  or "Failed to load resource" in line]
        assert not errors, errors


def test_report_works_energy_and_money_out_again_for_another_power_and_price(digits_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(digits_run, run)
    before = json.loads((run / "summary.json").read_text())["cost"]
    html = write_report(run, power_watts=130.0, price_per_kwh=0.6).read_text()
    energy = before["train"]["energy_kwh"] * 130.0 / before["power_watts"]
    assert "At 130 W and 0.60 per kWh" in html
    assert f"training used {sig(energy)} kWh costing {sig(energy * 0.6)}" in html
    assert json.loads((run / "summary.json").read_text())["cost"] == before  # the run's own files stay as they were
    with pytest.raises(UserError, match="power_watts"):
        write_report(run, power_watts=0.0)


def test_a_check_that_did_not_run_is_shown_as_skipped_with_its_reason(tmp_path):
    from glassbox.audit import run_audit
    from glassbox.data.builtin import load_builtin
    from glassbox.report.load import Run
    from glassbox.report.sections import audit

    note = "not checked during training: the 5 fold models would cost 3 TFLOP; run `glassbox audit` to check"
    report = run_audit(load_builtin("digits"), label_errors_note=note).to_dict()
    html = audit(Run(path=tmp_path, summary=load_summary({"task": "classify"}), audit=report))
    row = next(r for r in html.split("<tr>") if "Likely label errors" in r)
    assert ">skipped<" in row and "run `glassbox audit` to check" in row.replace("&#x60;", "`")
    assert ">skipped<" not in next(r for r in html.split("<tr>") if "Exact duplicates" in r)


def test_the_model_card_gives_the_confidence_of_the_model_as_saved(tmp_path):
    from glassbox.report.card import performance
    from glassbox.report.load import Run

    calib = {"before": {"verdict": "well calibrated", "ece": 0.007}, "after": {"verdict": "over-confident", "ece": 0.032}}
    kept = Run(path=tmp_path, summary=load_summary({"task": "classify", "test_accuracy": 0.98,
                                                   "calibration": {**calib, "applied": True}}))
    assert "Confidence after temperature scaling: over-confident (ECE 0.032)." in performance(kept)
    dropped = Run(path=tmp_path, summary=load_summary({"task": "classify", "test_accuracy": 0.98,
                                                      "calibration": {**calib, "applied": False}}))
    text = performance(dropped)
    assert "Confidence as saved (no temperature kept): well calibrated (ECE 0.007)." in text and "0.032" not in text



def test_a_diverged_run_is_the_first_worry_after_a_leak():
    summary = {"task": "classify", "test_accuracy": 0.5, "best_step": 2,
               "diverged": {"step": 196, "lr": 196.0, "restored": True, "advice": "Lower --lr."}}
    first = top_worries(load_summary(summary))[0]
    assert first.startswith("Training diverged at step 196 (learning rate 196)")
    assert "the weights from step 2, the best before it, are the ones scored and saved" in first
    lost = top_worries(load_summary({**summary, "diverged": {**summary["diverged"], "restored": False}}))[0]
    assert "no model was saved" in lost and lost.endswith("Lower --lr.")


# --- summary.json, typed (glassbox/report/summary.py) --------------------------------------------------------------

DATA = Path(__file__).parent / "data"  # summary.json files written by glassbox before the summary was typed
SUMMARY_CLASSES = {"classify": "ClassifierSummary", "regression": "RegressionSummary", "lm": "LMSummary"}


@pytest.mark.parametrize("name", ["summary_classifier.json", "summary_regression.json", "digits_run", "tabular_run",
                                  "lm_run"])
def test_summary_json_reads_typed_and_writes_back_byte_for_byte(name, request):
    path = DATA / name if name.endswith(".json") else request.getfixturevalue(name) / "summary.json"
    text = path.read_text()
    data = json.loads(text)
    s = load_summary(data)
    assert type(s).__name__ == SUMMARY_CLASSES[data["task"]]
    assert json.dumps(s.to_dict(), indent=1) + "\n" == text  # the keys, their order and their values, as written
    assert s.extra == {} and s.chance.extra == {} and s.cost.extra == {}  # every key of today's summaries is typed
    assert (s.steps, s.chance.loss, s.cost.train.flops, s.audit.errors) == (
        data["steps"], data["chance"]["loss"], data["cost"]["train"]["flops"], data["audit"]["errors"])
    if data["task"] == "classify":
        assert s.calibration.before.ece == data["calibration"]["before"]["ece"]
        assert s.n_examples.test == data["n_examples"]["test"] and s.test_accuracy == data["test_accuracy"]
    if data["task"] == "regression":
        assert s.interval.test.coverage == data["interval"]["test"]["coverage"] and s.target.std == data["target"]["std"]


def test_a_summary_keeps_keys_it_does_not_know_and_refuses_wrong_types():
    from glassbox.report.summary import LMSummary, SummaryError

    s = load_summary({"task": "lm", "data": "x.txt", "from_a_later_glassbox": [1, 2], "chance": {"new": True}})
    assert isinstance(s, LMSummary) and s.perplexity is None and s.chance.loss is None  # missing: None
    assert s.to_dict() == {"task": "lm", "data": "x.txt", "from_a_later_glassbox": [1, 2], "chance": {"new": True}}
    s.wall_seconds = 3.5  # set after reading: written after what was read
    assert list(s.to_dict()) == ["task", "data", "from_a_later_glassbox", "chance", "wall_seconds"]
    assert type(load_summary({"data": "x.csv"})).__name__ == "ClassifierSummary"  # no task: a classifier
    for bad, where in [({"test_accuracy": "high"}, "test_accuracy"), ({"chance": [0.1]}, "chance"),
                       ({"calibration": {"before": {"ece": True}}}, "calibration.before.ece"),
                       ({"task": "lm", "steps": 2.5}, "steps")]:
        with pytest.raises(SummaryError, match=re.escape(where) + " is "):
            load_summary({"task": "classify", "data": "x.csv", **bad})


LATE_KEYS = ["world_size", "batch_size_per_process", "sessions", "threads", "stage_seconds", "wall_seconds"]


@pytest.mark.parametrize("task", ["classify", "regression"])
def test_an_older_summary_json_still_gives_its_report(task, tmp_path):
    """A summary.json written before glassbox recorded processes, threads, stage times, whether T was applied,
    the ledger's peak details or a regression's bootstrap intervals: the report leaves those out, nothing more."""
    old = json.loads((DATA / f"summary_{'classifier' if task == 'classify' else 'regression'}.json").read_text())
    for key in LATE_KEYS + ["test_ci"]:
        old.pop(key, None)
    for key in ["peak_how", "processes", "peak_per_process", "peak_threads"]:
        del old["cost"][key]
    del old["cost"]["train"]["sessions"], old["cost"]["train"]["eval_flops"]
    if task == "classify":
        for key in ["applied", "decision", "test_check", "temperature_at_bound"]:
            del old["calibration"][key]
        del old["calibration"]["before"]["ece_noise"], old["calibration"]["after"]["ece_noise"]
    else:
        del old["interval"]["guaranteed_at_most"]
    (tmp_path / "summary.json").write_text(json.dumps(old))
    html = write_report(tmp_path).read_text()
    s = load_run(tmp_path).summary
    assert s.world_size is None and s.stage_seconds is None and s.cost.peak_how is None
    if task == "classify":
        assert headings(html) == ["Summary", "Confusion matrix and per-class scores", "Calibration", "Cost ledger",
                                  "Model card"]
        assert s.calibration.applied is None and s.calibration.kept  # before the check, T was always applied
        assert f"with T = {old['calibration']['fitted_temperature']:.2f} (applied)" in html
        assert f"right {100 * old['test_accuracy']:.1f}% of the time" in html
    else:
        assert headings(html) == ["Summary", "Residuals", "Prediction intervals", "Groups", "Cost ledger", "Model card"]
        assert f"its typical error (RMSE) is {old['test_rmse']:.4g} (95% bootstrap interval – to –)" in html
    assert "Wall time of this run" not in html and " processes (" not in html


@pytest.mark.parametrize("summary, why", [
    ({"task": "classify", "data": "x.csv", "chance": [0.1, 0.2]}, "chance is [0.1, 0.2] where glassbox writes an object"),
    ({"task": "regression", "data": "x.csv", "interval": {"test": "all"}}, "interval.test is \"all\" where glassbox"),
    ({"task": "lm", "steps": 30, "perplexity": 12.5}, "lacks what a finished run records (data: what it trained on)")])
def test_a_partial_or_foreign_summary_json_is_one_line_train_again(summary, why, tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(UserError) as e:
        write_report(tmp_path)
    message = str(e.value)
    assert "\n" not in message and why in message and "train again (or --resume the run)" in message
    assert not (tmp_path / "report.html").exists()


def test_a_bug_in_a_section_raises_with_its_traceback_not_train_again(digits_run, monkeypatch):
    def confusion(matrix, names):  # a section's helper with a genuine bug
        return matrix["not there"]

    monkeypatch.setattr(plots, "confusion", confusion)
    with pytest.raises(TypeError) as e:
        build_report(load_run(digits_run))
    assert not isinstance(e.value, UserError)
    assert [entry.name for entry in e.traceback][-2:] == ["per_class", "confusion"]  # where it went wrong


def test_tensorboard_final_figures_name_fields_of_the_typed_summary():
    from dataclasses import fields

    from glassbox.report.summary import ClassifierSummary, LMSummary, RegressionSummary
    from glassbox.train.tensorboard import FINAL

    named = {f.name for cls in (ClassifierSummary, RegressionSummary, LMSummary) for f in fields(cls)}
    assert set(FINAL) <= named, set(FINAL) - named

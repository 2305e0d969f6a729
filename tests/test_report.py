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
from glassbox.evaluate import cost
from glassbox.run.start import train
from glassbox.report import build_report, load_run, plots, write_report
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
    run.summary["control"] = {"leak_suspected": True, "val_accuracy": 0.6, "chance_accuracy": 0.1,
                              "train_accuracy": 0.9, "sentence": "leak"}
    worries = top_worries(run.summary, run.audit)
    assert len(worries) == 3 and worries[0].startswith("Something may leak the answer")
    del run.summary["calibration"]
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
    assert f"training used {cost._sig(energy)} kWh costing {cost._sig(energy * 0.6)}" in html
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
    html = audit(Run(path=tmp_path, summary={"task": "classify"}, audit=report))
    row = next(r for r in html.split("<tr>") if "Likely label errors" in r)
    assert ">skipped<" in row and "run `glassbox audit` to check" in row.replace("&#x60;", "`")
    assert ">skipped<" not in next(r for r in html.split("<tr>") if "Exact duplicates" in r)


def test_the_model_card_gives_the_confidence_of_the_model_as_saved(tmp_path):
    from glassbox.report.card import performance
    from glassbox.report.load import Run

    calib = {"before": {"verdict": "well calibrated", "ece": 0.007}, "after": {"verdict": "over-confident", "ece": 0.032}}
    kept = Run(path=tmp_path, summary={"task": "classify", "test_accuracy": 0.98, "calibration": {**calib, "applied": True}})
    assert "Confidence after temperature scaling: over-confident (ECE 0.032)." in performance(kept)
    dropped = Run(path=tmp_path, summary={"task": "classify", "test_accuracy": 0.98,
                                         "calibration": {**calib, "applied": False}})
    text = performance(dropped)
    assert "Confidence as saved (no temperature kept): well calibrated (ECE 0.007)." in text and "0.032" not in text



def test_a_diverged_run_is_the_first_worry_after_a_leak():
    summary = {"task": "classify", "test_accuracy": 0.5, "best_step": 2,
               "diverged": {"step": 196, "lr": 196.0, "restored": True, "advice": "Lower --lr."}}
    first = top_worries(summary)[0]
    assert first.startswith("Training diverged at step 196 (learning rate 196)")
    assert "the weights from step 2, the best before it, are the ones scored and saved" in first
    lost = top_worries({**summary, "diverged": {**summary["diverged"], "restored": False}})[0]
    assert "no model was saved" in lost and lost.endswith("Lower --lr.")

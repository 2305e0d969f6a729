"""RUN/report.html: one self-contained page a person reads after training.

It reads only the run folder's JSON files, draws its figures with matplotlib as inlined PNGs, and
needs no network, scripts or fonts to open. Sections whose data the run lacks are left out.

    from glassbox.report import write_report
    write_report("runs/adult")   # -> runs/adult/report.html
"""
from __future__ import annotations

import datetime as _dt
from pathlib import Path

from glassbox.errors import UserError
from glassbox.report import lm, regression, sections
from glassbox.report.card import model_card
from glassbox.report.html import page
from glassbox.report.load import Run, load_run
from glassbox.report.summary import Cost, LMSummary, RegressionSummary
from glassbox.runtime.files import atomic_write

# (anchor, heading, section function) in reading order; a function returning "" drops its section.
CLASSIFIER_SECTIONS = [
    ("summary", "Summary", sections.summary),
    ("audit", "Data audit", sections.audit),
    ("curves", "Learning curves", sections.curves),
    ("classes", "Confusion matrix and per-class scores", sections.per_class),
    ("calibration", "Calibration", sections.calibration),
    ("groups", "Groups", sections.groups),
    ("control", "Memorisation control", sections.control),
    ("cost", "Cost ledger", sections.cost),
    ("card", "Model card", model_card),
]
SHARED = {section[0]: section for section in CLASSIFIER_SECTIONS}
# A regression: residuals and prediction intervals where a classifier has its confusion matrix and calibration.
REGRESSION_SECTIONS = [("summary", "Summary", regression.summary), SHARED["audit"],
                       ("curves", "Learning curves", regression.curves), ("residuals", "Residuals", regression.residuals),
                       ("intervals", "Prediction intervals", regression.intervals),
                       ("groups", "Groups", regression.groups), SHARED["cost"], SHARED["card"]]
LM_SECTIONS = [
    ("summary", "Summary", lm.summary),
    ("continued", "Continued from a saved model", lm.continued),
    ("audit", "Data audit", sections.audit),
    ("curves", "Learning curves", sections.curves),
    ("samples", "Perplexity and samples", lm.samples),
    ("memorisation", "Memorisation", lm.memorisation),
    ("cost", "Cost ledger", sections.cost),
    ("card", "Model card", model_card),
]


def sections_for(s) -> list:
    """The report's (anchor, heading, section function) for a run's summary, in reading order."""
    return (LM_SECTIONS if isinstance(s, LMSummary) else REGRESSION_SECTIONS if isinstance(s, RegressionSummary)
            else CLASSIFIER_SECTIONS)


def what_was_trained(s) -> str:
    return ("language model" if isinstance(s, LMSummary) else "regression model" if isinstance(s, RegressionSummary)
            else "classifier")


def build_report(run: Run) -> str:
    """The report's HTML for a loaded run. A section that fails raises: load_run has already refused a summary.json
    that is not a finished run's, so what fails here is a bug in the section."""
    s = run.summary
    parts = [(anchor, title, fn(run)) for anchor, title, fn in sections_for(s)]
    name = Path(s.data or run.path.name).name or run.path.name
    made = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    subtitle = f"A {what_was_trained(s)} trained on {run.trained_on}. Run folder: {run.path}. Report made {made}."
    return page(f"glassbox report: {name}", subtitle, [p for p in parts if p[2]])


def write_report(run_dir, power_watts: float | None = None, price_per_kwh: float | None = None) -> Path:
    """Write RUN/report.html from the JSON files in the run folder; returns its path.

    power_watts / price_per_kwh work the cost ledger's energy and money out again for another power
    draw or electricity price (the run's own files are left as they are).
    Raises UserError when the folder holds no finished run (no summary.json)."""
    run = load_run(run_dir)
    if (power_watts is not None or price_per_kwh is not None) and run.summary.cost is not None:
        from glassbox.config import make_config
        from glassbox.evaluate.cost import reprice
        from glassbox.report.words import cost as cost_words

        make_config({"power_watts": power_watts, "price_per_kwh": price_per_kwh})  # the same checks as for train
        ledger = reprice(run.summary.cost.to_dict(), power_watts, price_per_kwh)
        run.summary.cost = Cost.from_dict({**ledger, "sentence": cost_words.sentence(ledger)})
    text = build_report(run)
    out = run.path / "report.html"
    if out.exists() and not out.is_file():
        raise UserError(f"{out} is a folder (or another thing that is not a file); move it away, then make the report "
                        f"again")
    try:
        atomic_write(out, text.encode("utf-8"))  # a reader never sees half a page
    except OSError as e:
        raise UserError(f"cannot write {out} ({e.strerror or type(e).__name__}); check the free space and the "
                        f"permissions of {run.path}") from None
    return out


__all__ = ["write_report", "build_report", "load_run"]

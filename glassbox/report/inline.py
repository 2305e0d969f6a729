"""A run's report inside a notebook cell: the report's own summary (with what to worry about most) and learning
curves, as report.html draws them, under the report's style scoped to one element so that it leaves the notebook's
own page alone. `glassbox.Run._repr_html_` shows it.

    html = inline_report("runs/adult")   # -> '<div class="glassbox-run">...'
"""
from __future__ import annotations

from glassbox.report import sections_for, what_was_trained
from glassbox.report.html import CSS, esc, section
from glassbox.report.load import load_run

SCOPE = "glassbox-run"            # the class of the element that holds it
SHOWN = ("summary", "curves")     # the report's sections a cell shows; the rest stay in report.html


def inline_report(run_dir) -> str:
    run = load_run(run_dir)
    s = run.summary
    parts = []
    for anchor, title, fn in sections_for(s):
        body = fn(run) if anchor in SHOWN else ""
        if body:  # a section the run holds nothing for is left out, as in the report
            parts.append(section(anchor, title, body))
    report = run.path / "report.html"
    where = (f"The whole report (audit, calibration, groups, cost, model card): {esc(report)}" if report.is_file()
             else "This run has no report.html: glassbox report RUN makes it")
    return (f'<div class="{SCOPE}"><style>{scoped(CSS, "." + SCOPE)}</style>'
            f"<h1>glassbox: {esc(what_was_trained(s))} in {esc(run.path)}</h1>"
            + "\n".join(parts) + f'<p class="note">{where}</p></div>')


def scoped(css: str, scope: str) -> str:
    """The report's CSS with every rule limited to `scope`; its rules for the page (body, main) style the scope itself."""
    rules = []
    for block in css.split("}"):
        if "{" not in block:
            continue
        selectors, body = block.split("{", 1)
        names = [name.strip() for name in selectors.split(",")]
        names = [scope if name in ("body", "main") else f"{scope} {name}" for name in names]
        rules.append(f"{', '.join(names)} {{{body}}}")
    return "\n".join(rules)

"""What the audit found: one Finding per check, an AuditReport holding them, and a terminal renderer.

A finding says in one plain sentence what it means and what to do, then carries the numbers (`stats`)
and every flagged example, worst first (`flagged`: row, line, input, label and check-specific columns).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from glassbox.data.examples import Examples
from glassbox.data.kinds import KINDS

SEVERITIES = ("info", "warning", "error")


@dataclass
class Finding:
    name: str  # stable id, e.g. "exact_duplicates" (the key in audit.json)
    title: str  # short heading for the terminal table
    severity: str  # "info" (nothing to fix), "warning" (look at it) or "error" (results would be wrong)
    count: int  # how many examples (or classes, groups) are flagged; 0 means the check passed
    message: str  # what it means and what to do, in plain language, numbers included
    flagged: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per flagged example, worst first
    stats: dict = field(default_factory=dict)  # the numbers behind the message

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}. Got {self.severity!r} instead.")

    @property
    def checked(self) -> bool:
        """False for a check that did not run (its message starts "not checked" and says why)."""
        return not self.message.startswith("not checked")

    def worst(self, n: int = 5) -> list[dict]:
        return _records(self.flagged.head(n))

    def to_dict(self, worst: int = 5) -> dict:
        return {"name": self.name, "title": self.title, "severity": self.severity, "count": int(self.count),
                "checked": self.checked, "message": self.message, "stats": _json_safe(self.stats), "worst": self.worst(worst),
                "flagged": _records(self.flagged)}


@dataclass
class AuditReport:
    findings: list[Finding]
    n_examples: int
    kind: str
    unit: str = ""  # what n_examples counts, when not "<kind> examples" (a corpus: "lines of text")

    @property
    def has_errors(self) -> bool:
        return any(f.severity == "error" for f in self.findings)

    @property
    def has_warnings(self) -> bool:
        return any(f.severity == "warning" for f in self.findings)

    def finding(self, name: str) -> Finding | None:
        return next((f for f in self.findings if f.name == name), None)

    def to_dict(self) -> dict:
        """What RUN/audit.json and `glassbox audit --json` hold (JSON-safe: no NaN, no numpy types)."""
        return {"n_examples": self.n_examples, "kind": self.kind, "unit": self.unit or f"{self.kind} examples",
                "errors": sum(f.severity == "error" for f in self.findings),
                "warnings": sum(f.severity == "warning" for f in self.findings),
                "findings": [f.to_dict() for f in self.findings]}

    def render(self, console=None, examples: int = 3) -> None:
        render_audit(self, console, examples)


def flagged_rows(ex: Examples, rows, split: str | None = None, **extra) -> pd.DataFrame:
    """The flagged-examples table: row index, 1-based file line, the input as a person reads it
    (DataKind.show_inputs), the given label."""
    rows = np.asarray(rows, dtype=np.int64)
    lines = [ex.lines[i] for i in rows] if ex.lines else (rows + 1).tolist()
    df = pd.DataFrame({"row": rows, "line": lines, "input": KINDS[ex.kind].show_inputs(ex, rows),
                       "label": np.asarray(ex.classes, dtype=object)[ex.labels[rows]]})
    if split is not None:
        df.insert(0, "split", split)
    for name, values in extra.items():
        df[name] = values
    return df


def _records(df: pd.DataFrame) -> list[dict]:
    return [_json_safe(r) for r in df.to_dict("records")]


def _json_safe(x):
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


_STYLE = {"error": "bold red", "warning": "yellow", "info": "green"}


def render_audit(report: AuditReport, console=None, examples: int = 3) -> None:
    """A short table (one line per check), then what each flagged finding means and its worst examples."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console()
    table = Table(title=f"Data audit: {report.n_examples:,} {report.unit or report.kind + ' examples'}", title_justify="left")
    table.add_column("", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("count", justify="right")
    for f in report.findings:
        mark = {"error": "ERROR", "warning": "warn"}.get(f.severity, "ok" if f.checked else "skip")
        table.add_row(f"[{_STYLE[f.severity]}]{mark}[/]", f.title, f"{f.count:,}")
    console.print(table)
    for f in report.findings:
        if f.severity == "info" and not f.count and f.checked:
            continue
        console.print(f"[{_STYLE[f.severity]}]{f.title}[/]: {escape(f.message)}")
        for rec in f.flagged.head(examples if f.severity != "info" else 0).to_dict("records"):
            where = f"{rec.pop('split')} " if "split" in rec else ""
            where += f"{rec.pop('file')} " if "file" in rec else ""
            rec.pop("row", None)
            label = f"[{rec.pop('label')}] " if "label" in rec else ""
            line, shown = rec.pop("line"), rec.pop("input")
            if shown is None:  # an image: its file name is where it is and what it is
                head = f"  {where}{line} {label}".rstrip()
            else:
                head = f"  {where}line {line} {label}{_short(shown, 70)}"
            rest = ", ".join(f"{k}={_short(v, 40)}" for k, v in rec.items())
            console.print(escape(head + (f"  ({rest})" if rest else "")), highlight=False)


def _short(v, width: int) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, dict):
        v = ", ".join(f"{k}={x}" for k, x in v.items())
    s = " ".join(str(v).split())
    return repr(s if len(s) <= width else s[: width - 3] + "...") if isinstance(v, str) else s

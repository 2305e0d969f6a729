"""HTML building blocks for the report: escaping, number formats, tables and the page itself.

Every piece of text that came from the user's run (class names, column names, examples,
sentences that quote them) goes through `esc`; the page has inline CSS, no scripts and no links
outside itself, so it opens the same anywhere, offline.
"""
from __future__ import annotations

import html
import math

from glassbox.report.summary import Summary

CSS = """
body { margin: 0; background: #f6f6f4; color: #1d1d1f;
       font: 16px/1.55 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 880px; margin: 0 auto; padding: 24px 28px 64px; background: #fff; }
h1 { font-size: 28px; margin: 8px 0 4px; }
h2 { font-size: 21px; margin: 40px 0 8px; padding-top: 12px; border-top: 1px solid #ddd; }
h3 { font-size: 17px; margin: 22px 0 6px; }
p { margin: 8px 0; }
.sub { color: #555; margin-top: 0; }
.lead { font-size: 18px; }
nav { font-size: 14px; color: #555; margin: 12px 0 4px; }
nav a { color: #2a5db0; text-decoration: none; margin-right: 12px; white-space: nowrap; }
table { border-collapse: collapse; margin: 10px 0 14px; font-size: 14px; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e4e4e4; text-align: left; vertical-align: top; }
th { background: #f2f2ef; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.wide { width: 100%; }
img { display: block; max-width: 100%; height: auto; margin: 10px 0; }
pre { white-space: pre-wrap; word-break: break-word; background: #f4f4f1; padding: 10px 12px;
      border-radius: 4px; font-size: 13px; }
code { font-size: 13px; }
.sev { display: inline-block; min-width: 58px; text-align: center; border-radius: 3px;
       padding: 0 6px; font-size: 12px; font-weight: 600; }
.sev-error { background: #fbe3e3; color: #9b1c1c; }
.sev-warning { background: #fdf1d6; color: #8a5a00; }
.sev-info { background: #e6f2e6; color: #2d6a2d; }
.worries { background: #fff8e8; border-left: 4px solid #e0a100; padding: 8px 16px 8px 36px; margin: 14px 0; }
.worries li { margin: 6px 0; }
.note { color: #555; font-size: 14px; }
.small { font-size: 12px; color: #555; }
dl.card { display: grid; grid-template-columns: 190px 1fr; gap: 6px 16px; margin: 10px 0; }
dl.card dt { font-weight: 600; }
dl.card dd { margin: 0; }
"""


def esc(value) -> str:
    """Any value as text that cannot become markup."""
    return html.escape("" if value is None else str(value), quote=True)


def is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def or_nan(x):
    """A figure for a fixed format (`f"{x:.3f}"`): nan where the summary has none."""
    return float("nan") if x is None else x


def pct(x, digits: int = 1) -> str:
    """0.9773 -> '97.7%'; missing -> '–'."""
    return f"{100 * x:.{digits}f}%" if is_number(x) else "–"


def num(x, digits: int = 4) -> str:
    """A fixed-point figure (losses, ECE): 0.0686."""
    return f"{x:.{digits}f}" if is_number(x) else "–"


def count(x) -> str:
    return f"{x:,.0f}" if is_number(x) else "–"


def counted(x, noun: str) -> str:
    """(1, 'example') -> '1 example'; (2, 'test example') -> '2 test examples'."""
    return f"{count(x)} {noun}{'' if x == 1 else 's'}"


def sig(x, digits: int = 2) -> str:
    """Significant figures in plain decimals: 0.00051, 28.3, 154,937."""
    if not is_number(x):
        return "–"
    if x == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    return f"{x:,.{decimals}f}"


def si(x, unit: str) -> str:
    """36.2 GFLOP, 756 kFLOP, 59.7 GFLOP/s."""
    if not is_number(x):
        return "–"
    for scale, prefix in [(1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]:
        if abs(x) >= scale:
            return f"{sig(x / scale, 3)} {prefix}{unit}"
    return f"{sig(x, 3)} {unit}"


def seconds(x) -> str:
    """A duration a person reads at a glance: 0.18 ms, 28.3 s, 4.2 min, 1.5 h."""
    if not is_number(x):
        return "–"
    if x < 1:
        return f"{sig(x * 1e3, 2)} ms"
    if x < 120:
        return f"{sig(x, 3)} s"
    if x < 7200:
        return f"{sig(x / 60, 2)} min"
    return f"{sig(x / 3600, 2)} h"


def interval(ci, fmt=pct) -> str:
    """[0.80, 0.92] -> '80.0% – 92.0%'."""
    if not ci or len(ci) != 2:
        return "–"
    return f"{fmt(ci[0])} – {fmt(ci[1])}"


def capital(text: str) -> str:
    """'validation loss stopped ...' -> 'Validation loss stopped ...'."""
    text = "" if text is None else str(text)
    return text[:1].upper() + text[1:]


def para(text: str, cls: str = "") -> str:
    """A paragraph of user-derived text, escaped, starting with a capital."""
    text = capital(text)
    return f'<p class="{cls}">{esc(text)}</p>' if cls else f"<p>{esc(text)}</p>"


def table(headers: list[str], rows: list[list], numeric: set[int] = frozenset(), wide: bool = False) -> str:
    """An HTML table. Cells are escaped unless given as Raw; columns in `numeric` align right."""
    def cell(tag: str, i: int, value) -> str:
        cls = ' class="num"' if i in numeric else ""
        body = value.html if isinstance(value, Raw) else esc(value)
        return f"<{tag}{cls}>{body}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows)
    cls = ' class="wide"' if wide else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class Raw:
    """Markup built here (already escaped) to place in a table cell as is."""

    def __init__(self, html_text: str):
        self.html = html_text


def severity(level: str, checked: bool = True) -> Raw:
    level = level if level in ("info", "warning", "error") else "info"
    return Raw(f'<span class="sev sev-{level}">{level if checked else "skipped"}</span>')


def image(png_base64: str | None, alt: str) -> str:
    if not png_base64:
        return ""
    return f'<img src="data:image/png;base64,{png_base64}" alt="{esc(alt)}">'


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{esc(title)}</h2>\n{body}\n</section>'


def page(title: str, subtitle: str, sections: list[tuple[str, str, str]]) -> str:
    """The whole document: a heading, a contents line, then each (anchor, title, body) section."""
    nav = " ".join(f'<a href="#{anchor}">{esc(name)}</a>' for anchor, name, _ in sections)
    body = "\n".join(section(anchor, name, content) for anchor, name, content in sections)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<link rel=\"icon\" href=\"data:,\">"  # no favicon request
        f"<title>{esc(title)}</title><style>{CSS}</style></head>\n"
        f"<body><main><h1>{esc(title)}</h1><p class=\"sub\">{esc(subtitle)}</p>"
        f"<nav>{nav}</nav>\n{body}\n</main></body></html>\n"
    )


def processes(s: Summary) -> str:
    """' on 2 processes (global batch 64, 32 each)' for a run under torchrun, with each stretch of steps when a
    resumed run changed the number; '' for one process (and for runs from before glassbox recorded it)."""
    sessions = [x for x in s.sessions or [] if isinstance(x, dict)]
    counts = {x.get("world_size") for x in sessions} | ({s.world_size} if s.world_size is not None else set())
    if counts <= {1, None}:
        return ""
    batch = (s.batch_size_per_process or 0) * (s.world_size or 1)
    if len(counts) == 1:
        return f" on {s.world_size} processes (global batch {count(batch)}, {count(s.batch_size_per_process)} each)"
    stretches = ", ".join(f"steps {x['from_step'] + 1}-{x['to_step']} on {x['world_size']}" for x in sessions)
    return f" on several numbers of processes ({stretches}; global batch {count(batch)} throughout)"

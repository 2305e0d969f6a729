"""One run's page on the board: its evaluations read as metrics.jsonl grows, its settings with their sources, and the
headlines a finished run adds (verdict, worries, audit findings, calibration, groups); and the settings in which
runs differ, for the compare view. Everything is read from the run folder, nothing written."""
from __future__ import annotations

import json
from pathlib import Path

from glassbox.board.runs import Unreadable, finite_or_none, read_json, read_run_file, whole_lines
from glassbox.report.summary import ClassifierSummary, LMSummary, RunSummary, SummaryError, load_summary
from glassbox.report.worries import top_worries

RECORD_KEYS = ("step", "epoch", "train_loss", "val_loss", "val_accuracy", "lr", "grad_norm", "examples_per_s",
               "chance_loss")
NOT_SETTINGS = {"sources", "derived", "data_source"}  # config.json's records beside the settings themselves


def clean_record(record: dict) -> dict:
    """A metrics.jsonl record as the page draws it: numbers or null (a diverged run writes 'nan' as a word)."""
    out = {key: finite_or_none(record.get(key)) for key in RECORD_KEYS}
    out["step"], out["best"] = record["step"], bool(record.get("best"))
    return out


METRICS_CHUNK = 4 * 2**20  # bytes of metrics.jsonl read per poll: a large file is read over several polls


def metrics_since(path: Path, offset: int) -> dict:
    """The evaluations written to metrics.jsonl after byte `offset`, and the offset to ask from next time. A file
    shorter than the offset was rewritten (a resumed run drops what came after its checkpoint): read from the start,
    and say so with reset. A line still being written is left for the next read."""
    try:
        data, size = read_run_file(path, offset, METRICS_CHUNK)
        if size < offset:  # rewritten: from the start
            data, size = read_run_file(path, 0, METRICS_CHUNK)
        start = 0 if size < offset else offset
    except FileNotFoundError:
        return {"rows": [], "offset": 0, "reset": offset > 0}
    except Unreadable:  # a link or a pipe in place of the run's own file: nothing to draw
        return {"rows": [], "offset": 0, "reset": offset > 0}
    rows, used = whole_lines(data)
    return {"rows": [clean_record(r) for r in rows], "offset": start + used, "reset": start != offset}


def settings_of(config: dict) -> dict[str, tuple]:
    """setting -> (value, where it came from); the derived values (steps, warm-up, ...) as 'derived: NAME'."""
    sources = config.get("sources") or {}
    out = {k: (v, sources.get(k, "not recorded")) for k, v in config.items() if k not in NOT_SETTINGS}
    for key, entry in (config.get("derived") or {}).items():
        if isinstance(entry, dict):
            out[f"derived: {key}"] = (entry.get("value"), entry.get("rule", "derived"))
    return out


def readable_settings(config: dict) -> dict[str, tuple]:
    try:
        return settings_of(config)
    except (TypeError, AttributeError, ValueError):  # a config.json glassbox did not write: nothing to compare
        return {}


def differing_settings(configs: list[dict]) -> list[dict]:
    """The settings whose values are not the same in every run, each run's value and source side by side."""
    each = [readable_settings(c) for c in configs]
    keys = sorted(set().union(*each), key=lambda k: (k.startswith("derived: "), k))
    rows = []
    for key in keys:
        pairs = [s.get(key, (None, "not recorded")) for s in each]
        if len({json.dumps(v, sort_keys=True) for v, _ in pairs}) > 1:
            rows.append({"key": key, "values": [v for v, _ in pairs], "sources": [s for _, s in pairs]})
    return rows


def audit_lines(audit: dict | None) -> list[dict]:
    findings = (audit or {}).get("findings") or []
    return [{"title": f.get("title") or f.get("name"), "severity": f.get("severity"), "count": f.get("count"),
             "message": f.get("message")} for f in findings if isinstance(f, dict)]


SCORES = ("test_accuracy", "test_loss", "val_accuracy", "val_loss", "perplexity", "generalisation_gap", "test_rmse",
          "test_mae", "test_r2")  # the page's score columns; each kind of run fills in its own


def scores(s: RunSummary) -> dict:
    """The run's figures by score column: None where this kind of run has none, or it is not a finite number."""
    if isinstance(s, LMSummary):
        own = {"val_accuracy": s.val_accuracy, "val_loss": s.val_loss, "perplexity": s.perplexity}
    elif isinstance(s, ClassifierSummary):
        own = {"test_accuracy": s.test_accuracy, "test_loss": s.test_loss, "val_accuracy": s.val_accuracy,
               "val_loss": s.val_loss}
    else:
        own = {"test_loss": s.test_loss, "val_loss": s.val_loss, "test_rmse": s.test_rmse, "test_mae": s.test_mae,
               "test_r2": s.test_r2}
    figures = {**dict.fromkeys(SCORES), **own, "generalisation_gap": s.generalisation_gap}
    return {k: finite_or_none(v) for k, v in figures.items()}


def headlines(summary: RunSummary, audit: dict | None, memorization: dict | None) -> dict:
    """What a finished run adds: the verdict, the worries the report opens with, calibration and group sentences."""
    try:
        worries = top_worries(summary, audit, memorization)
    except (TypeError, AttributeError, KeyError, ValueError):  # figures inside a summary.json glassbox did not write
        worries = []
    # a regression's prediction intervals stand where a classifier's calibration does, its groups by column alike
    if isinstance(summary, LMSummary):
        calibration, groups = None, {}
    elif isinstance(summary, ClassifierSummary):
        calibration, groups = summary.calibration, summary.groups or {}
    else:
        calibration, groups = summary.interval, summary.groups or {}
    columns = groups.get("columns") or groups.get("by_column") or {}
    return {"verdict": summary.verdict, "worries": worries, "calibration": calibration.sentence if calibration else None,
            "groups": [{"column": c, "sentence": rep.get("sentence")} for c, rep in columns.items()
                       if isinstance(rep, dict)],
            "scores": scores(summary)}


def run_detail(folder: Path, row: dict) -> dict:
    """The run's row with its settings, chance level, audit findings and (once finished) headlines."""
    detail = {**row, "settings": [], "audit": [], "headlines": None, "chance_loss": None, "problems": [],
              "report": (folder / "report.html").is_file()}
    try:
        return read_detail(folder, detail)
    except (TypeError, AttributeError, ValueError) as e:  # JSON of the right syntax but not what glassbox writes
        return {**detail, "settings": [], "audit": [], "headlines": None,
                "problems": [f"its files hold values glassbox does not write ({type(e).__name__}: {e})"]}


def read_detail(folder: Path, detail: dict) -> dict:
    files = {}
    for name in ("config.json", "summary.json", "audit.json", "memorization.json"):
        try:
            files[name] = read_json(folder / name)
        except Unreadable as e:
            detail["problems"].append(str(e))
            files[name] = None
    config, summary = files["config.json"] or {}, files["summary.json"]
    detail["settings"] = [{"key": k, "value": v, "source": s} for k, (v, s) in settings_of(config).items()]
    detail["audit"] = audit_lines(files["audit.json"])
    if summary:
        try:
            typed = load_summary(summary)
        except SummaryError as e:
            detail["problems"].append(f"summary.json holds values glassbox does not write ({e})")
            return detail
        detail["headlines"] = headlines(typed, files["audit.json"], files["memorization.json"])
        detail["chance_loss"] = finite_or_none(typed.chance_loss)
    return detail

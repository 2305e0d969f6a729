"""Read a run folder for the report: JSON files only (nothing is ever unpickled)."""
from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field
from pathlib import Path

from glassbox.errors import UserError
from glassbox.report.summary import LMSummary, RunSummary, SummaryError, load_summary


@dataclass
class Run:
    path: Path
    summary: RunSummary                                 # summary.json, typed (report/summary.py)
    metrics: list[dict] = field(default_factory=list)   # metrics.jsonl, one evaluation per entry
    audit: dict | None = None                           # audit.json
    manifest: dict | None = None                        # model/manifest.json
    memorization: dict | None = None                    # memorization.json (language models)
    control_metrics: list[dict] = field(default_factory=list)  # control/metrics.jsonl (shuffled labels)

    @property
    def is_lm(self) -> bool:
        return isinstance(self.summary, LMSummary)

    @property
    def trained_on(self) -> str:
        """The training date (YYYY-MM-DD): from the artifact, else the corpus, else summary.json's time."""
        m, corpus = self.manifest or {}, (self.summary.corpus if self.is_lm else None) or {}
        for created in [m.get("created"), (m.get("knowledge_cutoff") or {}).get("trained_on"),
                        corpus.get("trained_on"), corpus.get("created")]:
            if isinstance(created, str) and len(created) >= 10:
                return created[:10]
        stamp = (self.path / "summary.json").stat().st_mtime
        return _dt.datetime.fromtimestamp(stamp, _dt.timezone.utc).strftime("%Y-%m-%d")


def _json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path} is not valid JSON ({e}); re-run training to rewrite it") from None
    return data if isinstance(data, dict) else None


def _jsonl(path: Path) -> list[dict]:
    """One object per line; a line cut short by an interrupted run is skipped, not fatal."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def missing_fields(summary: RunSummary) -> list[str]:
    """What every finished run's summary.json says and this one lacks: the kind of run and its data (the
    report leaves out the sections whose figures a summary lacks, but not these)."""
    lacking = []
    if summary.task not in ("classify", "regression", "lm"):
        lacking.append("task: classify, regression or lm")
    if not summary.data:
        lacking.append("data: what it trained on")
    return lacking


def load_run(run_dir) -> Run:
    path = Path(run_dir)
    if not path.is_dir():
        raise UserError(f"run folder not found: {path}; give the --out folder of a finished glassbox train")
    summary = _json(path / "summary.json")
    if summary is None and (path / "manifest.json").exists():
        raise UserError(f"{path} is a model artifact; give its run folder ({path.parent}) to glassbox report")
    if not isinstance(summary, dict) and (path / "summary.json").exists():
        raise UserError(f"{path / 'summary.json'} is damaged; run the training again (or --resume it) to rewrite it")
    if summary is None and not (path / "config.json").exists():
        raise UserError(f"{path} is not a glassbox run folder: it holds no summary.json and no config.json; give the "
                        f"--out folder of a glassbox train run")
    if summary is None:
        raise UserError(f"{path} holds no summary.json: the run has not finished; "
                        f"finish it (glassbox train --out {path} --resume) and make the report again")
    try:
        typed = load_summary(summary)
    except SummaryError as e:
        raise UserError(f"{path / 'summary.json'} holds what a finished run does not write ({e}); it is not the "
                        f"summary of a finished glassbox run: train again (or --resume the run) to rewrite it") from None
    lacking = missing_fields(typed)
    if lacking:
        raise UserError(f"{path / 'summary.json'} lacks what a finished run records ({', '.join(lacking)}); it is not "
                        f"the summary of a finished glassbox run: train again (or --resume the run) to rewrite it")
    return Run(path=path, summary=typed, metrics=_jsonl(path / "metrics.jsonl"),
               audit=_json(path / "audit.json"), manifest=_json(path / "model" / "manifest.json"),
               memorization=_json(path / "memorization.json"),
               control_metrics=_jsonl(path / "control" / "metrics.jsonl"))

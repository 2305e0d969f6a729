"""How every run ends, classifier or language model: summary.json, the report page, the time each stage took,
and the closing lines on the terminal."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from glassbox.config import TrainConfig
from glassbox.report import write_report
from glassbox.report.summary import load_summary
from glassbox.run.audit_step import headline
from glassbox.runtime.files import write_json
from glassbox.train.parallel import world_record
from glassbox.train.progress import Laps
from glassbox.train.tensorboard import write_final


def say(cfg: TrainConfig, text: str) -> None:
    """A line on the terminal, unless --quiet (or on a rank other than 0 under torchrun)."""
    if not cfg.quiet:
        print(text, flush=True)


def finish(built: dict, cfg: TrainConfig, run_dir: Path, lap: Laps, closing: Callable[[dict], str]) -> dict:
    """Write summary.json (the typed summary of the dict the run built: report/summary.py) and report.html, time
    them too, and say `closing(summary)`. Returns summary.json's content."""
    summary = load_summary(built)  # a value of the wrong type is a bug in the run's own code: raised here
    summary.wall_seconds, summary.stage_seconds = lap.elapsed, lap.seconds
    write_json(run_dir / "summary.json", summary.to_dict())
    write_report(run_dir)
    lap("report")  # recorded after the page is written: the summary has it, the page cannot
    summary.wall_seconds, summary.stage_seconds = lap.elapsed, lap.seconds
    written = summary.to_dict()
    write_json(run_dir / "summary.json", written)
    if cfg.tensorboard:  # the settings and final figures next to the scalars the loop wrote (train/tensorboard.py)
        write_final(run_dir, cfg.to_dict(), cfg.sources, summary)
    say(cfg, closing(written))  # each middle's closing lines read the dict it built
    return written


def finish_diverged(result, summary: dict, cfg: TrainConfig, run_dir: Path, lap: Laps) -> dict:
    """Training diverged before any evaluation beat the untrained model: no weights are worth keeping, so there is
    no artifact and nothing to score; summary.json and the report still say what happened and what to change."""
    summary.update(steps=result.steps, best_step=None, stopped_early=False, stop_reason="diverged",
                   diverged=result.diverged, verdict=result.verdict, chance=result.chance,
                   chance_loss=result.chance["loss"], train_seconds=result.train_seconds, artifact=None,
                   **world_record(result, cfg.batch_size))  # how many processes ran which steps, as a finished run
    files = {"summary": "summary.json", "metrics per eval": "metrics.jsonl", "report": "report.html"}
    return finish(summary, cfg, run_dir, lap, lambda s: "\n".join(folder_lines(run_dir, files)))


# What a classifier's or a regression's run folder holds, as its closing lines name them.
RUN_FILES = {"model artifact": "model", "summary": "summary.json", "metrics per eval": "metrics.jsonl",
             "split indices": "split.json", "checkpoints": "checkpoints", "audit": "audit.json", "report": "report.html"}


def training_record(result, ex, arch: str, cfg: TrainConfig, audit: dict) -> dict:
    """What a classifier's and a regression's summary.json both record of the data, the model and its training."""
    return {
        "data": ex.source, "kind": ex.kind, "model": arch, "n_params": sum(p.numel() for p in result.model.parameters()),
        "steps": result.steps, "best_step": result.best_step, "stopped_early": result.stopped_early,
        "stop_reason": result.stop_reason, "verdict": result.verdict, "diverged": result.diverged,
        "chance_loss": result.chance["loss"], "chance": result.chance, "train_seconds": result.train_seconds,
        "threads": result.thread_choice, "examples_per_second": result.examples_seen / max(result.train_seconds, 1e-9),
        "control": cfg.control, "data_fingerprint": ex.fingerprint(), "audit": headline(audit),
        **world_record(result, cfg.batch_size),
    }


def folder_lines(run_dir: Path, files: dict[str, str]) -> list[str]:
    """The run folder and what it holds, one line each (files: label -> name inside the folder)."""
    lines = [f"run folder: {run_dir}"]
    for label, name in files.items():
        if (run_dir / name).exists():
            lines.append(f"  {label + ':':<17} {run_dir / name}")
    return lines

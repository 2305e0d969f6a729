"""`glassbox train` and `glassbox.train()`: the front every run shares, then the classifier's or the language
model's middle (classifier.py, lm.py), which end in the same finish (finish.py).

    settings (given -> typed config with sources) -> device and process group -> run folder (with the copy of data
    given in memory: run/in_memory.py) -> config.json -> run_classifier | run_lm
"""
from __future__ import annotations

import shutil
from pathlib import Path

from glassbox.errors import UserError
from glassbox.run.folder import IN_MEMORY_COPY, check_source_unchanged, mark_running, prepare_run_dir, source_record
from glassbox.run.in_memory import Staged
from glassbox.run.settings import settings_for_new_run, settings_for_resume, settings_record
from glassbox.runtime import distributed
from glassbox.runtime.device import pick_device
from glassbox.runtime.files import write_json
from glassbox.train.tensorboard import require_tensorboard


def train(data: str | None = None, *, sources: dict | None = None, **settings) -> dict:
    """Train on `data` end to end; returns the summary that is also written to RUN/summary.json.

    settings: TrainConfig keys the user set; sources: where each came from (key -> words, e.g. 'flag'; default
    'given'), recorded in RUN/config.json next to the defaults that filled in the rest."""
    return start_run(data, sources=sources, **settings)[1]


def start_run(data: str | Staged | None = None, *, sources: dict | None = None, **settings) -> tuple[Path, dict]:
    """`train`, returning the run folder too. `data` may be in-memory data already written as Parquet
    (run/in_memory.py): the file moves into the new run folder, and config.json records what it was."""
    staged = data if isinstance(data, Staged) else None
    try:
        return _start(str(staged.path) if staged else data, staged, sources, settings)
    finally:
        if staged is not None:
            staged.discard()  # its temporary folder, and the file where no run folder took it


def _start(data: str | None, staged: Staged | None, sources: dict | None, settings: dict) -> tuple[Path, dict]:
    given = {k.replace("-", "_"): v for k, v in {**settings, "data": data}.items() if v is not None}
    out = given.get("out")
    if distributed.restart_count() and out and (Path(str(out)) / "config.json").exists():
        given["resume"] = True  # torchrun restarted the workers after a failure: continue from the last checkpoint
    resume = bool(given.get("resume"))
    if given.get("tensorboard"):
        require_tensorboard()  # before a run folder is made
    if resume:  # continue exactly as configured when the run started, on the same data
        from glassbox.config import make_config

        run_dir = prepare_run_dir(make_config({"resume": True, "out": out}), "")
        cfg, data_record = settings_for_resume(run_dir, given, sources)
        dist = distributed.setup(pick_device(cfg.device))  # the saved device (or --device now): the group's backend
        distributed.share(cfg.batch_size, dist.world_size)  # the global batch must split among this many processes
        check_source_unchanged(run_dir, data_record, str(cfg.data))
    else:
        cfg = settings_for_new_run(given, sources)
        # Under torchrun: one process per device joins the group here. Every process loads, splits and encodes
        # the same data (all seeded) and trains its slice of every global batch; rank 0 alone writes and finishes.
        dist = distributed.setup(pick_device(cfg.device))
        distributed.share(cfg.batch_size, dist.world_size)  # refused before a run folder is made
        run_dir = prepare_run_dir(cfg, str(cfg.data))
        if staged is not None and dist.is_main:  # the other processes read their own temporary copy
            cfg.data = str(staged.keep_in(run_dir))
        if dist.is_main:
            record = source_record(str(cfg.data), staged.record if staged else None)
            write_json(run_dir / "config.json", settings_record(cfg, record))
    if not dist.is_main:
        cfg.quiet = True
    running = mark_running(run_dir) if dist.is_main else None  # while this process lives (glassbox board reads it)
    try:
        if cfg.tensorboard:
            require_tensorboard()  # now, in one line, not after the audit
        if cfg.task == "lm":
            from glassbox.run.train.lm import run_lm

            return run_dir, run_lm(cfg, run_dir)
        from glassbox.run.train.classifier import run_classifier

        return run_dir, run_classifier(cfg, run_dir)
    except UserError:
        if running is not None:
            running.unlink(missing_ok=True)
        if dist.is_main and not cfg.out and not cfg.resume:
            remove_if_empty(run_dir)
        raise
    finally:
        if running is not None:
            running.unlink(missing_ok=True)


def remove_if_empty(run_dir) -> None:
    """Bad input found before anything worth keeping was written: leave no empty folder behind (the audit's
    findings, which the error may point to, are kept)."""
    if run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= {"config.json", "split.json", IN_MEMORY_COPY}:
        shutil.rmtree(run_dir, ignore_errors=True)
        try:
            run_dir.parent.rmdir()  # runs/ too, when this run was all it held
        except OSError:
            pass

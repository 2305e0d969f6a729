"""A run's folder: made atomically (runs/<date>-<time>-<data>, -2, -3, ... when taken), never overwritten,
and the record of the data files a run started on, which --resume checks."""
from __future__ import annotations

import datetime as _dt
import hashlib
import os
import socket
from pathlib import Path

from glassbox.config import TrainConfig
from glassbox.errors import UserError
from glassbox.runtime import distributed
from glassbox.runtime.files import write_json


def default_run_dir(data: str) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{stamp}-{Path(str(data)).stem or 'data'}"


def make_new_folder(base: Path) -> Path:
    """Create base, or base-2, base-3, ... whichever is free, atomically: two runs started in the same
    second never share a folder."""
    base.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 10_000):
        folder = base if attempt == 1 else base.with_name(f"{base.name}-{attempt}")
        for _ in range(3):
            try:
                folder.mkdir()
                return folder
            except FileExistsError:
                break
            except FileNotFoundError:  # another run removed an empty runs/ just now: make it again
                base.parent.mkdir(parents=True, exist_ok=True)
        else:
            raise UserError(f"cannot create a run folder in {base.parent} (it keeps disappearing); give --out DIR")
    raise UserError(f"{base.parent} already holds {base.name} and 9,999 numbered copies of it; give --out DIR")


def prepare_run_dir(cfg: TrainConfig, data: str) -> Path:
    """Check the run folder, then (rank 0 only, once every process has checked) create it.

    Under torchrun every process checks before any writes, so they all reach the same verdict.
    Without --out, a new folder runs/<date>-<time>-<data> is made (with -2, -3, ... when taken)."""
    dist = distributed.current()
    if dist.enabled and not cfg.out:
        raise UserError("under torchrun give --out DIR: every process must use the same run folder")
    run_dir = check_run_dir(cfg, data)
    distributed.barrier()
    if dist.is_main:
        try:
            if cfg.out:
                run_dir.mkdir(parents=True, exist_ok=True)
            else:
                run_dir = make_new_folder(run_dir)
        except OSError as e:
            raise UserError(f"cannot create the run folder {run_dir} ({e.strerror or type(e).__name__}); "
                            f"choose another --out") from None
    return run_dir


def check_run_dir(cfg: TrainConfig, data: str) -> Path:
    run_dir = Path(cfg.out) if cfg.out else default_run_dir(data)
    if cfg.resume:
        if not cfg.out:
            raise UserError("--resume needs --out RUN naming the run folder to continue")
        if not (run_dir / "config.json").exists():
            raise UserError(f"nothing to resume in {run_dir}: it holds no glassbox run; drop --resume or give the run's --out")
        return run_dir
    if not cfg.out:
        return run_dir  # a new folder of its own, made by prepare_run_dir
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"--out {run_dir} is a file, not a folder; choose another --out")
    if run_dir.exists() and any(run_dir.iterdir()):
        held = {p.name for p in run_dir.iterdir()}
        if held <= NEVER_TRAINED:
            return run_dir  # a run that stopped before training (bad input, audit errors): start it afresh
        if "config.json" in held:
            raise UserError(f"run folder {run_dir} already holds files of a glassbox run; choose another --out for a new "
                            f"run, or continue that one with: glassbox train --out {run_dir} --resume")
        raise UserError(f"--out {run_dir} already holds files, and no glassbox run to --resume; choose another --out "
                        f"(a new or empty folder)")
    return run_dir


def data_files(data: str) -> list[tuple[str, Path]] | None:
    """(name, path) of each file the training data is read from, in a fixed order; None when there is
    nothing to fingerprint (built-in data, a path that is missing or not a regular file or folder)."""
    from glassbox.data.builtin import BUILTIN
    from glassbox.data.images import IMAGE_SUFFIXES, is_image_source

    root = Path(str(data))
    if str(data) in BUILTIN:
        return None
    if root.is_file():
        return [(root.name, root)]
    if not root.is_dir():
        return None
    if is_image_source(root):  # the images and IDX files the loader reads; notes and other files may change
        files = [f for f in root.rglob("*") if f.is_file() and (f.suffix.lower() in IMAGE_SUFFIXES or
                                                                "-idx" in f.name)]
    else:  # a corpus folder: every file but hidden ones, as the corpus reader takes them
        files = [f for f in root.rglob("*")
                 if f.is_file() and not any(s.startswith(".") for s in f.relative_to(root).parts)]
    return [(f.relative_to(root).as_posix(), f) for f in sorted(files)]


def source_record(data: str, in_memory: dict | None = None) -> dict | None:
    """The record of the data's files that config.json keeps: path, file count, size and sha256 (None: see
    data_files); for data given in memory, what it was (`in_memory`: run/in_memory.py's record of it)."""
    try:
        files = data_files(data)
        if files is None:
            return None
        h, size = hashlib.sha256(), 0
        for name, path in files:
            h.update(name.encode("utf-8", "surrogatepass") + b"\x00")
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
                    size += len(chunk)
            h.update(b"\x01")
    except OSError:
        return None  # unreadable data: the loader says what is wrong with it
    record = {"data": str(data), "files": len(files), "bytes": size, "sha256": h.hexdigest()}
    return {**record, "in_memory": in_memory} if in_memory else record


def check_source_unchanged(run_dir: Path, source: dict | None, data: str) -> None:
    """--resume: refuse data whose files differ from those the run started with (source: what config.json
    recorded of them; None for runs from before glassbox kept a record, which are not checked)."""
    now = source_record(data) if source is not None else None
    if now is None or now["sha256"] == source["sha256"]:
        return  # the same data (or nothing to compare: the loader says what is wrong with a missing path)
    then_bytes, then_files = source.get("bytes"), source.get("files")
    if then_files != now["files"] and isinstance(then_files, int):
        what = f"{then_files:,} files then, {now['files']:,} now"
    elif then_bytes != now["bytes"] and isinstance(then_bytes, int):
        what = f"{then_bytes:,} bytes then, {now['bytes']:,} now"
    else:
        what = "same size, different content"
    raise UserError(f"the data {data} changed since the run in {run_dir} started ({what}); --resume continues training "
                    f"on the same data: put the data back as it was, or train afresh with a new --out")


# The copy of data given to glassbox.train in memory (a DataFrame, arrays, texts), which the run reads
# (run/in_memory.py).
IN_MEMORY_COPY = "data.parquet"

# What a run folder holds when the run stopped before its first training step; such a folder is reused.
NEVER_TRAINED = {"config.json", "split.json", "audit.json", IN_MEMORY_COPY}

# Held in the run folder only while a training process works in it; one left behind names a process that died.
RUNNING = "running.json"


def mark_running(run_dir: Path) -> Path:
    """Write RUN/running.json (this process's id, host and start time), which says that the run is live; the caller
    removes it when the process ends."""
    path = Path(run_dir) / RUNNING
    write_json(path, {"pid": os.getpid(), "host": socket.gethostname(),
                      "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")})
    return path

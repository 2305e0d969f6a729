"""The runs under a folder and each one's row on the board, read from its files (never written).

A run's status comes from two files: summary.json, written when a run ends (its stop_reason says how), and
running.json, which `glassbox train` holds in the folder while its process lives (run/folder.py mark_running).
A running.json whose process is gone means the run was killed before it could finish."""
from __future__ import annotations

import datetime as _dt
import errno
import json
import math
import os
import socket
import stat
import time
from pathlib import Path

from glassbox.report.summary import LMSummary, RegressionSummary, RunSummary, Summary, SummaryError, load_summary

RUNNING = "running.json"  # the name run/folder.py gives it (the board imports nothing that loads torch)
NOT_RUNS = {"checkpoints", "model", "data", "control", "tensorboard"}  # folders inside a run, never runs themselves
MAX_DEPTH = 3  # runs/<name>, runs/<group>/<name>, runs/<a>/<b>/<name>
STOP_REASONS = {"max_steps": "finished", "early_stop": "stopped early", "diverged": "diverged",
                "interrupted": "interrupted"}
STAMPED = ("summary.json", "config.json", "metrics.jsonl", RUNNING)  # a row is read again when one of them changes


class Unreadable(Exception):
    """A run file that exists but cannot be read as what glassbox writes (cut short, damaged, not JSON)."""


MAX_FILE_BYTES = 64 * 2**20  # a run's JSON files are kilobytes, its metrics.jsonl rarely a megabyte


def read_run_file(path: Path, offset: int = 0, limit: int = MAX_FILE_BYTES) -> tuple[bytes, int]:
    """(the bytes of a run's own file from `offset`, at most `limit` of them; the file's size). Only a regular file
    is read: a link (it could lead out of the runs folder) or a pipe or device (it could block the board or never
    end) is Unreadable, and so is a file that cannot be read; an absent file raises FileNotFoundError."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)  # a pipe opens at once and is refused below
    except FileNotFoundError:
        raise
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise Unreadable(f"{path.name} is a link; the board reads only the run's own files") from None
        raise Unreadable(f"{path.name} cannot be read ({e.strerror or type(e).__name__})") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Unreadable(f"{path.name} is not a regular file; the board reads only the run's own files")
        f.seek(min(offset, st.st_size))
        return f.read(limit), st.st_size


def read_json(path: Path) -> dict | None:
    """A JSON object, None when the file is absent; raises Unreadable for anything else."""
    try:
        data, size = read_run_file(path)
        if size > MAX_FILE_BYTES:
            raise Unreadable(f"{path.name} holds {size:,} bytes, more than glassbox writes there")
        text = data.decode("utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as e:
        raise Unreadable(f"{path.name} cannot be read ({e})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise Unreadable(f"{path.name} is not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise Unreadable(f"{path.name} holds no JSON object")
    return data


def whole_lines(data: bytes) -> tuple[list[dict], int]:
    """The JSON objects on the complete lines of `data`, and how many bytes those lines take: a last line without
    its newline is still being written, so it is left for the next read. A damaged line is skipped."""
    end = data.rfind(b"\n") + 1
    rows = []
    for line in data[:end].splitlines():
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int):
            rows.append(row)
    return rows, end


def read_metrics(path: Path) -> list[dict]:
    """The evaluations in metrics.jsonl (Unreadable: a link, a pipe, a device, or more than a run writes)."""
    try:
        data, size = read_run_file(path)
    except FileNotFoundError:
        return []
    if size > MAX_FILE_BYTES:
        raise Unreadable(f"{path.name} holds {size:,} bytes, more than glassbox writes there")
    return whole_lines(data)[0]


def is_run(folder: Path) -> bool:
    return (folder / "config.json").is_file() or (folder / "summary.json").is_file()


def find_runs(root: Path) -> list[Path]:
    """Every run folder under root (root itself when it is one), newest name first; hidden folders and the folders
    inside a run are passed over."""
    if is_run(root):
        return [root]
    found, todo = [], [(root, 0)]
    while todo:
        folder, depth = todo.pop()
        try:
            children = [Path(e.path) for e in os.scandir(folder) if e.is_dir() and not e.name.startswith(".")]
        except OSError:  # removed or unreadable while we looked
            continue
        for child in children:
            if is_run(child):
                found.append(child)
            elif depth + 1 < MAX_DEPTH and child.name not in NOT_RUNS:
                todo.append((child, depth + 1))
    return sorted(found, key=lambda p: p.as_posix(), reverse=True)


def process_alive(marker: dict) -> bool | None:
    """Whether the process named in running.json still lives: None when it ran on another host (not checkable)."""
    if marker.get("host") != socket.gethostname():
        return None
    pid = marker.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        return True
    try:  # a killed process its parent has not yet reaped is a zombie: dead for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def status_of(summary: dict | None, marker: dict | None, trained: bool) -> tuple[str, str]:
    """(status, what it means) from summary.json, running.json and whether any evaluation was logged."""
    if marker is not None:
        alive = process_alive(marker)
        if alive is None:
            return "running", f"running on {marker.get('host')}, where this board cannot check its process"
        if alive:
            return "running", f"training process {marker.get('pid')} is working in this folder"
    if summary is not None:
        reason = summary.get("stop_reason")
        return STOP_REASONS.get(reason, "finished"), f"stop reason: {reason or 'not recorded'}"
    resume = "glassbox train --out RUN --resume continues it"
    if marker is not None:
        return "interrupted", f"its process ({marker.get('pid')}) ended without finishing the run; {resume}"
    if not trained:
        return "stopped before training", "no evaluation was logged: bad input or the data audit stopped it"
    return "interrupted", f"no summary.json and no live process: it stopped without finishing; {resume}"


def stamp(folder: Path) -> tuple:
    out = []
    for name in STAMPED:
        try:
            st = (folder / name).stat()
            out.append((st.st_mtime_ns, st.st_size))
        except OSError:
            out.append(None)
    return tuple(out)


def finite_or_none(value):
    """Numbers the page can draw: JSON has no NaN or infinity (and glassbox writes those as words)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None


def score(summary: RunSummary) -> tuple[str | None, float | None]:
    if isinstance(summary, LMSummary):
        return "perplexity", finite_or_none(summary.perplexity)
    if isinstance(summary, RegressionSummary):  # in the label's units, the error a user reads first
        return "test RMSE", finite_or_none(summary.test_rmse)
    return "test accuracy", finite_or_none(summary.test_accuracy)


def total_steps(config: dict, summary: Summary) -> int | None:
    derived = (config.get("derived") or {}).get("steps") or {}
    for value in (summary.steps if summary.stop_reason == "max_steps" else None,
                  derived.get("value"), config.get("max_steps")):
        if isinstance(value, int):
            return value
    return None


def started_at(folder: Path, marker: dict | None) -> str | None:
    if marker and isinstance(marker.get("started"), str):
        return marker["started"]
    try:
        mtime = (folder / "config.json").stat().st_mtime
    except OSError:
        return None
    return _dt.datetime.fromtimestamp(mtime, _dt.timezone.utc).isoformat(timespec="seconds")


def read_row(folder: Path, run_id: str) -> dict:
    """A run's row: what it trained, how far, how well, how long; `status` is filled in by `row`."""
    row = {"id": run_id, "name": folder.name, "problem": None}
    try:
        summary, config = read_json(folder / "summary.json"), read_json(folder / "config.json") or {}
        row["marker"] = read_json(folder / RUNNING)
        read_metrics(folder / "metrics.jsonl")  # a link or a pipe there is the row's problem, said here
    except Unreadable as e:
        return {**row, "problem": str(e), "data": None, "task": None, "model": None, "marker": None, "trained": False}
    try:
        return {**row, **row_fields(folder, load_summary(summary) if summary else None, config, row["marker"])}
    except (SummaryError, TypeError, AttributeError, ValueError) as e:  # JSON of the right syntax, not glassbox's
        return {**row, "problem": f"its files hold values glassbox does not write ({type(e).__name__}: {e})",
                "data": None, "task": None, "model": None, "trained": False}


def row_fields(folder: Path, summary: RunSummary | None, config: dict, marker: dict | None) -> dict:
    """summary: None until the run has finished."""
    metrics = read_metrics(folder / "metrics.jsonl")
    best = [m["step"] for m in metrics if m.get("best")]
    done = summary is not None
    s = summary if done else Summary()  # an unfinished run's figures: all None
    name, value = score(summary) if done else (None, None)
    return {"data": str(s.data or config.get("data") or ""),
            "task": s.task or ("lm" if config.get("task") == "lm" else "classify"),
            "model": s.model or config.get("model"), "finished": done, "stop_reason": s.stop_reason,
            "step": metrics[-1]["step"] if metrics else s.steps, "total_steps": total_steps(config, s),
            "best_step": s.best_step if done else (best[-1] if best else None),
            "score_name": name, "score": value, "wall_seconds": finite_or_none(s.wall_seconds),
            "started": started_at(folder, marker), "trained": bool(metrics) or done}


class RunIndex:
    """The runs under root, each row read again only when one of its files changed (200 runs stay cheap to poll)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._cache: dict[Path, tuple[tuple, dict]] = {}

    def run_id(self, folder: Path) -> str:
        return "." if folder == self.root else folder.relative_to(self.root).as_posix()

    def folder(self, run_id: str) -> Path | None:
        """The run folder a page asks for, only if it is a run under root now (nothing outside root is reached)."""
        if "\x00" in run_id:  # no path holds one: not a run (resolving it would raise)
            return None
        path = (self.root / run_id).resolve()
        base = self.root.resolve()
        if not (path == base or path.is_relative_to(base)) or not is_run(path):
            return None
        return self.root / run_id

    def row(self, folder: Path) -> dict:
        key = stamp(folder)
        cached = self._cache.get(folder)
        base = cached[1] if cached and cached[0] == key else read_row(folder, self.run_id(folder))
        self._cache[folder] = (key, base)
        row = {k: v for k, v in base.items() if k != "marker"}
        if base["problem"]:
            row["status"], row["status_note"] = "unreadable", base["problem"]
        else:
            row["status"], row["status_note"] = status_of(base if base.get("finished") else None, base["marker"],
                                                          base["trained"])
        if row["status"] == "running" and row.get("started"):
            try:
                row["wall_seconds"] = max(0.0, time.time() - _dt.datetime.fromisoformat(row["started"]).timestamp())
            except ValueError:  # a start time glassbox did not write
                row["wall_seconds"] = None
        return row

    def rows(self) -> list[dict]:
        folders = find_runs(self.root)
        gone = set(self._cache) - set(folders)
        for folder in gone:
            del self._cache[folder]
        return [self.row(folder) for folder in folders]

"""What the user sees while training: a live rich progress bar on a terminal, plain periodic
lines otherwise (CI, logs), and metrics.jsonl with one JSON object per evaluation."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path


class Laps:
    """Wall time per stage of a run: lap("name") adds the seconds since the last lap to seconds["name"]."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.start = self._last = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self._last
        self._last = now

    @property
    def elapsed(self) -> float:
        """Seconds since the first stage began."""
        return time.perf_counter() - self.start


class Progress:
    def __init__(self, total_steps: int, quiet: bool = False, metrics_path: Path | None = None, start_step: int = 0,
                 tensorboard: bool = False, label: str = "training", stream=None):
        """label: what the bar counts; stream: where it is drawn (default stdout; stderr keeps stdout for data)."""
        self.total, self.quiet, self.metrics_path = total_steps, quiet, metrics_path
        self.live = None
        self.writer = None  # TensorBoard's, next to metrics.jsonl (--tensorboard)
        if tensorboard and metrics_path is not None:
            from glassbox.train.tensorboard import open_writer

            self.writer = open_writer(metrics_path.parent, purge_step=start_step + 1 if start_step else None)
        stream = stream or sys.stdout
        if not quiet and stream.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeRemainingColumn

            self.live = RichProgress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[info]}"), TimeRemainingColumn(), transient=False,
                                     console=Console(file=stream))
            self.task = self.live.add_task("train", total=total_steps, completed=start_step, info="")
            self.live.start()

    def say(self, text: str) -> None:
        if self.quiet:
            return
        if self.live is not None:
            self.live.console.print(text)
        else:
            print(text, flush=True)

    def step(self, step: int, loss: float | None = None) -> None:
        if self.live is not None:
            info = f"loss {loss:.4f}" if loss is not None else ""
            self.live.update(self.task, completed=step, info=info)

    def evaluation(self, record: dict) -> None:
        if self.metrics_path is not None:
            with open(self.metrics_path, "a") as f:
                f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            from glassbox.train.tensorboard import write_evaluation

            write_evaluation(self.writer, record)
        if self.quiet:
            return
        parts = [f"step {record['step']:>6}/{self.total}"]
        for key, fmt in (("train_loss", "train loss {:.4f}"), ("val_loss", "val loss {:.4f}"),
                         ("val_accuracy", "val acc {:.4f}"), ("lr", "lr {:.2e}"), ("examples_per_s", "{:.0f} ex/s")):
            if record.get(key) is not None:
                parts.append(fmt.format(record[key]))
        if record.get("best"):
            parts.append("*best*")
        self.say(" | ".join(parts))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self.live is not None:
            self.live.stop()
            self.live = None


def truncate_metrics(path: Path, last_step: int) -> None:
    """On resume, drop records written after the checkpoint we continue from."""
    if not path.exists():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= last_step]
    path.write_text("".join(ln + "\n" for ln in keep))

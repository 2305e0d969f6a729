"""What the user sees while training: a live rich progress bar on a terminal, one bar redrawn in place in a Jupyter
notebook, plain periodic lines otherwise (CI, logs), and metrics.jsonl with one JSON object per evaluation."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from glassbox.runtime.files import json_text


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
        self.bar = None  # the notebook's bar (NotebookBar) where a Jupyter kernel runs this
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
        elif not quiet and in_notebook():  # rich would need ipywidgets there; a plain print per step would flood it
            self.bar = NotebookBar(label, total_steps, start_step)

    def say(self, text: str) -> None:
        if self.quiet:
            return
        if self.live is not None:
            self.live.console.print(text)
        else:
            print(text, flush=True)

    def step(self, step: int, loss: float | None = None) -> None:
        info = f"loss {loss:.4f}" if loss is not None else ""
        if self.live is not None:
            self.live.update(self.task, completed=step, info=info)
        elif self.bar is not None:
            self.bar.update(step, info)

    def evaluation(self, record: dict) -> None:
        if self.metrics_path is not None:
            with open(self.metrics_path, "a") as f:
                f.write(json_text(record) + "\n")
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
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def in_notebook() -> bool:
    """Whether a Jupyter kernel runs this process (IPython's shell there is ZMQInteractiveShell); IPython is never
    imported here, only asked where it is already loaded."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return type(shell).__name__ == "ZMQInteractiveShell"


class NotebookBar:
    """A progress bar in a notebook cell: one output, redrawn in place through IPython's display ids at most
    `EVERY` seconds apart, so a run of 10,000 steps leaves one bar in the notebook, not 10,000 lines."""

    EVERY = 0.25  # seconds between redraws

    def __init__(self, label: str, total: int, done: int = 0):
        from IPython.display import display

        self.label, self.total, self.start = label, max(1, total), time.perf_counter()
        self.first, self.done, self.info, self.drawn = done, done, "", 0.0
        self.handle = display(self._bundle(), raw=True, display_id=True)

    def update(self, done: int, info: str = "") -> None:
        self.done, self.info = done, info
        if time.perf_counter() - self.drawn >= self.EVERY:
            self._draw()

    def close(self) -> None:
        self._draw()

    def _draw(self) -> None:
        self.drawn = time.perf_counter()
        self.handle.update(self._bundle(), raw=True)

    def _bundle(self) -> dict:
        """The bar as text (a console, a saved notebook's plain view) and as HTML."""
        import html

        share = min(1.0, self.done / self.total)
        elapsed, moved = time.perf_counter() - self.start, self.done - self.first
        left = f"{elapsed / moved * (self.total - self.done):.0f} s left" if 0 < moved and self.done < self.total else ""
        words = " ".join(w for w in (f"{self.done}/{self.total}", self.info, left or f"{elapsed:.1f} s") if w)
        text = f"{self.label} [{'#' * round(30 * share):<30}] {words}"
        page = (f'<div style="font-family: monospace"><b>{html.escape(self.label)}</b> '
                f'<progress value="{self.done}" max="{self.total}" style="width: 40%"></progress> '
                f"{html.escape(words)}</div>")
        return {"text/plain": text, "text/html": page}

def truncate_metrics(path: Path, last_step: int) -> None:
    """On resume, drop records written after the checkpoint we continue from."""
    if not path.exists():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= last_step]
    path.write_text("".join(ln + "\n" for ln in keep))

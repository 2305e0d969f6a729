"""TensorBoard event files in RUN/tensorboard/ (`--tensorboard`): the scalars of each evaluation as they happen,
and when the run ends its settings (as text and as HParams) and final figures. Written with PyTorch's own
`torch.utils.tensorboard` writer, which needs the optional `tensorboard` package."""
from __future__ import annotations

import json
from pathlib import Path

from glassbox.errors import UserError

FOLDER = "tensorboard"
# metrics.jsonl key -> TensorBoard tag; the two losses share a section, so TensorBoard shows them side by side
SCALARS = {"train_loss": "loss/train", "val_loss": "loss/validation", "val_accuracy": "accuracy/validation",
           "lr": "optimizer/learning_rate", "grad_norm": "optimizer/gradient_norm",
           "examples_per_s": "speed/examples_per_second"}
# the summary's attribute (report/summary.py; summary.json's key) -> the final figure's tag (the HParams table's
# metric columns); a kind of run without one has no such attribute
FINAL = {"test_accuracy": "final/test_accuracy", "test_loss": "final/test_loss", "val_loss": "final/val_loss",
         "val_accuracy": "final/val_accuracy", "perplexity": "final/perplexity", "best_step": "final/best_step",
         "train_seconds": "final/train_seconds", "test_rmse": "final/test_rmse", "test_mae": "final/test_mae",
         "test_r2": "final/test_r2"}  # the last three: a regression's


def require_tensorboard() -> None:
    """Refuse --tensorboard in one line, before any work, when the writer's package is missing."""
    try:
        import tensorboard  # noqa: F401  (torch.utils.tensorboard needs it)
    except ImportError:
        raise UserError("--tensorboard needs the tensorboard package; install it with: "
                        "pip install 'glassbox[tensorboard]' (or drop --tensorboard)") from None


def open_writer(run_dir: Path, purge_step: int | None = None):
    """A SummaryWriter on RUN/tensorboard. purge_step: on --resume, the first step after the checkpoint; TensorBoard
    drops what an earlier session logged from there on, as glassbox truncates metrics.jsonl."""
    require_tensorboard()
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(Path(run_dir) / FOLDER), purge_step=purge_step)


def write_evaluation(writer, record: dict) -> None:
    """One metrics.jsonl record as scalars at its step (values that are None, as at step 0, are left out)."""
    for key, tag in SCALARS.items():
        value = record.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            writer.add_scalar(tag, value, record["step"])
    if record.get("chance_loss") is not None:
        writer.add_scalar("loss/chance_ln_k", record["chance_loss"], record["step"])
    writer.flush()  # a TensorBoard watching the folder sees each evaluation as it is written


def hparam_value(value):
    """HParams hold numbers, booleans and strings: lists and None are written as their JSON text."""
    if isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value)


def write_final(run_dir: Path, settings: dict, sources: dict, summary) -> None:
    """The run's settings (a table of value and source, and HParams) and its final figures, at its last step.
    summary: the run's typed summary (report/summary.py, which this layer does not import)."""
    from torch.utils.tensorboard.summary import hparams

    step = summary.steps or 0
    figures = {tag: getattr(summary, name, None) for name, tag in FINAL.items()}
    finals = {tag: float(x) for tag, x in figures.items() if isinstance(x, (int, float)) and not isinstance(x, bool)}
    rows = "\n".join(f"| {key} | {json.dumps(value)} | {sources.get(key, '')} |" for key, value in settings.items())
    with open_writer(run_dir) as writer:
        writer.add_text("config", "| setting | value | from |\n|---|---|---|\n" + rows, step)
        for tag, value in finals.items():
            writer.add_scalar(tag, value, step)
        for proto in hparams({k: hparam_value(v) for k, v in settings.items()}, finals):
            writer.file_writer.add_summary(proto, step)  # in this run's own folder, not a sub-run as add_hparams does

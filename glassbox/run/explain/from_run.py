"""`glassbox explain RUN`: a finished (or running) run's own data and settings, and its model as its earliest kept
checkpoint left it (weights and optimizer state), so the step explained is the one the run took next."""
from __future__ import annotations

from pathlib import Path

from glassbox.errors import UserError
from glassbox.run.settings import read_saved_config
from glassbox.train.checkpoint import Checkpointer, Damaged, load_optimizer

MAY_GIVE = ("out", "quiet")  # with RUN, everything else is the run's own


def is_run_folder(data) -> bool:
    return data is not None and Path(str(data)).is_dir() and (Path(str(data)) / "config.json").is_file() \
        and (Path(str(data)) / "checkpoints").is_dir()


def run_settings(run: Path, given: dict, sources: dict | None) -> tuple[dict, dict]:
    """The settings the run chose (not its defaults, which this version supplies again for the data), with only
    --out and --quiet taken from this command."""
    extra = sorted(k for k in given if k not in (*MAY_GIVE, "data"))
    if extra:
        flags = ", ".join("--" + k.replace("_", "-") for k in extra)
        raise UserError(f"glassbox explain RUN uses the settings {run} trained with; drop {flags}")
    saved, saved_sources, _ = read_saved_config(run)
    saved_sources = saved_sources or {}
    ignored = ("out", "resume", "quiet", "device", "control", "strict", "force", "tensorboard")  # not the step's
    chosen = {k: v for k, v in saved.items() if v is not None and k not in ignored
              and not str(saved_sources.get(k, "")).startswith(("default", "not used"))}
    picked = {**chosen, **{k: given[k] for k in MAY_GIVE if k in given}}
    return picked, {**{k: f"run {run}" for k in chosen}, **{k: (sources or {}).get(k, "given") for k in MAY_GIVE}}


def start_from_first_checkpoint(run: Path, model, optimizer) -> int:
    """Load the earliest checkpoint the run kept into `model` and `optimizer`; returns its step."""
    ckpt = Checkpointer(run)
    folders = ckpt.step_folders()
    if not folders:
        raise UserError(f"{run / 'checkpoints'} holds no checkpoint; explain the data instead: glassbox explain DATA")
    try:
        state, weights, opt_tensors, _ = ckpt.read(folders[-1], model)
        model.load_state_dict(weights)  # float32 weights into the float64 model
        load_optimizer(optimizer, opt_tensors, state["optimizer"])
    except Damaged as d:
        raise UserError(f"cannot explain {run}: {d}") from None
    return int(state["step"])

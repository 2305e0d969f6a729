"""What is checked and prepared before a run starts: the run folder, the settings that cannot work
for this data (or would be ignored), and what --resume may change. pipeline.py calls in."""
from __future__ import annotations

import datetime as _dt
from pathlib import Path

from glassbox.config import TrainConfig
from glassbox.errors import UserError
from glassbox.train import distributed


# The models each kind of data can train (the first is the default).
MODELS_FOR = {"tabular": ("mlp",), "image": ("cnn",), "text": ("fasttext", "transformer")}


def free_text_columns(frame) -> list[str]:
    """Columns whose values are mostly distinct and long (20+ characters on average): texts, not categories."""
    out = []
    for name in frame.columns:
        values = frame[name].astype(str)
        if len(values) >= 20 and values.nunique() > 0.5 * len(values) and values.str.len().mean() >= 20 \
                and not values.str.strip().str.match(r"^-?[\d.,eE+-]+$").mean() > 0.5:
            out.append(str(name))
    return out


def check_model_fits(kind: str, cfg: TrainConfig) -> None:
    """Refuse, before any work, a --model that cannot read this kind of data."""
    fits = MODELS_FOR.get(kind, ())
    if cfg.model != "auto" and fits and cfg.model not in fits:
        hint = " (gpt trains on a text corpus: --task lm)" if cfg.model == "gpt" else ""
        raise UserError(f"--model {cfg.model} cannot read {kind} data; for {kind} data use --model "
                        f"{' or '.join(fits)}{hint}")



def default_run_dir(data: str) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{stamp}-{Path(str(data)).stem or 'data'}"


def prepare_run_dir(cfg: TrainConfig, data: str) -> Path:
    """Check the run folder, then (rank 0 only, once every process has checked) create it.

    Under torchrun every process checks before any writes, so they all reach the same verdict."""
    dist = distributed.current()
    if dist.enabled and not cfg.out:
        raise UserError("under torchrun give --out DIR: every process must use the same run folder")
    run_dir = check_run_dir(cfg, data)
    distributed.barrier()
    if dist.is_main:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
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
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"--out {run_dir} is a file, not a folder; choose another --out")
    if run_dir.exists() and any(run_dir.iterdir()):
        if {p.name for p in run_dir.iterdir()} <= NEVER_TRAINED:
            return run_dir  # a run that stopped before training (bad input, audit errors): start it afresh
        raise UserError(f"run folder {run_dir} already holds files; pass --resume to continue that run, or choose another --out")
    return run_dir


# What a run folder holds when the run stopped before its first training step; such a folder is reused.
NEVER_TRAINED = {"config.json", "split.json", "audit.json"}


# What a resumed run may set anew: how it talks and what the cost ledger assumes, never what it learns from.
RESUME_MAY_CHANGE = ("quiet", "force", "strict", "power_watts", "price_per_kwh")


# Which kinds of run each data-specific setting means something for; given anywhere else it would be
# silently ignored, so it is refused. (Transformer settings on text apply only with --model transformer.)
APPLIES_TO = {"tokenizer": {"lm"}, "block_size": {"lm"}, "vocab_size": {"lm", "transformer"},
              "n_layer": {"lm", "transformer"}, "n_head": {"lm", "transformer"}, "n_embd": {"lm", "transformer"},
              "image_size": {"image"}, "label_from_name": {"image"}, "label": {"tabular", "text", "transformer"},
              "columns": {"tabular", "text", "transformer"}, "group": {"tabular", "text", "transformer"},
              "control": {"tabular", "text", "transformer", "image"}, "test": {"tabular", "text", "transformer", "image"},
              "test_fraction": {"tabular", "text", "transformer", "image"}}
KIND_WORDS = {"lm": "a language model (--task lm)", "image": "image data", "tabular": "tabular data",
              "text": "a fastText text model", "transformer": "a Transformer text model"}


def check_settings_apply(given: dict, kind: str, cfg: TrainConfig) -> None:
    """Refuse a data-specific setting the run would ignore (a --tokenizer on a table, --label on photos).
    kind: what kind_of() says of the data."""
    kind = {"builtin": "image", "text": "transformer" if cfg.model == "transformer" else "text"}.get(kind, kind)
    if "momentum" in given and cfg.optimizer != "sgd":
        raise UserError(f"--momentum applies to --optimizer sgd, and this run uses {cfg.optimizer} (which keeps its "
                        f"own running averages); drop --momentum or add --optimizer sgd")
    for key in given:
        if key in APPLIES_TO and kind not in APPLIES_TO[key]:
            flag = "--" + key.replace("_", "-")
            raise UserError(f"{flag} does not apply to {KIND_WORDS[kind]} and would be ignored; drop it")


def check_resume_settings(given: dict, saved: dict, run_dir: Path) -> None:
    """--resume continues a run exactly as it started: refuse flags that would change what it trains."""
    changed = []
    for key, value in given.items():
        if key in (*RESUME_MAY_CHANGE, "resume", "out"):
            continue
        if key == "data":
            same = Path(str(value)).resolve() == Path(str(saved.get("data"))).resolve() or str(value) == saved.get("data")
        else:
            same = saved.get(key) == value
        if not same:
            changed.append(f"{key.replace('_', '-')} ({saved.get(key)!r} there, {value!r} now)")
    if changed:
        raise UserError(f"--resume continues {run_dir} exactly as it started, but these settings differ: "
                        f"{'; '.join(changed)}; drop them, or choose a new --out for a new run")

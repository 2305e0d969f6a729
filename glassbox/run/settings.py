"""A run's settings: what the user gave (flags, a config file, Python arguments), the defaults of the data's kind,
and everything refused before a run starts, in one line each: a setting the run would ignore, a model that cannot
read the data, a --resume that would change what the run trains.

    cfg = settings_for_new_run(given, sources)      # cfg.sources: where every value came from
    cfg = settings_for_resume(run_dir, given, sources)
"""
from __future__ import annotations

import json
from pathlib import Path

from glassbox.config import (DERIVED, KIND_WORDS, RUN_RECORD_KEY, SETTINGS, TrainConfig, known_keys, make_config, resolve,
                             schedule)
from glassbox.errors import UserError
from glassbox.run.data import kind_of
from glassbox.run.model_for_data import MODELS_FOR
from glassbox.runtime import distributed
from glassbox.runtime.files import write_json

# What a resumed run may set anew: how it talks and what the cost ledger assumes, never what it learns from.
RESUME_MAY_CHANGE = ("quiet", "force", "strict", "power_watts", "price_per_kwh", "tensorboard")

# Which kinds of run each data-specific setting means something for; given anywhere else it would be
# silently ignored, so it is refused. (Transformer settings on text apply only with --model transformer.)
APPLIES_TO = {"tokenizer": {"lm"}, "block_size": {"lm"}, "vocab_size": {"lm", "transformer"},
              "n_layer": {"lm", "transformer"}, "n_head": {"lm", "transformer"}, "n_embd": {"lm", "transformer"},
              "image_size": {"image"}, "label_from_name": {"image"}, "label": {"tabular", "mlp", "text", "transformer"},
              "text": {"text", "transformer"},
              "columns": {"tabular", "mlp", "text", "transformer"}, "group": {"tabular", "mlp", "text", "transformer"},
              "control": {"tabular", "mlp", "text", "transformer", "image"},
              "test": {"tabular", "mlp", "text", "transformer", "image"},
              "test_fraction": {"tabular", "mlp", "text", "transformer", "image"}, "loss": {"tabular", "mlp"}}


def run_kind(cfg: TrainConfig) -> str:
    """The kind of run, as KIND_DEFAULTS names it: lm, image, tabular (MLP-PLR), mlp (a table's plain MLP), text
    (fastText) or transformer."""
    if cfg.task == "lm":
        return "lm"
    kind = kind_of(str(cfg.data), cfg)
    if kind == "text" and cfg.model == "transformer":
        return "transformer"
    if kind == "tabular" and cfg.model == "mlp":
        return "mlp"
    return {"builtin": "image"}.get(kind, kind)


def settings_for_new_run(given: dict, sources: dict | None = None) -> TrainConfig:
    """The config of a new run: `given` (key -> value, what the user set) resolved against the defaults of its
    kind of data; refused in one line where a setting cannot work or would be ignored."""
    given = {k: v for k, v in given.items() if v is not None}
    first = make_config(given)  # types and ranges, before the data is looked at
    if not first.data:
        raise UserError("give the data to train on: glassbox train DATA --label COL")
    kind = run_kind(first)
    cfg = resolve(given, kind, sources)
    check_model_fits(kind, cfg)
    check_settings_apply(given, kind, cfg)
    return cfg


def check_model_fits(kind: str, cfg: TrainConfig) -> None:
    """Refuse, before any work, a --model that cannot read this kind of data (or a classifier's setting on an LM)."""
    if kind == "lm":
        for wrong, why in ((cfg.model not in ("auto", "gpt"), f"--model {cfg.model}"), (bool(cfg.group), "--group"),
                           (cfg.control is not None, "--control")):
            if wrong:
                raise UserError(f"{why} applies to classifiers; a language model (--task lm) is a GPT, with no groups "
                                f"or label control: drop {why.split()[0]}")
        return
    data_kind = {"transformer": "text", "mlp": "tabular"}.get(kind, kind)
    fits = MODELS_FOR[data_kind]
    if cfg.model != "auto" and cfg.model not in fits:
        hint = " (gpt trains on a text corpus: --task lm)" if cfg.model == "gpt" else ""
        raise UserError(f"--model {cfg.model} cannot read {data_kind} data; for {data_kind} data use --model "
                        f"{' or '.join(fits)}{hint}")


def check_settings_apply(given: dict, kind: str, cfg: TrainConfig) -> None:
    """Refuse a data-specific setting the run would ignore (a --tokenizer on a table, --label on photos)."""
    if "momentum" in given and cfg.optimizer != "sgd":
        raise UserError(f"--momentum applies to --optimizer sgd, and this run uses {cfg.optimizer} (which keeps its "
                        f"own running averages); drop --momentum or add --optimizer sgd")
    defaults = TrainConfig()
    for key in given:  # a setting left at its global default changes nothing (an old run's config.json lists them all)
        if key in APPLIES_TO and kind not in APPLIES_TO[key] and given[key] != getattr(defaults, key, None):
            flag = "--" + key.replace("_", "-")
            raise UserError(f"{flag} does not apply to {KIND_WORDS[kind]} and would be ignored; drop it")
    if cfg.label and cfg.label in cfg.group:
        raise UserError(f"--group {cfg.label} is the label itself: per-group scores of the label are trivially perfect "
                        f"or zero; group by another column")


def settings_for_resume(run_dir: Path, given: dict, sources: dict | None = None) -> tuple[TrainConfig, dict | None]:
    """--resume: the settings the run started with (RUN/config.json), with only RESUME_MAY_CHANGE taken anew from
    `given`; and the record of the data files it started on (None for runs from before glassbox kept one)."""
    saved, saved_sources, data_record = read_saved_config(run_dir)
    check_resume_settings(given, saved, run_dir)
    if saved_sources is None:  # a run from before config.json kept sources: what it left at a default (or None, as
        defaults = TrainConfig()  # its length was) takes this version's default for its kind, as it trained then
        saved = {k: v for k, v in saved.items() if k == "data" or (v is not None and v != getattr(defaults, k, None))}
        saved_sources = {k: "saved with the run" for k in saved}
    saved = {**saved, "resume": True, "out": str(run_dir)}
    try:
        first = make_config(saved)
    except UserError as e:
        raise UserError(f"{run_dir / 'config.json'} is damaged ({e}); it records how the run started, so the run "
                        f"cannot be resumed: start afresh with a new --out") from None
    cfg = resolve(saved, run_kind(first), saved_sources)
    cfg.quiet, cfg.sources["quiet"] = bool(given.get("quiet", False)), "this command"  # how this process talks
    for key in RESUME_MAY_CHANGE:
        if key in given:
            setattr(cfg, key, given[key])
            cfg.sources[key] = (sources or {}).get(key, "given") + " (on resume)"
    make_config(cfg.to_dict())  # the settings changed on resume are checked too, and blamed on their flag
    return cfg, data_record


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


SOURCES_KEY, DERIVED_KEY = "sources", "derived"  # config.json: where each value came from; values derived from them


def read_saved_config(run_dir: Path) -> tuple[dict, dict | None, dict | None]:
    """RUN/config.json, for --resume: the settings the run started with, where each came from (None for runs from
    before glassbox kept sources) and the record of its data files (None before glassbox kept one). A damaged file
    is a UserError."""
    path = Path(run_dir) / "config.json"
    fix = "it records how the run started, so the run cannot be resumed; start afresh with a new --out"
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise UserError(f"{path} is damaged (not valid UTF-8 JSON): {fix}") from None
    except OSError as e:
        raise UserError(f"{path} cannot be read ({e.strerror or type(e).__name__}): {fix}") from None
    if not isinstance(saved, dict):
        raise UserError(f"{path} is damaged (not a JSON object of settings): {fix}")
    if not isinstance(saved.get("data"), str) or not saved["data"]:
        raise UserError(f"{path} is damaged (it names no data): {fix}")
    source = saved.pop(RUN_RECORD_KEY, None)
    if source is not None and not (isinstance(source, dict) and isinstance(source.get("sha256"), str)):
        raise UserError(f"{path} is damaged (its {RUN_RECORD_KEY} entry is malformed): {fix}")
    sources = saved.pop(SOURCES_KEY, None)
    if sources is not None and not (isinstance(sources, dict) and all(isinstance(v, str) for v in sources.values())):
        raise UserError(f"{path} is damaged (its {SOURCES_KEY} entry is malformed): {fix}")
    saved.pop(DERIVED_KEY, None)
    return saved, sources, source


def settings_record(cfg: TrainConfig, data_record: dict | None) -> dict:
    """What RUN/config.json holds when a run starts: every setting's value (so the file works as --config, and
    --resume repeats it), where each came from, and (under RUN_RECORD_KEY) the record of the data files."""
    record = {**cfg.to_dict(), SOURCES_KEY: {k: cfg.sources.get(k, "default") for k in known_keys()}}
    if data_record:
        record[RUN_RECORD_KEY] = data_record
    return record


def add_derived(cfg: TrainConfig, run_dir: Path, n_train: int, n_val: int) -> None:
    """Once the data's size is known: add to RUN/config.json the values derived from the settings (config.py
    `schedule`), each with its rule, where no setting fixed them. A resumed run keeps the file as it started."""
    if cfg.resume or not distributed.current().is_main:
        return
    path = Path(run_dir) / "config.json"
    record = json.loads(path.read_text(encoding="utf-8"))
    record[DERIVED_KEY] = {k: {"value": v, "rule": DERIVED[k]} for k, v in schedule(cfg, n_train, n_val).items()
                           if k not in SETTINGS or getattr(cfg, k) is None}
    world = distributed.current().world_size  # torchrun's choice, not a setting: --batch-size is split among them
    record[DERIVED_KEY]["world_size"] = {"value": world, "rule": "processes torchrun started (1 without torchrun)"}
    record[DERIVED_KEY]["batch_size_per_process"] = {"value": cfg.batch_size // world,
                                                     "rule": "batch_size (the global batch) / world_size"}
    write_json(path, record)

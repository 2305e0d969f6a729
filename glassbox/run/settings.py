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
from glassbox.data.kinds import KINDS, DataKind, detect
from glassbox.models.registry import MODELS, default_model, models_for
from glassbox.runtime import distributed
from glassbox.runtime.files import write_json

# What a resumed run may set anew: how it talks, what the cost ledger assumes, and where it computes (a run trained on
# a GPU may continue on a CPU, and back; its processes' group takes that device's backend), never what it learns from.
RESUME_MAY_CHANGE = ("quiet", "force", "strict", "power_watts", "price_per_kwh", "tensorboard", "device")

def data_settings() -> frozenset:
    """The settings that mean something for some kinds of data or some models only (glassbox/data/kinds,
    models/registry.py); given to a run they mean nothing for, they would be silently ignored, so they are refused."""
    return frozenset().union(*(k.settings for k in KINDS.values()), *(m.settings for m in MODELS.values()))


def chosen_model(kind: DataKind, cfg: TrainConfig) -> str:
    """The model a run trains: --model as given, else the default for its kind of data."""
    return cfg.model if cfg.model != "auto" else default_model(kind.name)


def run_kind(cfg: TrainConfig) -> str:
    """The kind of run, as KIND_DEFAULTS names it: the row its model starts from (models/registry.py)."""
    return MODELS[chosen_model(detect(str(cfg.data), cfg), cfg)].defaults


def settings_for_new_run(given: dict, sources: dict | None = None) -> TrainConfig:
    """The config of a new run: `given` (key -> value, what the user set) resolved against the defaults of its
    kind of data; refused in one line where a setting cannot work or would be ignored."""
    given = {k: v for k, v in given.items() if v is not None}
    first = make_config(given)  # types and ranges, before the data is looked at
    if not first.data:
        raise UserError("give the data to train on: glassbox train DATA --label COL")
    kind = detect(str(first.data), first)
    check_model_fits(kind, first)
    if first.init_val is not None and first.init is None:
        raise UserError("--init-val is the held-out text of --init's model; give --init RUN/model too, or drop --init-val")
    if first.init is not None and kind.name == "corpus":  # (for other data, check_settings_apply refuses --init)
        given, sources = with_sizes_of_init(given, sources)
    row = MODELS[chosen_model(kind, first)].defaults
    cfg = resolve(given, row, sources)
    check_settings_apply(given, kind, row, cfg)
    return cfg


# What --init's saved language model fixes: its tokenizer and sizes (a model continues with the shape it has).
SIZES_OF_INIT = ("tokenizer", "vocab_size", "block_size", "n_layer", "n_head", "n_embd")


def with_sizes_of_init(given: dict, sources: dict | None) -> tuple[dict, dict]:
    """--init RUN/model: the saved model's tokenizer and sizes become this run's settings, recorded as coming from it;
    one the user gave otherwise is refused in one line. The model must be a language model."""
    from glassbox.infer.generator import read_lm_manifest

    manifest = read_lm_manifest(given["init"])  # a classifier, or no artifact at all, is refused here
    if given.get("init_val") is not None and not Path(str(given["init_val"])).is_file():
        raise UserError(f"--init-val {given['init_val']} is not a file; give the text --init's model was validated on")
    config, tokenizer = manifest.get("model_config") or {}, (manifest.get("preprocessing") or {}).get("kind")
    sizes = {"tokenizer": tokenizer, **{k: config.get(k) for k in SIZES_OF_INIT[2:]}}
    if tokenizer == "bpe":
        sizes["vocab_size"] = config.get("vocab_size")
    origin = f"the model of --init ({given['init']})"
    sources = dict(sources or {})
    for key, value in sizes.items():
        if key in given and given[key] != value:
            raise UserError(f"--{key.replace('_', '-')} {given[key]} differs from --init's model ({key} {value}): a saved "
                            f"model continues with its own tokenizer and sizes; drop --{key.replace('_', '-')}")
        if value is not None:
            given, sources[key] = {**given, key: value}, origin
    return given, sources


def check_model_fits(kind: DataKind, cfg: TrainConfig) -> None:
    """Refuse, before any work, a --model unknown or unable to read this kind of data."""
    if cfg.model == "auto":
        return
    if cfg.model not in MODELS:
        raise UserError(f"unknown model {cfg.model!r}; choose one of: auto, {', '.join(MODELS)}")
    fits = models_for(kind.name)
    if cfg.model not in fits:
        other = KINDS[MODELS[cfg.model].reads[0]]
        raise UserError(f"--model {cfg.model} cannot read {kind.name} data; for {kind.name} data use --model "
                        f"{' or '.join(fits)} ({cfg.model} trains on {other.described})")


def check_settings_apply(given: dict, kind: DataKind, row: str, cfg: TrainConfig) -> None:
    """Refuse a data-specific setting the run would ignore (a --tokenizer on a table, --label on photos)."""
    if "momentum" in given and cfg.optimizer != "sgd":
        raise UserError(f"--momentum applies to --optimizer sgd, and this run uses {cfg.optimizer} (which keeps its "
                        f"own running averages); drop --momentum or add --optimizer sgd")
    defaults, applies = TrainConfig(), kind.settings | MODELS[chosen_model(kind, cfg)].settings
    for key in given:  # a setting left at its global default changes nothing (an old run's config.json lists them all)
        if key in data_settings() and key not in applies and given[key] != getattr(defaults, key, None):
            flag = "--" + key.replace("_", "-")
            raise UserError(f"{flag} does not apply to {KIND_WORDS[row]} and would be ignored; drop it")
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
    check_model_fits(detect(str(first.data), first), first)  # a config.json edited to name an unknown model
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

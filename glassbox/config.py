"""Every setting of a run in one dataclass, each with a one-line comment. CLI flags and config-file
keys are the same names; an unknown key fails with the list of known ones."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from glassbox.errors import UserError


@dataclass
class TrainConfig:
    # --- data ---
    data: str | None = None       # data file or folder, or a built-in name ('digits'); the DATA argument
    task: str = "auto"            # auto | classify | lm (auto: lm for --task lm, else classify)
    label: str | None = None      # label column (tabular/text); images take labels from folders or names
    text: str | None = None       # text column: makes it a text-classification run
    columns: list[str] | None = None  # column names for a header-less file, e.g. [label, text]
    group: list[str] = field(default_factory=list)  # group columns for the audit and per-group metrics
    test: str | None = None       # the user's own held-out test file/folder instead of a carved test split
    label_from_name: str | None = None  # regex whose match in an image file name is its label
    image_size: int | None = None  # train images at this side length (default: the most common size)
    val_fraction: float = 0.1     # share of examples held out for validation (never trained on)
    test_fraction: float = 0.1    # share held out for the final test (ignored with --test)
    # --- model ---
    model: str = "auto"           # auto | mlp | cnn | fasttext | transformer | gpt
    dropout: float = 0.0          # dropout probability inside the model
    # --- language models ---
    tokenizer: str = "char"       # char | bpe
    vocab_size: int = 1024        # BPE vocabulary size
    n_layer: int = 4              # transformer blocks
    n_head: int = 4               # attention heads
    n_embd: int = 128             # embedding width
    block_size: int = 64          # context length in tokens
    # --- optimisation ---
    epochs: float | None = None   # passes over the training data (or use max_steps)
    max_steps: int | None = None  # optimizer updates; overrides epochs
    batch_size: int = 64          # examples per update (per process under DDP)
    grad_accum: int = 1           # micro-batches accumulated into one update
    optimizer: str = "adamw"      # adamw | sgd
    momentum: float = 0.9         # SGD only: momentum (nesterov); 0 is plain SGD, as fastText trains
    lr: float = 3e-3              # peak learning rate
    min_lr: float | None = None   # learning rate at the end of the cosine decay (default lr/10)
    warmup_steps: int | None = None  # linear warm-up steps (default 2% of the steps, at least 1)
    weight_decay: float = 0.01    # decoupled weight decay (AdamW) or L2 (SGD)
    grad_clip: float = 1.0        # clip the gradient norm at this value, 0 disables
    label_smoothing: float = 0.0  # cross-entropy label smoothing
    seed: int = 0                 # one seed for split, init, batches and augmentation
    device: str = "auto"          # auto (CUDA if available, else CPU) | cpu | cuda | cuda:N
    threads: int | None = None    # CPU threads for training (default: 1 for a small model, else torch's count)
    compile: bool = False         # torch.compile the training forward pass (first steps slower, later ones faster)
    # --- evaluation, early stopping, checkpoints ---
    eval_every: int | None = None  # evaluate on validation every N steps (default ~20 per run)
    patience: int = 5             # stop after this many evaluations without improvement
    min_delta: float = 0.0        # an improvement must lower val loss by more than this
    checkpoint_every: int | None = None  # checkpoint every N steps (default: at each evaluation)
    # --- output ---
    out: str | None = None        # the run folder (default runs/<date>-<time>-<data name>)
    resume: bool = False          # continue the run in --out from its last checkpoint
    quiet: bool = False           # no progress output
    strict: bool = False          # audit warnings stop training
    force: bool = False           # train even when the audit finds errors
    control: str | None = None    # shuffled-labels: repeat the run on shuffled training labels
    # --- cost ledger (estimates, stated in the report) ---
    power_watts: float | None = None  # power draw while training, W (default: 65 for a CPU, a GPU's power limit)
    price_per_kwh: float = 0.30   # electricity price per kWh, in your currency

    def steps_for(self, n_train: int) -> int:
        """Number of optimizer updates: max_steps, or epochs over n_train examples."""
        if self.max_steps is not None:
            return int(self.max_steps)
        per_epoch = max(1, -(-n_train // (self.batch_size * self.grad_accum)))
        return max(1, int(round((self.epochs if self.epochs is not None else 10) * per_epoch)))

    def to_dict(self) -> dict:
        return asdict(self)


def known_keys() -> list[str]:
    return [f.name for f in fields(TrainConfig)]


def make_config(values: dict) -> TrainConfig:
    """Build a config from a dict, failing clearly on keys it does not know."""
    values = normalise(values)
    unknown = sorted(set(values) - set(known_keys()))
    if unknown:
        raise UserError(
            f"unknown config key(s): {', '.join(unknown)}; known keys are: {', '.join(known_keys())}"
        )
    _check(values)
    return TrainConfig(**values)


# Settings that take one of a few names (None: not set).
CHOICES = {"task": ("auto", "classify", "lm"), "model": ("auto", "mlp", "cnn", "fasttext", "transformer", "gpt"),
           "optimizer": ("adamw", "sgd"), "tokenizer": ("char", "bpe"), "control": (None, "shuffled-labels")}


# Ranges beyond "a number" (inclusive bounds; None: open): what a setting can mean at all.
RANGES = {"dropout": (0.0, 0.99), "label_smoothing": (0.0, 0.99), "seed": (0, 2**32 - 1), "weight_decay": (0.0, None),
          "grad_clip": (0.0, None), "warmup_steps": (0, None), "min_delta": (0.0, None), "patience": (0, None),
          "min_lr": (0.0, None), "n_layer": (1, 96), "n_head": (1, 256), "n_embd": (1, 16384), "block_size": (1, 65536),
          "vocab_size": (2, 65535), "image_size": (4, 1024), "price_per_kwh": (0.0, None), "momentum": (0.0, 0.999), "threads": (1, 4096)}


def _types(values: dict) -> None:
    """Each setting has the type its field declares: a config file's "ten", "0.1" or [income] is refused
    here, in one line, not deep in training."""
    import math

    declared = {f.name: str(f.type) for f in fields(TrainConfig)}
    for key, v in values.items():
        t = declared.get(key, "")
        if v is None or key == "data":
            continue
        if t.startswith("bool"):
            ok = isinstance(v, bool)
            want = "true or false"
        elif t.startswith("int"):
            ok = isinstance(v, int) and not isinstance(v, bool)
            want = "a whole number"
        elif t.startswith("float"):
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            want = "a number" + (" (YAML reads 1e-3 as text: write 0.001)" if isinstance(v, str) else "")
        elif t.startswith("list"):
            ok = isinstance(v, list) and all(isinstance(x, str) for x in v)
            want = "a list of names"
        elif t.startswith("str"):
            ok = isinstance(v, str)
            want = "a name or path (text)"
        else:
            continue
        if not ok:
            raise UserError(f"The '{key}' setting must be {want}. Got {v!r} instead.")


def normalise(values: dict) -> dict:
    """Settings in their one stored form: dashes as underscores, one group column as a list, and
    --columns "a,b" as ["a", "b"]."""
    values = {k.replace("-", "_"): v for k, v in values.items()}
    if isinstance(values.get("group"), str):
        values["group"] = [values["group"]]
    if isinstance(values.get("columns"), str):
        values["columns"] = [c.strip() for c in values["columns"].split(",")]
    return values


def _check(values: dict) -> None:
    _types(values)
    for key, (lo, hi) in RANGES.items():
        v = values.get(key)
        if v is not None and ((lo is not None and v < lo) or (hi is not None and v > hi)):
            bounds = f"at least {lo}" if hi is None else f"between {lo} and {hi}"
            raise UserError(f"The '{key}' setting must be {bounds}. Got {v!r} instead.")
    if values.get("min_lr") is not None and values["min_lr"] > values.get("lr", 3e-3):
        raise UserError(f"min_lr ({values['min_lr']:g}) is above lr ({values.get('lr', 3e-3):g}): the learning rate "
                        f"decays from lr down to min_lr; give a min_lr between 0 and lr")
    n_embd, n_head = values.get("n_embd", 128), values.get("n_head", 4)
    if isinstance(n_embd, int) and isinstance(n_head, int) and n_head > 0 and n_embd % n_head:
        raise UserError(f"n_embd ({n_embd}) must be a multiple of n_head ({n_head}): each head takes an equal share "
                        f"of the width")
    positive = ("batch_size", "grad_accum", "max_steps", "epochs", "lr", "eval_every", "checkpoint_every",
                "power_watts")
    for key in positive:
        v = values.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < float("inf")):
            raise UserError(f"The '{key}' setting must be a number greater than 0. Got {v!r} instead.")
    for key, allowed in CHOICES.items():
        v = values.get(key)
        if v is not None and v not in allowed:
            raise UserError(f"unknown {key.replace('_', '-')} {v!r}; choose one of: "
                            f"{', '.join(a for a in allowed if a is not None)}")
    for key in ("val_fraction", "test_fraction"):
        v = values.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1):
            raise UserError(f"The '{key}' setting must be a share between 0 and 1 (exclusive), e.g. 0.1. Got {v!r} instead.")
    val, test = values.get("val_fraction", 0.1), values.get("test_fraction", 0.1)
    if isinstance(val, (int, float)) and isinstance(test, (int, float)) and val + test >= 0.9:
        raise UserError(f"val_fraction + test_fraction is {val + test:g}: at least 10% of the examples must be left "
                        f"to train on; lower them (defaults 0.1 each)")
    price = values.get("price_per_kwh")
    if price is not None and (isinstance(price, bool) or not isinstance(price, (int, float)) or not 0 <= price < float("inf")):
        raise UserError(f"The 'price_per_kwh' setting must be a number of at least 0. Got {price!r} instead.")


RUN_RECORD_KEY = "data_source"  # the key RUN/config.json keeps the training data's sha256 under


def load_config_file(path: str | Path) -> dict:
    """Read a YAML or JSON config file into a dict of settings."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise UserError(f"config file not found: {p}; check the path given to --config")
    try:
        text = p.read_text(encoding="utf-8")
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as e:
        raise UserError(f"config file {p} cannot be parsed ({type(e).__name__}); write it as YAML or JSON") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file {p} must hold key: value pairs, not a {type(data).__name__}")
    # A run's own config.json also records what data it trained on (not a setting): it may be reused as a config.
    data.pop(RUN_RECORD_KEY, None)
    return data

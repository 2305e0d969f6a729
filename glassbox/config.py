"""Every setting of a run in one typed config, and every default in one place.

- `TrainConfig`: each setting with its global default and a one-line comment. CLI flags and config-file
  keys are the same names; an unknown key fails with the list of known ones.
- `KIND_DEFAULTS`: what differs per kind of run (a table, images, fastText or Transformer text, a language
  model), each value with the measurement that chose it.
- `resolve`: the user's settings, then the kind's defaults, then the global ones; every value records where
  it came from (`cfg.sources`), and RUN/config.json shows both.
- `schedule`: the values derived from the settings and the data's size (steps, warm-up, final learning rate,
  evaluation and checkpoint intervals), one rule each (`DERIVED`).

A value the user gave is used exactly as given, or refused in one line: nothing here replaces it."""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from glassbox.errors import UserError


@dataclass
class TrainConfig:
    # --- data ---
    data: str | None = None       # data file or folder, or a built-in name ('digits'); the DATA argument
    task: str = "auto"            # auto | classify | regression | lm (auto: regression for a table whose label is
                                  # numbers with more than 20 distinct values, else classify)
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
    model: str = "auto"           # auto | mlp_plr | mlp | cnn | fasttext | transformer | gpt
    dropout: float = 0.0          # dropout probability inside the model
    # --- Transformers (language models, and text with --model transformer) ---
    tokenizer: str = "char"       # language models: char | bpe
    vocab_size: int = 1024        # BPE vocabulary size
    n_layer: int = 4              # transformer blocks
    n_head: int = 4               # attention heads
    n_embd: int = 128             # embedding width
    block_size: int = 64          # language models: context length in tokens
    # --- optimisation ---
    epochs: float | None = 10     # passes over the training data (unused when max_steps is given)
    max_steps: int | None = None  # optimizer updates, instead of epochs
    batch_size: int = 64          # examples per update (the global batch: split among the processes under torchrun)
    grad_accum: int = 1           # micro-batches accumulated into one update
    optimizer: str = "adamw"      # adamw | sgd
    momentum: float = 0.9         # SGD only: momentum (nesterov); 0 is plain SGD, as fastText trains
    lr: float = 3e-3              # peak learning rate
    min_lr: float | None = None   # learning rate at the end of the cosine decay (None: derived, see DERIVED)
    warmup_steps: int | None = None  # linear warm-up steps (None: derived, see DERIVED)
    weight_decay: float = 0.01    # decoupled weight decay (AdamW) or L2 (SGD)
    grad_clip: float = 1.0        # clip the gradient norm at this value, 0 disables
    label_smoothing: float = 0.0  # cross-entropy label smoothing
    loss: str = "mse"             # regression: mse | huber (Huber with delta 1 on the standardised target)
    seed: int = 0                 # one seed for split, init, batches and augmentation
    device: str = "auto"          # auto (CUDA if available, else CPU) | cpu | cuda | cuda:N
    threads: int | None = None    # CPU threads for training (None: 1 or torch's count, whichever times faster)
    compile: bool = False         # torch.compile the training forward pass (first steps slower, later ones faster)
    # --- evaluation, early stopping, checkpoints ---
    eval_every: int | None = None  # evaluate on validation every N steps (None: derived, see DERIVED)
    patience: int = 5             # stop after this many evaluations without improvement
    min_delta: float = 0.0        # an improvement must lower val loss by more than this
    checkpoint_every: int | None = None  # checkpoint every N steps (None: at each evaluation)
    # --- output ---
    out: str | None = None        # the run folder (default runs/<date>-<time>-<data name>)
    resume: bool = False          # continue the run in --out from its last checkpoint
    quiet: bool = False           # no progress output
    strict: bool = False          # audit warnings stop training
    force: bool = False           # train even when the audit finds errors
    control: str | None = None    # shuffled-labels: repeat the run on shuffled training labels
    tensorboard: bool = False     # also write TensorBoard event files to RUN/tensorboard (pip install 'glassbox[tensorboard]')
    # --- cost ledger (estimates, stated in the report) ---
    power_watts: float | None = None  # power draw while training, W (default: 65 for a CPU, a GPU's power limit)
    price_per_kwh: float = 0.30   # electricity price per kWh, in your currency
    # where each value came from (resolve fills it): not a setting
    sources: dict = field(default_factory=dict, compare=False, repr=False, metadata={"setting": False})

    def steps_for(self, n_train: int) -> int:
        """Number of optimizer updates: max_steps, or epochs over n_train examples."""
        if self.max_steps is not None:
            return int(self.max_steps)
        if self.epochs is None:
            raise ValueError("TrainConfig needs epochs or max_steps to know how long to train")
        per_epoch = max(1, -(-n_train // (self.batch_size * self.grad_accum)))
        return max(1, int(round(self.epochs * per_epoch)))

    def to_dict(self) -> dict:
        """Every setting's value (not where it came from: see `sources`)."""
        return {k: v for k, v in asdict(self).items() if k in SETTINGS}


def known_keys() -> list[str]:
    return [f.name for f in fields(TrainConfig) if f.metadata.get("setting", True)]


SETTINGS = frozenset(known_keys())


def make_config(values: dict) -> TrainConfig:
    """Build a config from a dict, failing clearly on keys it does not know."""
    values = normalise(values)
    _refuse_unknown(values)
    _check(values)
    return TrainConfig(**values)


def _refuse_unknown(values: dict) -> None:
    unknown = sorted(set(values) - SETTINGS)
    if unknown:
        raise UserError(f"unknown config key(s): {', '.join(unknown)}; known keys are: {', '.join(known_keys())}")


# Where a default differs by kind of run: everything not named here takes TrainConfig's global default.
# The kinds: a table (the MLP), images (the CNN), text with the fastText-style model or with --model
# transformer, and a language model (--task lm).
KIND_DEFAULTS = {
    # The MLP-PLR ensemble (models/mlp_plr.py) as benchmarks/tabular.py measures it on UCI Adult: 16 epochs share
    # out among its 4 members (4 each); batches of 256 (64 rows a member) at lr 1e-3.
    "tabular": {"dropout": 0.1, "lr": 1e-3, "batch_size": 256, "epochs": 16},
    # The settings benchmarks/cats_dogs.py times as the plain command (23,000 photos at 32x32, 2 cores of an AMD
    # EPYC with AVX512-BF16: 15 epochs, test accuracy 0.908 in 280 s; 24 epochs, 0.923 in 487 s; docs/benchmarks.md):
    # batches of 128 run about twice as fast per photo as 64; label smoothing and stronger weight decay help tiny,
    # often ambiguous photos.
    "image": {"epochs": 15, "batch_size": 128, "weight_decay": 0.1, "label_smoothing": 0.2},
    # fastText-style text. SGD finds a far better solution for sparse n-gram features than Adam's per-weight steps
    # (SMS spam F1 0.968 vs 0.960, mean of 5 duplicate-aware splits); plain SGD at lr 1.0, as fastText itself
    # trains, scores as well as momentum 0.9 at lr 0.1 (0.969 vs 0.967 over 30 splits), with a third cheaper steps.
    "text": {"optimizer": "sgd", "lr": 1.0, "momentum": 0.0, "epochs": 20, "batch_size": 32, "weight_decay": 0.0},
    # A small Transformer encoder on a BPE vocabulary learned from the training split. lr 3e-3: SMS spam F1 0.920
    # vs 0.899 at 1e-3 (8 splits); 2 layers over 8,000 subwords is the model docs/benchmarks.md measures.
    "transformer": {"lr": 3e-3, "epochs": 10, "batch_size": 32, "dropout": 0.1, "n_layer": 2, "vocab_size": 8000},
    # The plain MLP on a table (--model mlp): the settings it was measured with before MLP-PLR became the default
    # (digits as 64 pixel columns: test accuracy 0.966 in 3 s, where MLP-PLR's defaults reach 0.926 in 19 s).
    "mlp": {"dropout": 0.1},
    # A GPT at nanoGPT's small-model settings (docs/benchmarks.md), 2,000 updates unless told otherwise; its
    # learning rate decays to lr / 10 (DERIVED), as nanoGPT's does.
    "lm": {"lr": 1e-3, "warmup_steps": 100, "batch_size": 12, "weight_decay": 0.1, "max_steps": 2000, "epochs": None},
}
KIND_WORDS = {"lm": "a language model (--task lm)", "image": "image data", "tabular": "tabular data",
              "mlp": "the plain MLP on a table (--model mlp)",
              "text": "a fastText text model", "transformer": "a Transformer text model"}

# The values derived from the settings and the data's size when the user did not set them (`schedule`).
DERIVED = {"steps": "max_steps, else epochs x training batches per epoch",
           "warmup_steps": "2% of the steps, at least 1",
           "min_lr": "lr / 10",
           "eval_every": "about 20 evaluations a run, at least one validation pass's worth of batches apart",
           "checkpoint_every": "at each evaluation"}


def resolve(given: dict, kind: str, sources: dict | None = None) -> TrainConfig:
    """The run's config: each setting the user gave, as given; else the kind's default (KIND_DEFAULTS); else the
    global one. `sources` says where each given value came from (default 'given'); the result's `.sources`
    names the origin of every value. Of epochs and max_steps, the one the user gave decides the run's length."""
    given, sources = normalise(given), {k.replace("-", "_"): str(v) for k, v in (sources or {}).items()}
    _refuse_unknown(given)
    _types(given)
    if given.get("epochs") is not None and given.get("max_steps") is not None:
        raise UserError(f"both epochs ({given['epochs']:g}) and max_steps ({given['max_steps']}) are given, and a run "
                        f"has one length; give one of them")
    defaults = KIND_DEFAULTS[kind]
    values, origin = {}, {}
    for key in known_keys():
        if key in given:
            values[key], origin[key] = given[key], sources.get(key, "given")
        elif key in defaults:
            values[key], origin[key] = defaults[key], f"default for {KIND_WORDS[kind]}"
        else:
            origin[key] = "default"
    for key, other in (("epochs", "max_steps"), ("max_steps", "epochs")):
        if given.get(key) is not None and other not in given:
            values[other], origin[other] = None, f"not used: {key} is given"
    _check(values)
    return TrainConfig(**values, sources=origin)


def schedule(cfg: TrainConfig, n_train: int, n_val: int) -> dict:
    """The run's length and the values DERIVED from it where the user set none: warm-up, final learning rate, and
    how often it evaluates (n_val validation examples) and checkpoints. The loop and RUN/config.json both use it."""
    steps = cfg.steps_for(n_train)
    eval_every = cfg.eval_every or max(1, steps // 20, math.ceil(n_val / cfg.batch_size))
    return {"steps": steps, "warmup_steps": cfg.warmup_steps if cfg.warmup_steps is not None else max(1, steps // 50),
            "min_lr": cfg.min_lr if cfg.min_lr is not None else cfg.lr / 10, "eval_every": eval_every,
            "checkpoint_every": cfg.checkpoint_every or eval_every}


# Settings that take one of a few names (None: not set).
CHOICES = {"task": ("auto", "classify", "regression", "lm"), "loss": ("mse", "huber"), "model": ("auto", "mlp_plr", "mlp", "cnn", "fasttext", "transformer", "gpt"),
           "optimizer": ("adamw", "sgd"), "tokenizer": ("char", "bpe"), "control": (None, "shuffled-labels")}


# Ranges beyond "a number" (inclusive bounds; None: open): what a setting can mean at all.
RANGES = {"dropout": (0.0, 0.99), "label_smoothing": (0.0, 0.99), "seed": (0, 2**32 - 1), "weight_decay": (0.0, None),
          "grad_clip": (0.0, None), "warmup_steps": (0, None), "min_delta": (0.0, None), "patience": (0, None),
          "min_lr": (0.0, None), "n_layer": (1, 96), "n_head": (1, 256), "n_embd": (1, 16384), "block_size": (1, 65536),
          "vocab_size": (2, 65535), "image_size": (4, 1024), "price_per_kwh": (0.0, None), "momentum": (0.0, 0.999), "threads": (1, 4096)}


def _types(values: dict) -> None:
    """Each setting has the type its field declares: a config file's "ten", "0.1" or [income] is refused
    here, in one line, not deep in training."""
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
    # A run's own config.json also records what data it trained on, where each value came from and the values
    # derived from them: none is a setting. Used as a config, it repeats what the user chose (the values the user,
    # a config file or a command gave); the defaults are this version's, for the data the run is given.
    data.pop(RUN_RECORD_KEY, None)
    data.pop("derived", None)
    sources = data.pop("sources", None)
    if isinstance(sources, dict):
        data = {k: v for k, v in data.items() if not str(sources.get(k, "")).startswith(("default", "not used"))}
    return data

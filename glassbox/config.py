"""Every setting of a run in one typed config, and every default in one place.

- `TrainConfig`: each setting declared once, with `setting(...)`: its global default, its help text, the names it
  takes or the numbers it can mean (`Range`). The `train` flags and their --help are made from these fields
  (glassbox/cli); config-file keys are the same names; an unknown key fails with the list of known ones. Checks
  across settings (min_lr and lr, heads and width, the held-out shares, epochs or max_steps) are small functions.
- `KIND_DEFAULTS`: what differs per kind of run (a table, images, fastText or Transformer text, a language
  model), each value with the measurement that chose it.
- `resolve`: the user's settings, then the kind's defaults, then the global ones; every value records where
  it came from (`cfg.sources`), and RUN/config.json shows both.
- `schedule`: the values derived from the settings and the data's size (steps, warm-up, final learning rate,
  evaluation and checkpoint intervals), one rule each (`DERIVED`).
- `DEMO`: the settings of `glassbox demo`.

A value the user gave is used exactly as given, or refused in one line: nothing here replaces it."""
from __future__ import annotations

import json
import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

from glassbox.errors import UserError


@dataclass(frozen=True)
class Range:
    """The numbers a setting can mean at all: lo to hi inclusive (None: no bound), or strictly between them with
    open=True. `words` is what a refusal says the value must be (default: from the bounds)."""
    lo: float | None = None
    hi: float | None = None
    open: bool = False
    words: str = ""

    def holds(self, v) -> bool:
        if self.open:
            return (self.lo is None or v > self.lo) and (self.hi is None or v < self.hi)
        return (self.lo is None or v >= self.lo) and (self.hi is None or v <= self.hi)

    def __str__(self) -> str:
        return self.words or (f"at least {self.lo}" if self.hi is None else f"between {self.lo} and {self.hi}")


POSITIVE = Range(0, open=True, words="a number greater than 0")
SHARE = Range(0, 1, open=True, words="a share between 0 and 1 (exclusive), e.g. 0.1")


def setting(default=None, help: str = "", *, choices: tuple[str, ...] | None = None, range: Range | None = None,
            metavar: str | None = None, flag: str | None = "value", factory=None):
    """A TrainConfig field with everything about it next to it: its default, its help text (the `train` flag's too),
    the names it takes (choices) or the numbers it can mean (range), a short metavar for --help, and how the command
    line gives it (flag: "value", "repeat" for a flag given once per value, None for no flag: the DATA argument)."""
    about = {"help": help, "choices": choices, "range": range, "metavar": metavar, "flag": flag}
    if factory is not None:
        return field(default_factory=factory, metadata=about)
    return field(default=default, metadata=about)


@dataclass
class TrainConfig:
    # --- data ---
    data: str | None = setting(None, "data file or folder, or a built-in name ('digits')", flag=None)
    task: str = setting("auto", "what to learn: classify, regression (a number per row of a table) or lm (a next-token "
                        "language model); auto: regression for a table whose label is numbers with more than 20 "
                        "distinct values, else classify", choices=("auto", "classify", "regression", "lm"))
    label: str | None = setting(None, "label column (tabular or text data); images take their labels from folders or "
                                "file names", metavar="COL")
    text: str | None = setting(None, "text column: train a text classifier", metavar="COL")
    columns: list[str] | None = setting(None, "comma-separated column names for a header-less file, e.g. label,text",
                                        metavar="NAMES")
    group: list[str] = setting(factory=list, help="group column for the audit and per-group metrics (repeatable)",
                               metavar="COL", flag="repeat")
    test: str | None = setting(None, "your own held-out test file or folder (instead of a carved test split)",
                               metavar="PATH")
    label_from_name: str | None = setting(None, "regex whose match in an image file name is its label, e.g. 'cat|dog'",
                                          metavar="REGEX")
    image_size: int | None = setting(None, "train on images resized to this side length (default: their most common "
                                     "size)", range=Range(4, 1024), metavar="PIXELS")
    val_fraction: float = setting(0.1, "share of examples held out for validation (never trained on)", range=SHARE)
    test_fraction: float = setting(0.1, "share of examples held out for the test (ignored with --test)", range=SHARE)
    # --- model ---
    # Its names are the model registry's (glassbox/models/registry.py), which this bottom layer cannot import: the
    # command line lists and checks them, and run/settings.py refuses a model that cannot read the data.
    model: str = setting("auto", "the model: auto (the default for the data's kind) or a model's name",
                         metavar="MODEL")
    dropout: float = setting(0.0, "dropout probability inside the model", range=Range(0.0, 0.99))
    # --- Transformers (language models, and text with --model transformer) ---
    tokenizer: str = setting("char", "language models: characters or BPE subwords", choices=("char", "bpe"))
    vocab_size: int = setting(1024, "BPE vocabulary size (--task lm --tokenizer bpe, or --model transformer)",
                              range=Range(2, 65535))
    n_layer: int = setting(4, "transformer blocks (--task lm, or --model transformer)", range=Range(1, 96))
    n_head: int = setting(4, "attention heads (--task lm, or --model transformer)", range=Range(1, 256))
    n_embd: int = setting(128, "embedding width (--task lm, or --model transformer)", range=Range(1, 16384))
    block_size: int = setting(64, "language models: context length in tokens", range=Range(1, 65536))
    init: str | None = setting(None, "language models: continue training a saved model (RUN/model) on this corpus, "
                               "with its tokenizer and sizes", metavar="RUN/model")
    init_val: str | None = setting(None, "with --init: the saved model's own held-out text, to measure what it forgets, "
                                   "when its run folder and its corpus are no longer where its manifest says",
                                   metavar="FILE")
    # --- optimisation ---
    epochs: float | None = setting(10, "passes over the training data (or --max-steps, not both)", range=POSITIVE)
    max_steps: int | None = setting(None, "optimizer updates (or --epochs, not both)", range=POSITIVE)
    batch_size: int = setting(64, "examples per update: the global batch, split among the processes under torchrun",
                              range=POSITIVE)
    grad_accum: int = setting(1, "micro-batches accumulated into one update", range=POSITIVE)
    optimizer: str = setting("adamw", "AdamW, or SGD with nesterov momentum (--momentum)", choices=("adamw", "sgd"))
    momentum: float = setting(0.9, "SGD only: momentum (nesterov); 0 is plain SGD, as fastText trains",
                              range=Range(0.0, 0.999))
    lr: float = setting(3e-3, "peak learning rate", range=POSITIVE)
    min_lr: float | None = setting(None, "learning rate at the end of the cosine decay", range=Range(0.0, None))
    warmup_steps: int | None = setting(None, "linear warm-up steps", range=Range(0, None))
    weight_decay: float = setting(0.01, "decoupled weight decay (AdamW) or L2 (SGD)", range=Range(0.0, None))
    grad_clip: float = setting(1.0, "clip the gradient norm at this value (0 disables)", range=Range(0.0, None))
    label_smoothing: float = setting(0.0, "cross-entropy label smoothing", range=Range(0.0, 0.99))
    loss: str = setting("mse", "regression loss: mse, or huber (Huber with delta 1 on the standardised target)",
                        choices=("mse", "huber"))
    seed: int = setting(0, "one seed for split, init, batches and augmentation", range=Range(0, 2**32 - 1))
    device: str = setting("auto", "auto (CUDA if available, else CPU), cpu, cuda or cuda:N", metavar="DEVICE")
    threads: int | None = setting(None, "CPU threads for training (default: 1 or all cores, whichever a few timed "
                                  "steps of this model run faster)", range=Range(1, 4096))
    compile: bool = setting(False, "torch.compile the training forward pass (needs a C++ compiler; first steps slower, "
                            "later ones faster)")
    # --- evaluation, early stopping, checkpoints ---
    eval_every: int | None = setting(None, "evaluate on validation every N steps", range=POSITIVE, metavar="N")
    patience: int = setting(5, "evaluations without improvement before stopping", range=Range(0, None))
    min_delta: float = setting(0.0, "smallest validation-loss drop that counts as improvement", range=Range(0.0, None))
    checkpoint_every: int | None = setting(None, "checkpoint every N steps", range=POSITIVE, metavar="N")
    # --- output ---
    out: str | None = setting(None, "the run folder (default runs/<date>-<time>-<data name>)", metavar="DIR")
    resume: bool = setting(False, "continue the run in --out from its last checkpoint")
    quiet: bool = setting(False, "no progress output")
    strict: bool = setting(False, "audit warnings stop training")
    force: bool = setting(False, "train even when the audit finds errors")
    control: str | None = setting(None, "shuffled-labels: repeat the run on shuffled training labels, a control "
                                  "for what the model learns without the real ones", choices=("shuffled-labels",))
    tensorboard: bool = setting(False, "also write TensorBoard event files to RUN/tensorboard/ (pip install "
                                "'glassbox[tensorboard]')")
    # --- cost ledger (estimates, stated in the report) ---
    power_watts: float | None = setting(None, "cost ledger: the machine's power draw while training, in watts "
                                        "(default: 65 for a CPU, a GPU's power limit)", range=POSITIVE, metavar="WATTS")
    price_per_kwh: float = setting(0.30, "cost ledger: electricity price per kWh, in your currency",
                                   range=Range(0.0, None), metavar="PRICE")
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


def setting_fields() -> list:
    """TrainConfig's fields that are settings (not `sources`), in their order."""
    return [f for f in fields(TrainConfig) if f.metadata.get("setting", True)]


def default_of(key: str):
    """A setting's global default, as its field declares it."""
    f = next(f for f in fields(TrainConfig) if f.name == key)
    return f.default_factory() if f.default is MISSING else f.default


def known_keys() -> list[str]:
    return [f.name for f in setting_fields()]


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

# `glassbox demo`: a small CNN on scikit-learn's 1,797 handwritten digits. Not the image defaults (tuned on 23,000
# photos): clean 8x8 digits need no label smoothing, which would only make the demo's model under-confident. 12 epochs
# at batch 128 (was 20 at 64): test accuracy 0.983, the whole demo 9.3-9.6 s on 2 quiet cores (docs/benchmarks.md).
DEMO = {"epochs": 12, "batch_size": 128, "lr": 3e-3, "patience": 8, "weight_decay": 0.01, "label_smoothing": 0.0}


def resolve(given: dict, kind: str, sources: dict | None = None) -> TrainConfig:
    """The run's config: each setting the user gave, as given; else the kind's default (KIND_DEFAULTS); else the
    global one. `sources` says where each given value came from (default 'given'); the result's `.sources`
    names the origin of every value. Of epochs and max_steps, the one the user gave decides the run's length."""
    given, sources = normalise(given), {k.replace("-", "_"): str(v) for k, v in (sources or {}).items()}
    _refuse_unknown(given)
    _types(given)
    _one_length(given)
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


# The inclusive bounds of the settings that have them (generate and serve take seeds in train's range).
RANGES = {f.name: (f.metadata["range"].lo, f.metadata["range"].hi) for f in setting_fields()
          if f.metadata["range"] is not None and not f.metadata["range"].open}


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


def check_choice(key: str, value, allowed) -> None:
    """Refuse a name the setting does not take, listing the ones it does."""
    if value not in allowed:
        raise UserError(f"unknown {key.replace('_', '-')} {value!r}; choose one of: {', '.join(allowed)}")


def _check(values: dict) -> None:
    """Refuse, in one line, a value of the wrong type or one its field's choices or range rule out; then a
    combination of values no run can have."""
    _types(values)
    for f in setting_fields():
        v, allowed, bounds = values.get(f.name), f.metadata["choices"], f.metadata["range"]
        if v is None:
            continue
        if allowed is not None:
            check_choice(f.name, v, allowed)
        if bounds is not None and not bounds.holds(v):
            raise UserError(f"The '{f.name}' setting must be {bounds}. Got {v!r} instead.")
    _min_lr_below_lr(values)
    _heads_share_width(values)
    _fractions_leave_training(values)


def _given_or_default(values: dict, key: str):
    """The value given for a setting (None: not given), else its global default."""
    v = values.get(key)
    return default_of(key) if v is None else v


def _min_lr_below_lr(values: dict) -> None:
    min_lr, lr = values.get("min_lr"), _given_or_default(values, "lr")
    if min_lr is not None and min_lr > lr:
        raise UserError(f"min_lr ({min_lr:g}) is above lr ({lr:g}): the learning rate decays from lr down to min_lr; "
                        f"give a min_lr between 0 and lr")


def _heads_share_width(values: dict) -> None:
    n_embd, n_head = _given_or_default(values, "n_embd"), _given_or_default(values, "n_head")
    if n_embd % n_head:
        raise UserError(f"n_embd ({n_embd}) must be a multiple of n_head ({n_head}): each head takes an equal share "
                        f"of the width")


def _fractions_leave_training(values: dict) -> None:
    val, test = _given_or_default(values, "val_fraction"), _given_or_default(values, "test_fraction")
    if val + test >= 0.9:
        raise UserError(f"val_fraction + test_fraction is {val + test:g}: at least 10% of the examples must be left "
                        f"to train on; lower them (defaults: {default_of('val_fraction'):g} for validation, "
                        f"{default_of('test_fraction'):g} for the test)")


def _one_length(given: dict) -> None:
    """Of epochs and max_steps a run takes one: both given is refused (either alone decides the run's length)."""
    if given.get("epochs") is not None and given.get("max_steps") is not None:
        raise UserError(f"both epochs ({given['epochs']:g}) and max_steps ({given['max_steps']}) are given, and a run "
                        f"has one length; give one of them")


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

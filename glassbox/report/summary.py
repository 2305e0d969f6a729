"""RUN/summary.json as typed records: one dataclass per kind of run (ClassifierSummary, RegressionSummary,
LMSummary) and typed records for what the report reads most (the chance level, calibration, the cost ledger,
prediction intervals, the audit's headline, the memorisation control, a divergence). run/train/finish.py writes it; the
report, the board and TensorBoard's final figures read it by attribute.

    summary = load_summary(json.loads(path.read_text()))   # the class its "task" names
    summary.test_accuracy, summary.chance.majority_accuracy
    write_json(path, summary.to_dict())                     # the keys it was built from, in their order

Every field defaults to None (a record every run holds, such as `chance`, to an empty one), so a summary from an
older glassbox loads with what it lacks as None; keys this version does not name are kept in `extra` and written
back. A value of a type glassbox never writes raises SummaryError."""
from __future__ import annotations

import functools
import json
import types
import typing
from dataclasses import dataclass, field, fields


class SummaryError(ValueError):
    """summary.json holds a value of a type glassbox never writes there."""


@dataclass(kw_only=True)
class Record:
    """What every record here shares: reading from and writing to its JSON object, unknown keys kept."""
    extra: dict = field(default_factory=dict, repr=False)         # keys this version does not name, as read
    _keys: tuple = field(default=(), init=False, repr=False, compare=False)  # the keys it was read from, in order

    @classmethod
    def from_dict(cls, data: dict, where: str = ""):
        """The record of a JSON object; `where` names it in an error ("calibration.")."""
        hints, names = _hints(cls), {f.name for f in fields(cls) if f.name not in ("extra", "_keys")}
        known = {key: _checked(hints[key], value, where + key) for key, value in data.items() if key in names}
        record = cls(**known, extra={key: value for key, value in data.items() if key not in names})
        record._keys = tuple(data)
        return record

    def to_dict(self) -> dict:
        """The JSON object: every key it was read from, in that order, with its value now; then what was set since
        (a field still None, or an empty record, was never set and is left out); then any unknown keys."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("extra", "_keys")}
        out = {}
        for key in self._keys:
            if key in values:
                out[key] = _plain(values[key])
            elif key in self.extra:
                out[key] = self.extra[key]
        for key, value in values.items():
            if key not in out and value is not None and not (isinstance(value, Record) and not value.to_dict()):
                out[key] = _plain(value)
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out


def _plain(value):
    return value.to_dict() if isinstance(value, Record) else value


@functools.cache
def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


WORDS = {float: "a number", int: "a whole number", str: "text", bool: "true or false", dict: "an object",
         list: "a list", type(None): "null"}


def _checked(hint, value, where: str):
    """`value` as the field typed `hint` holds it: a JSON object becomes its record; anything of another type than
    the hint allows raises SummaryError. Numbers are kept as read (an int stays an int)."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for option in options:
        plain = typing.get_origin(option) or option  # list[str] -> list
        if isinstance(plain, type) and issubclass(plain, Record):
            if isinstance(value, dict):
                return plain.from_dict(value, where + ".")
        elif plain is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return value
        elif plain is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        elif plain is list:
            if isinstance(value, (list, tuple)):  # a tuple is written as a JSON list too
                return value
        elif isinstance(value, plain):
            return value
    wanted = " or ".join(WORDS.get(typing.get_origin(o) or o, "an object") for o in options)
    raise SummaryError(f"{where} is {json.dumps(value)[:60]} where glassbox writes {wanted}")


# --- the records inside a summary --------------------------------------------------------------------------------

@dataclass(kw_only=True)
class Chance(Record):
    """What knowing nothing scores (train/loop.py chance_level; a regression's: train/regression.py)."""
    loss: float | None = None                   # the chance level's loss: ln K, ln V, or always the training mean's
    uniform_loss: float | None = None           # a uniform guess over the classes (tokens): ln K
    n_classes: int | None = None                # K (V for a language model)
    majority_accuracy: float | None = None      # always answering the most common class (token), on validation
    untrained_loss: float | None = None         # the model with its random starting weights
    untrained_accuracy: float | None = None     # the same (None for a regression)
    mean_prediction_loss: float | None = None   # a regression: always predicting the training mean, validation loss
    val_rmse: float | None = None               # a regression: the training mean's errors in the label's units
    val_mae: float | None = None
    val_r2: float | None = None
    test_rmse: float | None = None
    test_mae: float | None = None
    test_r2: float | None = None
    sentence: str | None = None                 # the chance level in words


@dataclass(kw_only=True)
class AuditHeadline(Record):
    """The data audit's counts (audit.json holds the findings themselves; run/audit_step.py headline)."""
    errors: int | None = None                   # findings of severity error
    warnings: int | None = None                 # findings of severity warning
    findings: list[str] | None = None           # the titles of the errors and warnings


@dataclass(kw_only=True)
class Divergence(Record):
    """Where training diverged (train/loop.py divergence)."""
    step: int | None = None                     # the step whose loss or gradient was not finite
    lr: float | None = None                     # the learning rate at that step
    loss: float | str | None = None             # its loss ('nan', 'inf': JSON has no such numbers)
    grad_norm: float | str | None = None        # its gradient norm, likewise
    restored: bool | None = None                # an earlier evaluation beat the untrained model: its weights were kept
    advice: str | None = None                   # what to change, in one line


@dataclass(kw_only=True)
class CalibrationFigures(Record):
    """Calibration on the test split at one temperature (evaluate/calibration.py)."""
    ece: float | None = None                    # expected calibration error
    mce: float | None = None                    # maximum calibration error (worst confidence band)
    nll: float | None = None                    # test loss
    brier: float | None = None                  # Brier score
    accuracy: float | None = None
    mean_confidence: float | None = None
    ece_noise: float | None = None              # the ECE a calibrated model reaches by chance on these confidences
    overall: dict | None = None                 # the count right against the sum of confidences (overall_confidence)
    verdict: str | None = None                  # "well calibrated", "over-confident", ...


@dataclass(kw_only=True)
class Calibration(Record):
    """Temperature scaling: fitted on validation, kept only where held-out evidence says it helps
    (evaluate/temperature.py calibration_report)."""
    applied: bool | None = None                 # the saved model divides its logits by `temperature` (None: old run)
    temperature: float | None = None            # the T the saved model uses (1 when not applied)
    fitted_temperature: float | None = None     # the T fitted on validation, applied or not
    reason: str | None = None                   # why it was applied or not
    decision: dict | None = None                # how that was decided (temperature.decide_temperature)
    test_check: dict | None = None              # whether the test split agrees (temperature.check_on_test)
    temperature_at_bound: bool | None = None    # the fit stopped at an end of the allowed range
    n_val: int | None = None                    # validation examples T was fitted on
    n_test: int | None = None                   # test examples the figures are on
    n_bins: int | None = None                   # confidence bands
    tolerance: float | None = None              # the ECE below which a model counts as calibrated
    val_nll_before: float | None = None         # validation loss at T = 1 and at the fitted T
    val_nll_after: float | None = None
    before: CalibrationFigures | None = None    # on test as trained (T = 1)
    after: CalibrationFigures | None = None     # on test at the fitted T
    reliability_before: list[dict] | None = None  # the reliability diagram's bands, before and after
    reliability_after: list[dict] | None = None
    sentence: str | None = None                 # what happened, in words

    @property
    def kept(self) -> bool:
        """Whether the saved model uses the fitted T: a run from before the check always applied it."""
        return self.applied is not False


@dataclass(kw_only=True)
class TrainingCost(Record):
    """The cost ledger's training side (evaluate/cost.py, run/train/cost.py)."""
    flops: float | None = None                  # the whole run's FLOPs, validation passes included
    seconds: float | None = None                # training wall time
    flops_per_second: float | None = None
    mfu: float | None = None                    # share of the measured peak
    energy_kwh: float | None = None
    cost: float | None = None                   # money, at the assumed price
    flops_per_step: float | None = None
    steps: int | None = None
    eval_flops: float | None = None             # of `flops`, the validation passes'
    sessions: list[dict] | None = None          # stretches of steps on one number of processes
    flops_per_token: float | None = None        # a language model's


@dataclass(kw_only=True)
class PredictionCost(Record):
    """The cost ledger's side of one prediction."""
    flops: float | None = None
    seconds: float | None = None                # median wall time of one prediction
    flops_per_second: float | None = None
    mfu: float | None = None
    energy_kwh_per_1000: float | None = None
    cost_per_1000: float | None = None
    unit: str | None = None                     # what one prediction is, where it is not one example
    flops_spread: dict | None = None            # inputs of different lengths: FLOPs at the median, least, most


@dataclass(kw_only=True)
class Cost(Record):
    """The cost ledger (evaluate/cost.py cost_ledger): FLOPs, time, MFU, energy and money."""
    peak_flops: float | None = None             # the measured matmul peak MFU is taken against (all processes)
    peak_dtype: str | None = None
    peak_threads: int | None = None
    peak_how: str | None = None                 # how the peak was measured
    peak_per_process: float | None = None
    processes: float | None = None              # processes, averaged over training time
    power_watts: float | None = None            # assumed constant power draw
    price_per_kwh: float | None = None          # assumed electricity price
    train: TrainingCost = field(default_factory=TrainingCost)
    inference: PredictionCost = field(default_factory=PredictionCost)
    training_equals_predictions: dict | None = None  # how many predictions training cost, by FLOPs and by time
    sentence: str | None = None


@dataclass(kw_only=True)
class MemorisationControl(Record):
    """The same model trained again on shuffled labels (run/train/after_training.py control_verdict)."""
    train_accuracy: float | None = None         # on its own shuffled training labels: memorised noise
    val_accuracy: float | None = None           # on real validation labels: should be chance
    chance_accuracy: float | None = None        # the most common validation class
    train_chance_accuracy: float | None = None  # the most common shuffled training label
    margin: float | None = None                 # three standard errors of chance on validation
    leak_suspected: bool | None = None          # validation clearly above chance: something leaks the answer
    memorised_noise: bool | None = None
    steps: int | None = None                    # the control's steps
    main_run_steps: int | None = None
    sentence: str | None = None


@dataclass(kw_only=True)
class SplitSizes(Record):
    """Examples in each part of the split."""
    train: int | None = None
    val: int | None = None
    test: int | None = None


@dataclass(kw_only=True)
class Target(Record):
    """A regression's target scale: the model learns the label standardised by these (data/regression.py)."""
    mean: float | None = None                   # the training split's mean
    std: float | None = None                    # and standard deviation
    loss: str | None = None                     # mse or huber


@dataclass(kw_only=True)
class Coverage(Record):
    """How many test values fell inside the prediction intervals (evaluate/regression.py coverage)."""
    covered: int | None = None
    n: int | None = None
    coverage: float | None = None
    ci: list[float] | None = None               # its 95% Clopper-Pearson interval
    verdict: str | None = None                  # below, consistent or above the nominal level


@dataclass(kw_only=True)
class Interval(Record):
    """Split-conformal prediction intervals from validation residuals (evaluate/regression.py)."""
    level: float | None = None                  # nominal coverage
    half_width: float | None = None             # prediction ± this (None: too few validation rows)
    n_val: int | None = None
    rank: int | None = None                     # the validation residual's rank the half-width is
    guaranteed_at_most: float | None = None     # coverage is at most level + 1 / (n + 1)
    test: Coverage | None = None
    sentence: str | None = None


# --- the summaries ------------------------------------------------------------------------------------------------

@dataclass(kw_only=True)
class Summary(Record):
    """What every run's summary.json records, a diverged one's too."""
    task: str | None = None                     # classify, regression or lm (None: absent, read as classify)
    data: str | None = None                     # the data or corpus, as given
    model: str | None = None                    # the model's name in the registry (mlp, cnn, gpt, ...)
    n_params: int | None = None                 # weights in the model
    steps: int | None = None                    # optimizer steps taken
    best_step: int | None = None                # the sweet spot, whose weights were kept (None: diverged before one)
    stopped_early: bool | None = None
    stop_reason: str | None = None              # max_steps, early_stop, interrupted or diverged
    verdict: str | None = None                  # the learning curves in words (train/early_stopping.py)
    diverged: Divergence | None = None          # None: training never diverged
    chance_loss: float | None = None            # the chance level's loss, the learning curves' dashed line
    chance: Chance = field(default_factory=Chance)
    train_seconds: float | None = None
    threads: dict | None = None                 # CPU threads training used and how they were chosen
    data_fingerprint: str | None = None         # sha256 of the data (corpus)
    audit: AuditHeadline = field(default_factory=AuditHeadline)
    world_size: int | None = None               # processes in the last session (torchrun)
    batch_size_per_process: int | None = None
    sessions: list[dict] | None = None          # steps on each number of processes (a resumed run may have several)
    train_loss: float | None = None             # at the sweet spot
    val_loss: float | None = None
    generalisation_gap: float | None = None     # classifier: train - val accuracy; regression: val - train RMSE;
    #                                             language model: val - train loss
    cost: Cost | None = None                    # the cost ledger (None: diverged, nothing was measured)
    artifact: str | None = None                 # the frozen model's folder (None: no model was saved)
    wall_seconds: float | None = None           # the whole run, report included
    stage_seconds: dict[str, float] | None = None  # wall time of each stage (data, audit, training, ...)


@dataclass(kw_only=True)
class ClassifierSummary(Summary):
    """A classifier's summary.json (run/train/classifier.py scores, post_training)."""
    kind: str | None = None                     # tabular, text or image
    classes: list[str] | None = None            # the class names, in label order
    examples_per_second: float | None = None    # training throughput
    control: MemorisationControl | str | None = None  # the shuffled-label control's result (a str: asked, not run)
    n_examples: SplitSizes = field(default_factory=SplitSizes)
    test_loss: float | None = None
    train_accuracy: float | None = None         # on up to 5,000 training examples, at the sweet spot
    val_accuracy: float | None = None
    test_accuracy: float | None = None
    temperature: float | None = None            # the T the saved model divides its logits by
    calibration: Calibration | None = None
    per_class: dict | None = None               # precision, recall, F1, confusion matrix (evaluate/classification.py)
    groups: dict | None = None                  # per-group figures by --group column (evaluate/groups.py)


@dataclass(kw_only=True)
class RegressionSummary(Summary):
    """A regression's summary.json (run/train/regression.py): errors in the label's units."""
    kind: str | None = None                     # tabular
    classes: list[str] | None = None            # a diverged run's distinct labels, as the data read them
    examples_per_second: float | None = None
    control: MemorisationControl | str | None = None
    n_examples: SplitSizes = field(default_factory=SplitSizes)
    label: str | None = None                    # the label column
    target: Target = field(default_factory=Target)
    test_loss: float | None = None              # losses are on the standardised target
    train_rmse: float | None = None             # on up to 5,000 training rows, at the sweet spot
    train_mae: float | None = None
    train_r2: float | None = None
    val_rmse: float | None = None
    val_mae: float | None = None
    val_r2: float | None = None
    test_rmse: float | None = None
    test_mae: float | None = None
    test_r2: float | None = None
    errors: dict | None = None                  # each part's rmse, mae, r2, mean residual, n
    test_ci: dict | None = None                 # 95% bootstrap intervals of the test rmse, mae and r2
    interval: Interval | None = None
    residuals: dict | None = None               # test truths and predictions for the residual plot
    groups: dict | None = None                  # per-group errors by --group column


@dataclass(kw_only=True)
class LMSummary(Summary):
    """A language model's summary.json (run/train/lm.py)."""
    model_config: dict | None = None            # the GPT's sizes (models/gpt.py GPTConfig)
    tokenizer: str | None = None                # char or bpe
    vocab_size: int | None = None
    corpus: dict | None = None                  # characters, tokens, sha256 and date of the corpus
    val_accuracy: float | None = None           # next-token accuracy on validation text
    val_windows: int | None = None              # validation windows the final figures are on
    curve_val_windows: int | None = None        # of those, the windows the curve and the verdict read
    curve_val_loss: float | None = None         # their loss at the sweet spot
    perplexity: float | None = None             # exp(val_loss)
    train_perplexity: float | None = None
    tokens_per_second: float | None = None      # training throughput
    memorization: str | None = None             # the memorisation checks in words (memorization.json has them)
    samples: list[str] | None = None            # texts the model wrote
    init: dict | None = None                    # --init: the saved model it continued, and its loss before and after
    #                                             on this corpus's validation text and on its own held-out text


RunSummary = ClassifierSummary | RegressionSummary | LMSummary
BY_TASK = {"lm": LMSummary, "regression": RegressionSummary}  # anything else (classify, or absent): a classifier


def load_summary(data: dict) -> RunSummary:
    """The typed summary of summary.json's object, of the class its task names; raises SummaryError on a value of a
    type glassbox never writes."""
    task = data.get("task")
    return BY_TASK.get(task if isinstance(task, str) else "", ClassifierSummary).from_dict(data)

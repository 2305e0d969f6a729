"""A continuous label: its values as numbers, whether a label looks continuous, the strata the split is stratified
by, and the target's scale (the training split's mean and standard deviation, saved in the artifact)."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from glassbox.data.examples import Examples
from glassbox.errors import UserError

# A label whose every value is a number and which holds more than this many distinct values trains as regression
# when the task is auto: a classifier would need several examples of each value; class codes (digits 0-9, ratings
# 1-5) stay classes.
CONTINUOUS_MIN_VALUES = 20
STRATA = 10  # the split is stratified by deciles of the target, so every split spans its range


def label_numbers(ex: Examples) -> np.ndarray:
    """Each example's label as a number (NaN where its text is not one), read as a table's numbers are read
    ("$1,234.50", "1,234")."""
    from glassbox.data.tabular import _as_float

    values = _as_float(pd.Series(ex.classes, dtype=str)).to_numpy(np.float64)
    return values[ex.labels]


def looks_continuous(ex: Examples) -> bool:
    """Every label a number, and more distinct values than classes a table's classifier is given."""
    return len(ex.classes) > CONTINUOUS_MIN_VALUES and bool(np.isfinite(label_numbers(ex)).all())


def as_regression(ex: Examples, must_vary: bool = True) -> Examples:
    """The examples with their labels as numbers (`targets`); refused in one line where a label is not a number, or
    (must_vary: data to train on) where every label is the same."""
    targets = label_numbers(ex)
    bad = np.flatnonzero(~np.isfinite(targets))
    if len(bad):
        i = int(bad[0])
        line = ex.lines[i] if ex.lines else i + 1
        raise UserError(f"regression needs a number in every label, but line {line} holds "
                        f"{ex.classes[ex.labels[i]]!r} ({len(bad):,} such rows); fix or remove them, or train a "
                        f"classifier with --task classify")
    if must_vary and np.ptp(targets) == 0:
        raise UserError(f"every label in {ex.source} is {targets[0]:g}: there is nothing to predict; pick a label "
                        f"column whose values vary")
    return replace(ex, targets=targets)


def strata(targets: np.ndarray, n: int = STRATA) -> np.ndarray:
    """Each target's decile (0..n-1): the split stratifies by these as a classifier's split does by class."""
    edges = np.quantile(targets, np.linspace(0, 1, n + 1)[1:-1])
    return np.searchsorted(edges, targets, side="right").astype(np.int64)


@dataclass
class TargetScale:
    """The target standardised with the training split's statistics: the model learns z = (y - mean) / std, and
    its predictions return to the label's units as mean + std * z."""

    mean: float
    std: float

    @classmethod
    def fit(cls, targets: np.ndarray) -> "TargetScale":
        return cls(mean=float(np.mean(targets)), std=float(np.std(targets)) or 1.0)

    def standardise(self, targets: np.ndarray) -> torch.Tensor:
        """(N,) label values -> (N, 1) float32 standardised targets, the shape of the model's output."""
        return torch.from_numpy(((np.asarray(targets, np.float64) - self.mean) / self.std).astype(np.float32))[:, None]

    def to_units(self, z) -> np.ndarray:
        """Model outputs (N, 1) or (N,) -> values in the label's units, float64 (N,)."""
        z = z.numpy() if torch.is_tensor(z) else np.asarray(z)
        return self.mean + self.std * z.reshape(-1).astype(np.float64)

    def to_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std}

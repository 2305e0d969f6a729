"""Tabular data: read feature and label columns, and the encoder that turns rows into numbers.

Numeric columns are standardised with statistics from the training split only; categorical
columns become integer codes (0 = unseen or missing) that the model embeds."""
from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd
import torch

from glassbox.data.examples import Examples
from glassbox.data.table import read_table, require_column
from glassbox.errors import UserError

MISSING = {"", "?", "na", "n/a", "nan", "null", "none"}
MAX_CATEGORICAL_WITH_STRAYS = 50  # a mostly-numeric column with at most this many distinct values is categorical


def clean_label(value: str) -> str:
    return value.strip()


def load_tabular(path, label: str, columns: list[str] | None = None, groups=()) -> Examples:
    """Examples from a CSV/TSV/JSONL file: every column but the label is a feature."""
    df, lines = read_table(path, columns)
    require_column(df, label, "label", path)
    for g in groups:
        require_column(df, g, "group", path)
    labels_raw = df[label].map(clean_label)
    if (labels_raw == "").any():
        line = lines[int(np.flatnonzero((labels_raw == "").to_numpy())[0])]
        raise UserError(f"{path} line {line} has an empty label in column '{label}'; fill it in or remove the row")
    features = df.drop(columns=[label])
    if features.shape[1] == 0:
        raise UserError(f"{path} has no feature columns besides the label '{label}'; add the inputs as columns")
    classes = sorted(labels_raw.unique().tolist())
    index = {c: i for i, c in enumerate(classes)}
    keys = ["\x1f".join(row) for row in features.itertuples(index=False, name=None)]
    return Examples(
        kind="tabular", inputs=features.reset_index(drop=True),
        labels=labels_raw.map(index).to_numpy(np.int64), classes=classes, keys=keys, lines=lines,
        groups={g: df[g].tolist() for g in groups}, source=str(path), meta={"label": label},
    )


def _as_float(col: pd.Series) -> pd.Series:
    """Numbers; missing markers, text and infinities become NaN (missing)."""
    stripped = col.str.strip()
    values = pd.to_numeric(stripped.where(~stripped.str.lower().isin(MISSING)), errors="coerce")
    return values.where(np.isfinite(values))


class TabularEncoder:
    """Rows of str -> float tensor (N, n_numeric + n_categorical): numeric first, then category codes."""

    def __init__(self, numeric=None, categorical=None, columns=None):
        self.numeric = numeric or {}          # name -> {"mean", "std", "missing": bool}
        self.categorical = categorical or {}  # name -> list of categories (code = index + 1)
        self.columns = columns or []          # feature columns in the training file's order

    def fit(self, ex: Examples) -> "TabularEncoder":
        df = ex.inputs
        self.columns = list(df.columns)
        for name in self.columns:
            col = df[name]
            missing = col.str.strip().str.lower().isin(MISSING)
            values = _as_float(col)
            stray = values.isna() & ~missing
            present = (~missing).sum()
            if present and not stray.any():
                v = values[~missing].to_numpy(np.float64)
                std = float(v.std()) or 1.0
                self.numeric[name] = {"mean": float(v.mean()), "std": std, "missing": bool(missing.any())}
            elif present and stray.mean() < 0.1 and col[~missing].nunique() > MAX_CATEGORICAL_WITH_STRAYS:
                i = int(np.flatnonzero(stray.to_numpy())[0])
                line = ex.lines[i] if ex.lines else i + 1
                raise UserError(
                    f"column '{name}' is numeric but line {line} holds {col.iloc[i]!r}; "
                    f"fix or blank out the {int(stray.sum())} non-numeric value(s) in that column"
                )
            else:
                cats = sorted(col[~missing].str.strip().unique().tolist())
                self.categorical[name] = cats
        return self

    @property
    def cardinalities(self) -> list[int]:
        return [len(c) + 1 for c in self.categorical.values()]

    @property
    def n_numeric(self) -> int:
        return len(self.numeric) + sum(s["missing"] for s in self.numeric.values())

    def encode(self, df: pd.DataFrame) -> torch.Tensor:
        cols = []
        for name, s in self.numeric.items():
            v = _as_float(df[name].astype(str))
            cols.append(((v - s["mean"]) / s["std"]).fillna(0.0).to_numpy(np.float32))
            if s["missing"]:
                cols.append(v.isna().to_numpy(np.float32))
        for name, cats in self.categorical.items():
            code = {c: i + 1 for i, c in enumerate(cats)}
            cols.append(df[name].astype(str).str.strip().map(code).fillna(0).to_numpy(np.float32))
        return torch.from_numpy(np.stack(cols, axis=1)) if cols else torch.zeros(len(df), 0)

    def parse(self, rows: list[str]) -> pd.DataFrame:
        """CSV rows of feature values, in the training column order, as a table."""
        parsed = []
        for text in rows:
            rec = next(csv.reader(io.StringIO(text), skipinitialspace=True), [])
            if len(rec) != len(self.columns):
                raise UserError(
                    f"an input row has {len(rec)} values but the model takes {len(self.columns)}: "
                    f"{', '.join(self.columns)} (in that order, comma-separated)"
                )
            parsed.append(rec)
        return self._check_numbers(pd.DataFrame(parsed, columns=self.columns, dtype=str))

    def _check_numbers(self, df: pd.DataFrame) -> pd.DataFrame:
        """A value to predict from must be a finite number (or a missing marker) where the model reads numbers:
        training quietly counted text there as missing, but a prediction should not guess what was meant."""
        for name in self.numeric:
            col = df[name].astype(str).str.strip()
            bad = ~col.str.lower().isin(MISSING) & _as_float(col).isna()
            if bad.any():
                raise UserError(f"column '{name}' takes numbers, but an input has {col[bad].iloc[0]!r}; give a finite "
                                f"number, or leave it empty for missing")
        return df

    def frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """The training feature columns of a table that has a header (extra columns are ignored)."""
        missing = [c for c in self.columns if c not in df.columns]
        if missing:
            raise UserError(f"the input file lacks feature column(s) {', '.join(missing)}; "
                            f"the model takes: {', '.join(self.columns)}")
        return self._check_numbers(df[self.columns].astype(str))

    def to_dict(self) -> dict:
        return {"type": "tabular", "columns": self.columns, "numeric": self.numeric, "categorical": self.categorical}

    @classmethod
    def from_dict(cls, d: dict) -> "TabularEncoder":
        return cls(numeric=d["numeric"], categorical=d["categorical"], columns=d["columns"])

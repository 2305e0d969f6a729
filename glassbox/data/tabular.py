"""Tabular data: read feature and label columns, and the encoder that turns rows into numbers.

Numeric columns are standardised with statistics from the training split only; categorical
columns become integer codes (0 = unseen or missing) that the model embeds. Numbers written as text are read as
numbers: thousands separators and currency signs ("$1,234.50"), and booleans (true/false, yes/no: 1/0). ISO dates
("2024-03-01", with or without a time) become days since 1970-01-01, which also carries the year, and
their month and day of the week as points on a circle (December next to January, Sunday next to Monday), computed
from the date alone. An ID-like column (a distinct text in nearly
every row, or a row counter) is left out: it names rows rather than describing them."""
from __future__ import annotations

import csv
import io
import re

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


BOOLEANS = {"true": "1", "false": "0", "yes": "1", "no": "0"}
CURRENCY = re.compile(r"^([-+]?)\s*[$€£¥₹]\s*")  # a currency sign before the number, after any sign
THOUSANDS = re.compile(r"^[-+]?\d{1,3}(,\d{3})+(\.\d*)?$")  # 1,234 and 1,234,567.5; not 1,5 (a decimal comma)
ISO_DATE = r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$"
ID_MIN_DISTINCT = 50   # an ID-like column has at least this many distinct values ...
ID_SHARE = 0.9         # ... and a distinct text in at least this share of its rows


def _as_float(col: pd.Series) -> pd.Series:
    """Numbers, also when written "$1,234.50" or as a boolean; missing markers, other text and infinities become
    NaN (missing)."""
    stripped = col.str.strip()
    lower = stripped.str.lower()
    text = stripped.where(~lower.isin(MISSING)).str.replace(CURRENCY, r"\1", regex=True)
    text = text.where(~text.str.match(THOUSANDS, na=False), text.str.replace(",", "", regex=False))
    text = text.where(~lower.isin(BOOLEANS), lower.map(BOOLEANS))
    values = pd.to_numeric(text, errors="coerce")
    return values.where(np.isfinite(values))


def _as_dates(col: pd.Series) -> pd.Series:
    """ISO dates (and date-times) as datetimes; anything else becomes NaT (missing)."""
    stripped = col.str.strip()
    return pd.to_datetime(stripped.where(stripped.str.match(ISO_DATE, na=False)), format="ISO8601", errors="coerce")


def _as_days(col: pd.Series) -> pd.Series:
    """ISO dates (and date-times) as days since 1970-01-01; anything else becomes NaN (missing)."""
    return (_as_dates(col) - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)


def calendar_features(col: pd.Series) -> list[np.ndarray]:
    """Month and day of the week as (sin, cos) pairs on their circles: four float32 columns, 0 where the date is
    missing. Nothing is fitted: the calendar is the same for every data set."""
    dates = _as_dates(col.astype(str))
    out = []
    for part, period in ((dates.dt.month - 1, 12), (dates.dt.day_of_week, 7)):
        angle = 2 * np.pi * part.to_numpy(np.float64) / period
        out += [np.nan_to_num(np.sin(angle)).astype(np.float32), np.nan_to_num(np.cos(angle)).astype(np.float32)]
    return out


def is_date_column(col: pd.Series, missing: pd.Series) -> bool:
    present = col[~missing].str.strip()
    return bool(len(present)) and bool(present.str.match(ISO_DATE).all()) and not _as_days(present).isna().any()


def id_like_columns(df: pd.DataFrame) -> dict[str, str]:
    """Columns that name rows rather than describe them, with why: a distinct text in nearly every row (at least
    ID_MIN_DISTINCT of them; not dates, which a daily table holds once each), or whole numbers that count the rows
    (each once, no gaps). Nothing learned from them carries over to new rows."""
    found = {}
    for name in df.columns:
        col = df[name].astype(str).str.strip()
        present = col[~col.str.lower().isin(MISSING)]
        distinct = present.nunique()
        if distinct < ID_MIN_DISTINCT or is_date_column(present, present == ""):  # a date describes its row
            continue
        numbers = _as_float(present)
        if numbers.notna().mean() >= 0.5:  # a column of numbers (strays aside) is an ID only as a row counter
            v = np.sort(numbers.to_numpy())
            if numbers.notna().all() and distinct == len(present) and np.all(v == np.round(v)) \
                    and np.all(np.diff(v) == 1):
                found[str(name)] = f"whole numbers {v[0]:.0f} to {v[-1]:.0f}, each once: a row counter"
        elif distinct >= ID_SHARE * len(present) and present.str.len().mean() < 20:  # long texts: free text instead
            found[str(name)] = f"{distinct:,} distinct values in {len(present):,} rows"
    return found


MAX_STANDARD_DEVIATIONS = 1e6  # an input this far from the training values is a mistake, and would end in NaN


class TabularEncoder:
    """Rows of str -> float tensor (N, n_numeric + n_categorical): numeric first, then category codes."""

    def __init__(self, numeric=None, categorical=None, columns=None, ignored=None):
        self.numeric = numeric or {}          # name -> {"mean", "std", "missing": bool, "parse": "date" for dates,
                                              #          "calendar": True for a date's month and weekday columns}
        self.categorical = categorical or {}  # name -> list of categories (code = index + 1)
        self.columns = columns or []          # feature columns in the training file's order
        self.ignored = ignored or {}          # ID-like columns left out -> why (id_like_columns)

    def fit(self, ex: Examples) -> "TabularEncoder":
        df = ex.inputs
        self.columns = list(df.columns)
        self.ignored = id_like_columns(df)
        if len(self.ignored) == len(self.columns):
            why = "; ".join(f"{name}: {reason}" for name, reason in self.ignored.items())
            raise UserError(f"every feature column looks like a row ID ({why}), so there is nothing to learn from; "
                            f"add columns that describe the examples")
        for name in self.columns:
            if name in self.ignored:
                continue
            col = df[name]
            missing = col.str.strip().str.lower().isin(MISSING)
            dates = is_date_column(col, missing)
            values = _as_days(col) if dates else _as_float(col)
            stray = values.isna() & ~missing
            present = (~missing).sum()
            if present and not stray.any():
                v = values[~missing].to_numpy(np.float64)
                std = float(v.std()) or 1.0
                self.numeric[name] = {"mean": float(v.mean()), "std": std, "missing": bool(missing.any()),
                                      **({"parse": "date", "calendar": True} if dates else {})}
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
        return len(self.numeric) + sum(s["missing"] + 4 * s.get("calendar", False) for s in self.numeric.values())

    def encode(self, df: pd.DataFrame) -> torch.Tensor:
        cols = []
        for name, s in self.numeric.items():
            v = (_as_days if s.get("parse") == "date" else _as_float)(df[name].astype(str))
            cols.append(((v - s["mean"]) / s["std"]).fillna(0.0).to_numpy(np.float32))
            if s["missing"]:
                cols.append(v.isna().to_numpy(np.float32))
            if s.get("calendar"):  # an artifact from before calendar features has none
                cols += calendar_features(df[name])
        for name, cats in self.categorical.items():
            code = {c: i + 1 for i, c in enumerate(cats)}
            cols.append(df[name].astype(str).str.strip().map(code).fillna(0).to_numpy(np.float32))
        return torch.from_numpy(np.stack(cols, axis=1)) if cols else torch.zeros(len(df), 0)

    def parse(self, rows: list[str]) -> pd.DataFrame:
        """CSV rows of feature values, in the training column order, as a table."""
        parsed = []
        for number, text in enumerate(rows, 1):
            try:
                records = list(csv.reader(io.StringIO(text), skipinitialspace=True))
            except csv.Error as e:  # a field over csv's limit (131,072 characters), a NUL byte
                raise UserError(f"input {number} is not one CSV row ({e}); send the feature values comma-separated, "
                                f"quoting a value that holds a comma") from None
            if len(records) > 1:
                raise UserError(f"input {number} holds {len(records)} rows (a line break outside quotes); send one "
                                f"row per input")
            rec = records[0] if records else []
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
        for name, s in self.numeric.items():
            col = df[name].astype(str).str.strip()
            dates = s.get("parse") == "date"
            values = (_as_days if dates else _as_float)(col)
            bad = ~col.str.lower().isin(MISSING) & values.isna()
            if bad.any():
                want = "a date as YYYY-MM-DD" if dates else "a finite number"
                raise UserError(f"column '{name}' takes {'dates' if dates else 'numbers'}, but an input has "
                                f"{col[bad].iloc[0]!r}; give {want}, or leave it empty for missing")
            far = ((values - s["mean"]) / s["std"]).abs() > MAX_STANDARD_DEVIATIONS
            if far.any():  # its standardised value would overflow the model's 32-bit arithmetic into NaN
                z = abs((values[far].iloc[0] - s["mean"]) / s["std"])
                raise UserError(f"column '{name}' has {col[far].iloc[0]!r} in an input, {z:.2g} standard deviations "
                                f"from the training values (mean {s['mean']:.4g}, sd {s['std']:.4g}); the model "
                                f"cannot read a value that far out: check it")
        return df

    def frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """The training feature columns of a table that has a header (extra columns are ignored)."""
        missing = [c for c in self.columns if c not in df.columns]
        if missing:
            raise UserError(f"the input file lacks feature column(s) {', '.join(missing)}; "
                            f"the model takes: {', '.join(self.columns)}")
        return self._check_numbers(df[self.columns].astype(str))

    def to_dict(self) -> dict:
        return {"type": "tabular", "columns": self.columns, "numeric": self.numeric, "categorical": self.categorical,
                "ignored": self.ignored}

    @classmethod
    def from_dict(cls, d: dict) -> "TabularEncoder":
        """Also an artifact from before dates and ID-like columns (no "parse", no "ignored"): it encodes as it did."""
        return cls(numeric=d["numeric"], categorical=d["categorical"], columns=d["columns"], ignored=d.get("ignored"))

"""A table: one example per row of a CSV, TSV, JSONL, Parquet or Arrow (Feather) file, the label in one column
(`--label`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from glassbox.config import TrainConfig
from glassbox.data.examples import Examples
from glassbox.data.kinds.base import FoldPlan
from glassbox.errors import UserError

# The fold models: the plain MLP, which learns in 3 epochs where each of the default table model's ensemble members
# would see one; AdamW as the full run; far below the size where a second CPU thread helps, so one thread, untimed.
FOLD = FoldPlan(TrainConfig(model="mlp", optimizer="adamw", lr=3e-3, epochs=3, batch_size=256, weight_decay=0.01,
                            dropout=0.1, patience=3, quiet=True, device="cpu", threads=1), min_steps=300)
ROUND = 2  # near copies: rows whose standardised numbers are equal after rounding to this many decimals


class Table:
    name, plural, wire = "tabular", "table rows", "table"
    described = "a table (CSV, TSV, JSONL or Parquet) with --label"
    encoder_types = ("tabular",)
    settings = frozenset({"label", "columns", "group", "control", "test", "test_fraction", "loss"})
    fold = FOLD
    slow_to_parse = False
    guesses_regression = True
    counted, identical = "rows", "with identical values"
    audit_checks = frozenset({"missing_values", "id_columns"})
    never_missing = ""
    shows_copied_input = False  # a row's values are too many to read twice
    chance_matches = True  # two people can give the same answers: leakage counts matches beyond chance (audit/chance.py)

    def detect(self, data: str, cfg: TrainConfig) -> bool:
        return Path(data).exists() and not Path(data).is_dir() and not cfg.text  # a device is refused by the reader

    def load(self, data: str, cfg: TrainConfig, classes: list[str] | None = None, size: int | None = None,
             channels: int | None = None) -> Examples:
        from glassbox.data.tabular import load_tabular

        if not cfg.label:
            raise UserError("tabular data needs --label COL naming the column to predict")
        return load_tabular(data, cfg.label, columns=cfg.columns, groups=cfg.group)

    def notes(self, ex: Examples) -> list[str]:
        """What the user should know about these examples before training: a column of free text."""
        return [f"note: column '{column}' looks like free text (most values distinct, long); as a tabular feature each "
                f"distinct text is one category and nothing carries over to new texts. To learn from its words, train a "
                f"text model: --text {column}" for column in free_text_columns(ex.inputs)]

    def check(self, ex: Examples) -> None:
        """The column checks a training run makes as it fits the encoder: a numeric column with a stray 'inf' or
        word, a column of one value, ... (UserError)."""
        self.make_encoder(ex, TrainConfig())

    def shape_of(self, ex: Examples) -> dict:
        return {}

    def encoder_shape(self, encoder) -> dict:
        return {}

    def make_encoder(self, ex: Examples, cfg: TrainConfig, **options):
        from glassbox.data.tabular import TabularEncoder

        return TabularEncoder().fit(ex)

    def augment(self, encoder):
        return None

    def model_inputs(self, encoder, inputs):
        return encoder.frame(inputs)

    def file_inputs(self, path: str, encoder):
        """`glassbox predict --file`: a table file with a header -> (each row as typed, the encoder's inputs)."""
        from glassbox.data.table import read_table

        df, _ = read_table(path)
        return [",".join(r) for r in df.astype(str).values.tolist()], encoder.frame(df)

    def describe(self, ex: Examples, i: int) -> str:
        """One example as a person reads it: its column=value pairs."""
        return ", ".join(f"{c}={str(v).strip()}" for c, v in ex.inputs.iloc[i].items())

    def pictures(self, ex: Examples):
        return None

    def columns(self, ex: Examples) -> dict:
        """The inputs' own named columns, name -> each example's value as text."""
        return {str(c): ex.inputs[c].astype(str).str.strip().to_numpy() for c in ex.inputs.columns}

    def client_inputs(self, raw: list[str]) -> list[str]:
        return raw  # CSV rows of feature values, as typed

    def client_file(self, path: str, columns: list[str]) -> tuple[list[str], list[str]]:
        """A table file with a header -> (its rows as typed, for the output; the feature values the server's model
        takes, in its training order, as CSV rows)."""
        import csv
        import io

        from glassbox.data.table import read_table

        df, _ = read_table(path)
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise UserError(f"the input file lacks feature column(s) {', '.join(missing)}; the model takes: "
                            f"{', '.join(columns)}")
        shown = [",".join(r) for r in df.astype(str).values.tolist()]
        sent = []
        for row in df[columns].astype(str).values.tolist():
            line = io.StringIO()
            csv.writer(line).writerow(row)
            sent.append(line.getvalue().rstrip("\r\n"))
        return shown, sent

    def wire_units(self, encoder, raw: list[str], max_chars: int | None = None,
                   max_pixels: int | None = None) -> list:
        from glassbox.data.kinds.base import too_long

        too_long(raw, max_chars, "table row")
        return encoder.parse(raw).values.tolist()

    def input_sizes(self, encoded):
        return None

    def wire_cost(self, unit) -> int:
        return sum(map(len, unit))

    def wire_join(self, encoder, units: list):
        import pandas as pd

        return pd.DataFrame(units, columns=encoder.columns, dtype=str)

    def show_inputs(self, ex: Examples, rows: np.ndarray) -> list:
        return ex.inputs.iloc[rows].to_dict("records")

    def distinct_as_read(self, ex: Examples) -> int | None:
        return None

    def near_copy_groups(self, pieces: list[tuple[Examples, np.ndarray]],
                         threshold: float) -> tuple[np.ndarray, np.ndarray]:
        import pandas as pd

        frame = pd.concat([ex.inputs.iloc[rows] for ex, rows in pieces], ignore_index=True)
        return _shared(_near_hash(frame)), np.full(len(frame), np.nan)

    def near_copy_method(self, threshold: float) -> str:
        return f"identical after standardising numbers and rounding to {ROUND} decimals"

    def near_copy_score(self, threshold: float) -> tuple[str, float] | None:
        return None


def free_text_columns(frame) -> list[str]:
    """Columns whose values are mostly distinct and long (20+ characters on average): texts, not categories."""
    out = []
    for name in frame.columns:
        values = frame[name].astype(str)
        if len(values) >= 20 and values.nunique() > 0.5 * len(values) and values.str.len().mean() >= 20 \
                and not values.str.strip().str.match(r"^-?[\d.,eE+-]+$").mean() > 0.5:
            out.append(str(name))
    return out


def _near_hash(frame) -> np.ndarray:
    """One hash per row of its features after standardising numbers and rounding them to ROUND decimals."""
    import pandas as pd

    from glassbox.data.tabular import MISSING

    cols = {}
    for name in frame.columns:
        text = frame[name].astype(str).str.strip().str.lower()
        number = pd.to_numeric(text.where(~text.isin(MISSING)), errors="coerce")
        if number.notna().sum() >= 0.95 * (~text.isin(MISSING)).sum() and number.notna().any():
            cols[name] = ((number - number.mean()) / (number.std() or 1.0)).round(ROUND)
        else:
            cols[name] = text
    return pd.util.hash_pandas_object(pd.DataFrame(cols), index=False).to_numpy()


def _shared(values: np.ndarray) -> np.ndarray:
    """Group id for values shared by two or more entries, numbered by first entry; -1 for unique values."""
    import pandas as pd

    codes, _ = pd.factorize(values)
    sizes = np.bincount(codes)
    ids = np.full(len(codes), -1)
    shared = sizes[codes] >= 2
    ids[shared] = pd.factorize(codes[shared])[0]
    return ids


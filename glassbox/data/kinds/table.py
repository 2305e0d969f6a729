"""A table: one example per row of a CSV, TSV or JSONL file, the label in one column (`--label`)."""
from __future__ import annotations

from pathlib import Path

from glassbox.config import TrainConfig
from glassbox.data.examples import Examples
from glassbox.data.kinds.base import FoldPlan
from glassbox.errors import UserError

# The fold models: the plain MLP, which learns in 3 epochs where each of the default table model's ensemble members
# would see one; AdamW as the full run; far below the size where a second CPU thread helps, so one thread, untimed.
FOLD = FoldPlan(TrainConfig(model="mlp", optimizer="adamw", lr=3e-3, epochs=3, batch_size=256, weight_decay=0.01,
                            dropout=0.1, patience=3, quiet=True, device="cpu", threads=1), min_steps=300)


class Table:
    name, plural, wire = "tabular", "table rows", "table"
    described = "a table (CSV, TSV or JSONL) with --label"
    encoder_types = ("tabular",)
    settings = frozenset({"label", "columns", "group", "control", "test", "test_fraction", "loss"})
    fold = FOLD
    slow_to_parse = False
    guesses_regression = True

    def detect(self, data: str, cfg: TrainConfig) -> bool:
        return Path(data).is_file() and not cfg.text

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

    def wire_units(self, encoder, raw: list[str]) -> list:
        return encoder.parse(raw).values.tolist()

    def wire_join(self, encoder, units: list):
        import pandas as pd

        return pd.DataFrame(units, columns=encoder.columns, dtype=str)


def free_text_columns(frame) -> list[str]:
    """Columns whose values are mostly distinct and long (20+ characters on average): texts, not categories."""
    out = []
    for name in frame.columns:
        values = frame[name].astype(str)
        if len(values) >= 20 and values.nunique() > 0.5 * len(values) and values.str.len().mean() >= 20 \
                and not values.str.strip().str.match(r"^-?[\d.,eE+-]+$").mean() > 0.5:
            out.append(str(name))
    return out

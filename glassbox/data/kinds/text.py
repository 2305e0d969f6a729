"""Labelled texts: one example per row of a CSV, TSV, JSONL, Parquet or Arrow (Feather) file, the text in one column
(`--text`) and the label in another (`--label`)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from glassbox.config import TrainConfig
from glassbox.data.examples import Examples
from glassbox.data.kinds.base import FoldPlan
from glassbox.errors import UserError

# The fold models: fastText-style on plain SGD at lr 3, which finds label errors as well as momentum 0.9 at lr 0.3
# (5 flip seeds: precision 0.963 vs 0.962, recall 0.897 vs 0.901) in 15% less time; one thread, untimed.
FOLD = FoldPlan(TrainConfig(optimizer="sgd", lr=3.0, momentum=0.0, epochs=5, batch_size=128, weight_decay=0.0,
                            patience=3, quiet=True, device="cpu", threads=1), min_steps=300)


class Texts:
    name, plural, wire = "text", "texts", "text"
    described = "texts in a table with --text and --label"
    encoder_types = ("hashed_ngrams", "bpe")
    settings = frozenset({"label", "text", "columns", "group", "control", "test", "test_fraction", "loss"})
    fold = FOLD
    slow_to_parse = False
    guesses_regression = False
    counted, identical = "texts", "once whitespace and case are ignored"  # data/text.py: normalise_text
    audit_checks = frozenset({"empty_texts", "extreme_lengths"})
    never_missing = ""
    shows_copied_input = True
    chance_matches = False

    def detect(self, data: str, cfg: TrainConfig) -> bool:
        return Path(data).exists() and not Path(data).is_dir() and bool(cfg.text)

    def load(self, data: str, cfg: TrainConfig, classes: list[str] | None = None, size: int | None = None,
             channels: int | None = None) -> Examples:
        from glassbox.data.text import load_text

        if not cfg.label:
            raise UserError("text data needs --label COL naming the label column")
        if not cfg.text:
            raise UserError("text data needs --text COL naming the column that holds the text")
        if cfg.label == cfg.text:
            raise UserError(f"--text and --label both name the column {cfg.text!r}; the text and the label it should "
                            f"predict must be two different columns")
        ex = load_text(data, cfg.text, cfg.label, columns=cfg.columns, group_cols=cfg.group)
        return replace(ex, meta={**ex.meta, "label": cfg.label})  # the label's name, as a table's examples keep it

    def notes(self, ex: Examples) -> list[str]:
        return []

    def check(self, ex: Examples) -> None:
        return None

    def shape_of(self, ex: Examples) -> dict:
        return {}

    def encoder_shape(self, encoder) -> dict:
        return {}

    def make_encoder(self, ex: Examples, cfg: TrainConfig, **options):
        """fastText's hashed n-grams (options: HashedNgramEncoder's arguments), or subwords for --model transformer."""
        from glassbox.data.text import BPEEncoder, HashedNgramEncoder

        if cfg.model == "transformer":
            return BPEEncoder(vocab_size=cfg.vocab_size).fit(ex.inputs)
        return HashedNgramEncoder(**options).fit(ex.inputs)

    def augment(self, encoder):
        return None

    def model_inputs(self, encoder, inputs):
        return inputs

    def file_inputs(self, path: str, encoder):
        return None  # one text per line (the command line's own reading)

    def describe(self, ex: Examples, i: int) -> str:
        return ex.inputs[i]

    def pictures(self, ex: Examples):
        return None

    def columns(self, ex: Examples) -> dict:
        return {}  # a text's other columns are read only when named with --group

    def client_inputs(self, raw: list[str]) -> list[str]:
        return raw

    def client_file(self, path: str, columns: list[str]) -> None:
        return None

    def wire_units(self, encoder, raw: list[str], max_chars: int | None = None,
                   max_pixels: int | None = None) -> list:
        from glassbox.data.kinds.base import too_long

        too_long(raw, max_chars, "text")
        return list(raw)

    def input_sizes(self, encoded):
        return (encoded != 0).sum(dim=1).numpy()  # ids are padded with 0 at the end (data/text.py, data/bpe.py)

    def wire_cost(self, unit) -> int:
        return len(unit)

    def wire_join(self, encoder, units: list):
        return units

    def show_inputs(self, ex: Examples, rows: np.ndarray) -> list:
        return [ex.inputs[i] for i in rows]

    def distinct_as_read(self, ex: Examples) -> int | None:
        return len(set(ex.inputs))

    def near_copy_groups(self, pieces: list[tuple[Examples, np.ndarray]],
                         threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """MinHash over the content keys' character shingles (data/minhash.py); a score of 0 outside groups."""
        from glassbox.data.minhash import near_duplicate_groups

        return near_duplicate_groups([ex.keys[i] for ex, rows in pieces for i in rows], threshold)

    def near_copy_method(self, threshold: float) -> str:
        from glassbox.data.minhash import SHINGLE

        return f"sharing at least {threshold:.0%} of their {SHINGLE}-character pieces, by MinHash estimate"

    def near_copy_score(self, threshold: float) -> tuple[str, float] | None:
        return "similarity", threshold

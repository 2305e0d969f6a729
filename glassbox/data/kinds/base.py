"""What every kind of data provides (a Protocol: the kinds are plain classes that share no code by inheritance)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from glassbox.config import TrainConfig
from glassbox.data.examples import Examples


@dataclass(frozen=True)
class FoldPlan:
    """How the audit's quick fold models train on a kind (run/out_of_fold.py): a few epochs with these settings,
    these fields of the training run's model config replaced, and at least `min_steps` updates per fold. `costly`:
    they train on the run's device, and inside `glassbox train` only within a FLOP budget (images); otherwise they
    are always cheap next to the training run and train on the CPU."""
    config: TrainConfig
    model: dict = field(default_factory=dict)
    min_steps: int = 0
    costly: bool = False


class DataKind(Protocol):
    name: str                  # as Examples.kind, summary.json and the audit record it: "tabular", "text", "image", ...
    plural: str                # its examples in words: "table rows", "texts", "images"
    described: str             # what such data is, for a message: "an image folder"
    wire: str                  # what a client sends `glassbox serve` for one input: "table", "text", "image"
    encoder_types: tuple       # the manifest's preprocessing types of this kind's encoders
    settings: frozenset        # the data settings that mean something for it (--label, --text, --image-size, ...)
    fold: FoldPlan | None      # the audit's fold models (None: the label-error check does not apply)
    slow_to_parse: bool        # parsing a request's inputs takes long enough to run off the server's event loop
    guesses_regression: bool   # --task auto trains a regression when the label holds many distinct numbers
    # What the data audit (glassbox/audit) says and checks about it:
    counted: str               # its examples in the audit's findings: "rows", "texts", "images"
    identical: str             # when two examples are exact copies, in words: "pixel for pixel", ...
    audit_checks: frozenset    # the audit's checks of the inputs that apply: "empty_texts", "id_columns", ...
    never_missing: str         # the audit's message where no check for missing values applies (images), else ""
    shows_copied_input: bool   # findings show the copied example's input beside each copy (texts: short to read)
    chance_matches: bool       # different examples can share their content by chance (a table's few distinct values):
                               # leakage counts only the matches beyond what independent examples give (audit/chance.py)

    def detect(self, data: str, cfg: TrainConfig) -> bool:
        """Whether the data at `data` is of this kind for a run with these settings."""

    def load(self, data: str, cfg: TrainConfig, classes: list[str] | None = None, size: int | None = None,
             channels: int | None = None) -> Examples:
        """The examples at `data`. A test file or a file scored by an artifact is read to match the training data:
        `classes` (images: the training classes), and the shape `shape_of` or `encoder_shape` gives (images: side
        length and channels)."""

    def notes(self, ex: Examples) -> list[str]:
        """Lines the user should read about these examples before training (e.g. a table's column of free text)."""

    def check(self, ex: Examples) -> None:
        """Refuse (UserError) what training would refuse as it fits the encoder, for `glassbox audit`."""

    def shape_of(self, ex: Examples) -> dict:
        """What a test file must match to be read like these examples, as `load`'s keywords ({} where nothing)."""

    def encoder_shape(self, encoder) -> dict:
        """The same, for the data an artifact's encoder reads."""

    def make_encoder(self, ex: Examples, cfg: TrainConfig, **options):
        """The encoder (raw input -> tensor) for these examples, fitted on them."""

    def augment(self, encoder):
        """The training batches' augmentation (a callable on a batch of encoded inputs), or None."""

    def model_inputs(self, encoder, inputs):
        """Examples' inputs as the encoder of an artifact takes them."""

    def file_inputs(self, path: str, encoder):
        """`glassbox predict --file` where the kind reads a file its own way: (each input as typed, the encoder's
        inputs); None: one input per line."""

    def describe(self, ex: Examples, i: int) -> str:
        """Example i as a person reads it: the text, a row's column=value pairs, an image's size."""

    def pictures(self, ex: Examples):
        """The examples' pixels where they are pictures a page can show, else None."""

    def columns(self, ex: Examples) -> dict:
        """The inputs' own named columns (a table's): name -> each example's value as text."""

    def client_inputs(self, raw: list[str]) -> list[str]:
        """`glassbox predict --url`: inputs as the user typed them -> what the client sends the server."""

    def client_file(self, path: str, columns: list[str]):
        """`glassbox predict --url --file` where the kind reads a file its own way: (each input as typed, what is
        sent); None: one input per line."""

    def wire_units(self, encoder, raw: list[str], max_chars: int | None = None,
                   max_pixels: int | None = None) -> list:
        """One request's inputs, as a client sends them, checked and parsed: one unit each. An input over
        `max_chars` characters (text, a table row) or `max_pixels` pixels (an image, from its header, before it is
        decoded) raises TooLarge naming it."""

    def input_sizes(self, encoded) -> np.ndarray | None:
        """Each encoded input's size where one prediction's work grows with it (texts: the ids that are not padding),
        for the cost ledger's distribution; None where every input costs the same (a table's row, an image)."""

    def wire_cost(self, unit) -> int:
        """A unit's characters of text, which the model thread's work grows with (0 where size is fixed)."""

    def wire_join(self, encoder, units: list):
        """Units from any requests -> the encoder's input for one forward pass."""

    def show_inputs(self, ex: Examples, rows: np.ndarray) -> list:
        """The inputs at `rows` as a person reads them in a finding: the text, the feature values, or None (an
        image: the line column names its file)."""

    def distinct_as_read(self, ex: Examples) -> int | None:
        """How many inputs are distinct exactly as read, where `identical` ignores something (texts: whitespace
        and case); None where it ignores nothing."""

    def near_copy_groups(self, pieces: list[tuple[Examples, np.ndarray]],
                         threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """Near copies among distinct contents: those at `rows` of each (Examples, rows), in order (the training
        examples, then a test file). Returns each content's group (-1 for none; groups numbered from 0) and its
        score in it (`near_copy_score`; NaN where the kind has none). `threshold`: the texts' MinHash similarity."""

    def near_copy_method(self, threshold: float) -> str:
        """How `near_copy_groups` finds near copies, in words, for a finding."""

    def near_copy_score(self, threshold: float) -> tuple[str, float] | None:
        """The score each near copy carries in findings and the least a near copy reaches: ("similarity", 0.8),
        ("correlation", 0.98); None where near copies are equal after rounding and carry no score."""


def too_long(raw: list[str], max_chars: int | None, what: str) -> None:
    """Refuse (TooLarge) the first input over `max_chars` characters, before any work is done on it."""
    from glassbox.errors import TooLarge

    for number, text in enumerate(raw, 1):
        if max_chars is not None and len(text) > max_chars:
            raise TooLarge(f"input {number} is a {what} of {len(text):,} characters; the limit is {max_chars:,} "
                           f"(--max-input-chars)")

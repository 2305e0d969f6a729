"""The kinds of data glassbox trains on, one class each, in one table: a table, labelled texts, images and a text
corpus. A kind owns how its data is recognised, read, encoded, checked by the audit's quick fold models and sent by a
client to `glassbox serve`; code elsewhere asks the kind and never tests its name.

    kind = detect("adult.csv", cfg)          # the kind of the data a run is given
    ex = kind.load("adult.csv", cfg)         # Examples
    encoder = kind.make_encoder(ex, cfg)     # fitted on the training split only
    kind = KINDS[ex.kind]                    # the kind of examples already read
    kind = for_encoder(manifest["preprocessing"]["type"])   # the kind an artifact reads

Adding a kind is one module here with a class like these, and one line in KINDS."""
from __future__ import annotations

from pathlib import Path

from glassbox.data.kinds.base import DataKind, FoldPlan
from glassbox.data.kinds.corpus import Corpus
from glassbox.data.kinds.image import Images
from glassbox.data.kinds.table import Table
from glassbox.data.kinds.text import Texts
from glassbox.errors import UserError

# In the order a run's data is recognised: the first kind whose `detect` says yes reads it.
KINDS: dict[str, DataKind] = {k.name: k for k in (Corpus(), Images(), Texts(), Table())}


def detect(data: str, cfg) -> DataKind:
    """The kind of the data at `data` (a path or a built-in name) for a run with these settings."""
    for kind in KINDS.values():
        if kind.detect(data, cfg):
            return kind
    if not Path(data).exists():
        raise UserError(f"data not found: {data}; give a CSV/TSV/JSONL/Parquet file, an image folder, or 'digits'")
    raise UserError(f"{data} is a folder with no images or IDX files; give a data file or an image folder")


def for_encoder(encoder_type: str) -> DataKind:
    """The kind whose inputs an artifact's encoder reads (its manifest's preprocessing type)."""
    for kind in KINDS.values():
        if encoder_type in kind.encoder_types:
            return kind
    return KINDS["text"]


def for_wire(wire: str | None) -> DataKind:
    """The kind whose inputs a server takes, by what its GET /info says a client sends ("table", "text", "image")."""
    for kind in KINDS.values():
        if kind.wire == wire and kind.encoder_types:
            return kind
    return KINDS["text"]


__all__ = ["KINDS", "DataKind", "FoldPlan", "detect", "for_encoder", "for_wire"]

"""The one shape every loader returns: labelled examples, ready for the audit, the split and the model."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Examples:
    """Labelled examples read from the user's data.

    kind:    "tabular", "image" or "text" (language-model corpora have their own type).
    inputs:  the raw inputs, one per example: a pandas DataFrame of feature columns (tabular),
             a uint8 array (N, C, H, W) (image), or a list of str (text).
    labels:  int64 array (N,) indexing into `classes`.
    classes: class names, sorted.
    keys:    one canonical content string per example; identical examples share a key, so the
             split keeps them together and the audit counts them as duplicates.
    lines:   1-based line number (or file name) of each example in the user's file, for messages.
    groups:  optional group columns (name -> list of str), for the audit and per-group metrics.
    source:  where the examples came from (a path or a built-in name).
    targets: for regression, the label as a number, float64 (N,); labels and classes keep its text, so the audit
             shows the label as written. None for a classifier.
    """

    kind: str
    inputs: Any
    labels: np.ndarray
    classes: list[str]
    keys: list[str]
    lines: list = field(default_factory=list)
    groups: dict[str, list[str]] = field(default_factory=dict)
    source: str = ""
    meta: dict = field(default_factory=dict)
    targets: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def fingerprint(self) -> str:
        """sha256 over every example's content key and label: changes if any example changes."""
        h = hashlib.sha256()
        for key, label in zip(self.keys, self.labels.tolist()):
            h.update(key.encode("utf-8", "surrogatepass"))
            h.update(b"\x00")
            h.update(self.classes[label].encode())
            h.update(b"\x01")
        return h.hexdigest()

    def subset(self, idx) -> "Examples":
        idx = np.asarray(idx, dtype=np.int64)
        if hasattr(self.inputs, "iloc"):  # a table's DataFrame
            inputs = self.inputs.iloc[idx].reset_index(drop=True)
        elif isinstance(self.inputs, list):  # texts
            inputs = [self.inputs[i] for i in idx]
        else:  # an array of images
            inputs = self.inputs[idx]
        return Examples(
            kind=self.kind,
            inputs=inputs,
            labels=self.labels[idx],
            classes=self.classes,
            keys=[self.keys[i] for i in idx],
            lines=[self.lines[i] for i in idx] if self.lines else [],
            groups={k: [v[i] for i in idx] for k, v in self.groups.items()},
            source=self.source,
            meta=self.meta,
            targets=None if self.targets is None else self.targets[idx],
        )

"""Rebuild a saved encoder (raw input -> model input) from the dict stored in an artifact manifest."""
from __future__ import annotations

import importlib

from glassbox.errors import UserError

# "type" key in the manifest -> (module, class); imported lazily
ENCODERS = {
    "tabular": ("glassbox.data.tabular", "TabularEncoder"),
    "image": ("glassbox.data.images", "ImageEncoder"),
    "hashed_ngrams": ("glassbox.data.text", "HashedNgramEncoder"),
    "bpe": ("glassbox.data.bpe", "BPEEncoder"),
}


def encoder_from_dict(d: dict):
    kind = d.get("type")
    if kind not in ENCODERS:
        raise UserError(f"the artifact's preprocessing type {kind!r} is unknown to this glassbox version; "
                        f"upgrade glassbox or re-export the model")
    module, cls = ENCODERS[kind]
    return getattr(importlib.import_module(module), cls).from_dict(d)

"""A request's inputs as the batcher holds them: one unit per input (a text, a table row, an image array), so
inputs from many requests join into one forward pass and a large request splits across several.

Images arrive as their bytes, base64-encoded: the server never opens a path a client names, so a client can
neither read the server's files nor learn which exist."""
from __future__ import annotations

import base64
import binascii
import io

import numpy as np

from glassbox.errors import UserError

KINDS = {"tabular": "table", "image": "image", "hashed_ngrams": "text", "bpe": "text"}  # encoder -> what a client sends


def input_kind(predictor) -> str:
    return KINDS.get(predictor.manifest["preprocessing"]["type"], "text")


def units(predictor, raw: list[str]) -> list:
    """The inputs of one request, checked and parsed, one unit each (UserError names the bad one)."""
    kind = input_kind(predictor)
    if kind == "image":
        return [image_from_base64(predictor.encoder, text, i) for i, text in enumerate(raw, 1)]
    if kind == "table":
        return predictor.parse(raw).values.tolist()
    return list(raw)


def join(predictor, batch: list):
    """Units from any requests -> the encoder's input for one forward pass."""
    kind = input_kind(predictor)
    if kind == "image":
        return np.stack(batch)
    if kind == "table":
        import pandas as pd

        return pd.DataFrame(batch, columns=predictor.encoder.columns, dtype=str)
    return batch


def image_from_base64(encoder, text: str, number: int) -> np.ndarray:
    from PIL.Image import DecompressionBombError

    from glassbox.data.images import decode

    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        data = None
    if not data:
        raise UserError(f"input {number} is not base64: send each image as its file's bytes, base64-encoded "
                        f"(the server never opens a path)")
    try:
        return decode(io.BytesIO(data), encoder.size, "L" if encoder.channels == 1 else "RGB")
    except (UserError, DecompressionBombError):
        raise UserError(f"input {number} is not an image Pillow can read (PNG, JPEG, ...); send the image file's "
                        f"bytes, base64-encoded") from None

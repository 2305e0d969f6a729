"""A request's inputs as the batcher holds them: one unit per input (a text, a table row, an image array), so
inputs from many requests join into one forward pass and a large request splits across several. What a client sends
for one input, and how it is parsed, is the artifact's kind of data's (glassbox/data/kinds: `wire_units`,
`wire_join`); an image arrives as its bytes, base64-encoded, and the server never opens a path a client names."""
from __future__ import annotations

from glassbox.data.kinds import DataKind, for_encoder


def kind_of(predictor) -> DataKind:
    """The kind of data the predictor's artifact reads."""
    return for_encoder(predictor.manifest["preprocessing"]["type"])


def input_kind(predictor) -> str:
    """What a client sends for one input: "table", "text" or "image" (GET /info says it)."""
    return kind_of(predictor).wire


def units(predictor, raw: list[str], max_chars: int | None = None, max_pixels: int | None = None) -> list:
    """The inputs of one request, checked and parsed, one unit each (UserError names the bad one; TooLarge one over
    `max_chars` characters or `max_pixels` pixels)."""
    return kind_of(predictor).wire_units(predictor.encoder, raw, max_chars, max_pixels)


def cost_of(predictor):
    """unit -> the characters of text the model thread works through for it (0 where every input costs the same)."""
    return kind_of(predictor).wire_cost


def join(predictor, batch: list):
    """Units from any requests -> the encoder's input for one forward pass."""
    return kind_of(predictor).wire_join(predictor.encoder, batch)


def slow_to_parse(predictor) -> bool:
    """Whether parsing a request's inputs takes long enough to run off the event loop (decoding images)."""
    return kind_of(predictor).slow_to_parse

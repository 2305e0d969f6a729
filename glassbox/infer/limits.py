"""What the server takes on, and when it says no: every bound has a flag of `glassbox serve` and shows in GET /info.

The defaults follow the serving systems teams already run: TorchServe's request limit is 6.5 MB and its batcher
waits up to 100 ms; Triton rejects at once when its queue is full; Ray Serve answers 503 with Retry-After."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from glassbox.errors import UserError


@dataclass(frozen=True)
class Limits:
    max_batch_size: int = 64       # inputs in one forward pass, never more (a large request is split across batches)
    max_wait_ms: float = 2.0       # how long a batch's first input waits for company before the forward pass
    max_body_bytes: int = 4 << 20  # a larger request body is refused with 413 before it is parsed
    max_inputs: int = 256          # inputs in one request; more are refused with 413
    max_queue: int = 1024          # inputs waiting for the model; a request that does not fit gets 503 + Retry-After
    max_concurrent: int = 128      # requests held at once (bodies held <= this x max_body_bytes); more get 503
    timeout_s: float = 10.0        # a request not answered by then gets 504 and its queued inputs are dropped
    drain_s: float = 10.0          # on SIGTERM: how long in-flight requests may take to finish
    body_timeout_s: float = 10.0   # a request body not fully received by then gets 408 (a slow sender holds nothing)
    max_input_chars: int = 20_000  # characters in one text, table row or prompt; a longer one is refused with 413
    max_batch_chars: int = 200_000  # characters of text in one forward pass (an input longer than this goes alone)
    max_image_pixels: int = 25_000_000  # pixels of one image, read from its header before it is decoded; more: 413
    decode_threads: int = 2        # threads that decode images (each holds at most one image of --max-image-pixels)

    def __post_init__(self):
        for f in fields(self):
            value, whole = getattr(self, f.name), f.type == "int"
            flag = "--" + f.name.replace("_", "-")
            ok = (isinstance(value, int) and not isinstance(value, bool)) if whole else \
                (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value))
            least = 0 if f.name == "max_wait_ms" else (1 if whole else 1e-3)
            if not ok or value < least:
                what = "a whole number" if whole else "a number"
                raise UserError(f"{flag} must be {what} of at least {least}. Got {value!r}")
        if self.max_input_chars > self.max_batch_chars:
            raise UserError(f"--max-input-chars ({self.max_input_chars}) is larger than --max-batch-chars "
                            f"({self.max_batch_chars}); lower the first or raise the second")
        if self.max_inputs > self.max_queue:
            raise UserError(f"--max-inputs ({self.max_inputs}) is larger than --max-queue ({self.max_queue}): such a "
                            f"request could never be queued; lower --max-inputs or raise --max-queue")

    def to_dict(self) -> dict:
        return asdict(self)


FLAG_HELP = {  # the flags of `glassbox serve`, one per limit
    "max_batch_size": "inputs in one forward pass, never more",
    "max_wait_ms": "milliseconds a batch's first input waits for more to join (0: no waiting)",
    "max_body_bytes": "largest request body; larger ones get 413",
    "max_inputs": "most inputs in one request; more get 413",
    "max_queue": "most inputs waiting for the model; a request that does not fit gets 503 with Retry-After",
    "max_concurrent": "most requests held at once; more get 503 (the request bodies held stay below this "
                      "times --max-body-bytes)",
    "timeout_s": "seconds a request may take; then 504, and its inputs not yet computed are dropped",
    "drain_s": "on SIGTERM, seconds in-flight requests get to finish before the server exits",
    "body_timeout_s": "seconds a client may take to send its request body; then 408 (a slow sender holds no slot "
                      "for longer)",
    "max_input_chars": "most characters in one input (a text, a table row, a prompt); longer ones get 413",
    "max_batch_chars": "most characters of text in one forward pass (bounds the model thread's work per batch)",
    "max_image_pixels": "most pixels in one image, read from its header before decoding; larger ones get 413",
    "decode_threads": "threads that decode images (memory held stays below this times --max-image-pixels)",
}

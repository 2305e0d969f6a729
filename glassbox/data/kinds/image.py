"""Images: a folder with one sub-folder per class, a flat folder whose file names carry the label
(`--label-from-name`), MNIST-style IDX files, or the built-in digits. A client sends `glassbox serve` each image as
its file's bytes, base64-encoded: the server never opens a path a client names."""
from __future__ import annotations

import base64
import binascii
import io
from pathlib import Path

import numpy as np

from glassbox.config import TrainConfig
from glassbox.data.examples import Examples
from glassbox.data.kinds.base import FoldPlan
from glassbox.errors import UserError

# The fold models: AdamW as the full run, 16 channels wide (on the 8x8 digits 8 or 16 find flipped labels alike; on
# photos a quarter of the 32-wide model's FLOPs), each image scored once, not also its mirror image; at least 50
# updates a fold (digits with 5% flipped, 3 flip seeds: precision 0.977 vs 0.926 at 150, recall 0.944 vs 0.967, a
# third of the cost). Their thread count is timed on the first fold.
FOLD = FoldPlan(TrainConfig(optimizer="adamw", lr=3e-3, epochs=3, batch_size=64, weight_decay=0.01, patience=3,
                            quiet=True, device="auto"), model={"width": 16, "flip_tta": False}, min_steps=50,
                costly=True)


class Images:
    name, plural, wire = "image", "images", "image"
    described = "an image folder"
    encoder_types = ("image",)
    settings = frozenset({"image_size", "label_from_name", "control", "test", "test_fraction", "loss"})
    fold = FOLD
    slow_to_parse = True
    guesses_regression = False
    counted, identical = "images", "pixel for pixel"
    audit_checks = frozenset()
    never_missing = "an image has no missing values: a file that cannot be read stops loading with an error naming it."
    shows_copied_input = False  # the line column names the file
    chance_matches = False

    def detect(self, data: str, cfg: TrainConfig) -> bool:
        from glassbox.data.builtin import BUILTIN
        from glassbox.data.images import is_image_source

        if data in BUILTIN:
            return True
        p = Path(data)
        if p.is_dir() and not is_image_source(data):
            for have, need in (("images-idx3-ubyte", "labels-idx1-ubyte"), ("labels-idx1-ubyte", "images-idx3-ubyte")):
                if any(p.glob(f"*{have}*")):
                    raise UserError(f"{data} holds an IDX {have.split('-')[0]} file but no *{need}* file next to it; "
                                    f"put both IDX files of the set in the folder")
        return is_image_source(data)

    def load(self, data: str, cfg: TrainConfig, classes: list[str] | None = None, size: int | None = None,
             channels: int | None = None) -> Examples:
        """The images; a test folder is read at the training size and channels, its labels among the training
        classes."""
        from glassbox.data.builtin import BUILTIN, load_builtin
        from glassbox.data.images import load_images

        if data in BUILTIN:
            return load_builtin(data)
        mode = {1: "L", 3: "RGB"}.get(channels)
        return load_images(data, cfg.label_from_name, size or cfg.image_size, classes=classes, mode=mode)

    def notes(self, ex: Examples) -> list[str]:
        return []

    def check(self, ex: Examples) -> None:
        return None

    def shape_of(self, ex: Examples) -> dict:
        return {"size": int(ex.inputs.shape[-1]), "channels": int(ex.inputs.shape[1])}

    def encoder_shape(self, encoder) -> dict:
        return {"size": encoder.size, "channels": encoder.channels}

    def make_encoder(self, ex: Examples, cfg: TrainConfig, **options):
        from glassbox.data.images import ImageEncoder

        return ImageEncoder().fit(ex)

    def augment(self, encoder):
        """Shifts for every image; for photos also mirror images and soft focus (still photos of the same thing)."""
        from glassbox.data.augment import ImageAugment

        photos = encoder.channels == 3
        return ImageAugment(flip=photos, shift=max(1, encoder.size // 8), blur=0.15 if photos else 0.0)

    def model_inputs(self, encoder, inputs):
        return inputs

    def file_inputs(self, path: str, encoder):
        return None  # one image path per line (the command line's own reading)

    def describe(self, ex: Examples, i: int) -> str:
        return "image " + "x".join(map(str, ex.inputs[i].shape[1:])) + f", {ex.inputs[i].shape[0]} channel(s)"

    def pictures(self, ex: Examples):
        """The examples' pixels, for a page that shows them."""
        return ex.inputs

    def columns(self, ex: Examples) -> dict:
        return {}

    def client_inputs(self, raw: list[str]) -> list[str]:
        """Image paths as typed -> each file's bytes, base64-encoded (the server never opens a path)."""
        out = []
        for path in map(Path, raw):
            if not path.is_file():
                raise UserError(f"image not found: {path}; check the path")
            out.append(base64.b64encode(path.read_bytes()).decode("ascii"))
        return out

    def client_file(self, path: str, columns: list[str]) -> None:
        return None

    def wire_units(self, encoder, raw: list[str], max_chars: int | None = None,
                   max_pixels: int | None = None) -> list:
        return [image_from_base64(encoder, text, i, max_pixels) for i, text in enumerate(raw, 1)]

    def input_sizes(self, encoded):
        return None

    def wire_cost(self, unit) -> int:
        return 0  # decoded at the model's size: every image costs the same

    def wire_join(self, encoder, units: list):
        return np.stack(units)

    def show_inputs(self, ex: Examples, rows: np.ndarray) -> list:
        return [None] * len(rows)

    def distinct_as_read(self, ex: Examples) -> int | None:
        return None

    def near_copy_groups(self, pieces: list[tuple[Examples, np.ndarray]],
                         threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """Perceptual hashes, confirmed by pixel correlation (data/image_hash.py); none where a test file's images
        have another size or channel count than the training images."""
        from glassbox.data.image_hash import near_duplicate_images

        if len({ex.inputs.shape[1:] for ex, _ in pieces}) > 1:
            n = sum(len(rows) for _, rows in pieces)
            return np.full(n, -1), np.full(n, np.nan)
        images = np.concatenate([ex.inputs[rows] for ex, rows in pieces]).astype(pieces[0][0].inputs.dtype, copy=False)
        return near_duplicate_images(images)

    def near_copy_method(self, threshold: float) -> str:
        from glassbox.data.image_hash import MAX_BITS, MIN_CORRELATION

        return (f"the same picture re-encoded, resized or lightly edited: perceptual hashes at most {MAX_BITS} of 63 "
                f"bits apart and pixels correlating at {MIN_CORRELATION} or more")

    def near_copy_score(self, threshold: float) -> tuple[str, float] | None:
        from glassbox.data.image_hash import MIN_CORRELATION

        return "correlation", MIN_CORRELATION


def image_from_base64(encoder, text: str, number: int, max_pixels: int | None = None) -> np.ndarray:
    """Input `number` of a request, an image file's bytes base64-encoded, decoded at the encoder's size; one of more
    than `max_pixels` pixels (its header says) is refused before it is decoded."""
    from PIL.Image import DecompressionBombError

    from glassbox.data.images import decode
    from glassbox.errors import TooLarge

    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        data = None
    if not data:
        raise UserError(f"input {number} is not base64: send each image as its file's bytes, base64-encoded "
                        f"(the server never opens a path)")
    try:
        return decode(io.BytesIO(data), encoder.size, "L" if encoder.channels == 1 else "RGB", max_pixels)
    except TooLarge as e:
        raise TooLarge(f"input {number}: {e}") from None
    except (UserError, DecompressionBombError):
        raise UserError(f"input {number} is not an image Pillow can read (PNG, JPEG, ...); send the image file's "
                        f"bytes, base64-encoded") from None

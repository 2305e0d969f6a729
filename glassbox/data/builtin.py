"""Built-in real data that needs no download: scikit-learn's 1,797 handwritten digits (8x8)."""
from __future__ import annotations

import hashlib

import numpy as np

from glassbox.data.examples import Examples

BUILTIN = ("digits",)


def load_builtin(name: str) -> Examples:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.round(d.images * (255 / 16)).astype(np.uint8)[:, None]  # (N, 1, 8, 8), 0..16 -> 0..255
    keys = [hashlib.sha1(a.tobytes()).hexdigest() for a in images]
    return Examples(kind="image", inputs=images, labels=d.target.astype(np.int64),
                    classes=[str(c) for c in range(10)], keys=keys, lines=[f"digits[{i}]" for i in range(len(images))],
                    source="builtin:digits")

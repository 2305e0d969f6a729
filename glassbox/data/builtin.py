"""Built-in real data that needs no download: scikit-learn's 1,797 handwritten digits (8x8)."""
from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np

from glassbox.data.examples import Examples

BUILTIN = ("digits",)


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as (images (N, 8, 8) in 0..16, targets), read from the file scikit-learn ships
    (datasets/data/digits.csv.gz, what its load_digits reads) without importing scikit-learn, which costs about a
    second a process that needs nothing else of it (`glassbox explain digits`); load_digits where the file is not."""
    spec = importlib.util.find_spec("sklearn")
    path = Path(spec.submodule_search_locations[0], "datasets", "data", "digits.csv.gz") if spec else None
    if path is None or not path.exists():
        from sklearn.datasets import load_digits

        d = load_digits()
        return d.images, d.target
    table = np.loadtxt(path, delimiter=",")
    return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(int)


def load_builtin(name: str) -> Examples:
    pixels, target = digits_arrays()
    images = np.round(pixels * (255 / 16)).astype(np.uint8)[:, None]  # (N, 1, 8, 8), 0..16 -> 0..255
    keys = [hashlib.sha1(a.tobytes()).hexdigest() for a in images]
    return Examples(kind="image", inputs=images, labels=target.astype(np.int64),
                    classes=[str(c) for c in range(10)], keys=keys, lines=[f"digits[{i}]" for i in range(len(images))],
                    source="builtin:digits")

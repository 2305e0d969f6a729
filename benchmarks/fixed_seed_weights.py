"""The sha256 of model.safetensors for four fixed-seed runs (the demo's settings, SMS spam, UCI Adult, a
tinyshakespeare language model), each on one thread so the sums are the same on every run. A change that must not
change behaviour (a refactor) prints the same four digests before and after.

    python benchmarks/fixed_seed_weights.py            # prints one line per run: name, sha256, seconds
    python benchmarks/fixed_seed_weights.py demo lm    # some of them
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from glassbox.run.train.start import train
from glassbox.runtime.files import sha256_file

# ../shared/data beside the checkout (GLASSBOX_SHARED_DATA for a checkout elsewhere, e.g. a worktree of an older commit)
DATA = Path(os.environ.get("GLASSBOX_SHARED_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")
RUNS = {
    "demo": ("digits", {"epochs": 12, "batch_size": 128, "lr": 3e-3, "patience": 8, "weight_decay": 0.01,
                        "label_smoothing": 0.0}),
    "spam": (str(DATA / "sms_spam_collection" / "SMSSpamCollection"),
             {"columns": ["label", "text"], "label": "label", "text": "text", "force": True}),
    "adult": (str(DATA / "uci_adult" / "adult.data"),
              {"columns": [f"c{i}" for i in range(14)] + ["income"], "label": "income", "epochs": 2, "force": True}),
    "lm": (str(DATA / "tinyshakespeare" / "input.txt"), {"task": "lm", "max_steps": 60, "force": True}),
}


def main(names: list[str]) -> None:
    for name in names or list(RUNS):
        data, settings = RUNS[name]
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            train(data, out=out, quiet=True, threads=1, **settings)
            digest = sha256_file(Path(out) / "model" / "model.safetensors")
            print(f"{name:6s} {digest} {time.perf_counter() - t0:6.1f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

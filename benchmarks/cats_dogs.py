"""Cats vs dogs photos: the whole `glassbox train` run against a hand-written PyTorch CNN loop.

    python benchmarks/cats_dogs.py                  # glassbox train, then the baseline
    python benchmarks/cats_dogs.py --quick          # smoke check: a few hundred steps each
    python benchmarks/cats_dogs.py --skip-baseline  # glassbox only

Data (cats-dogs-bench, from Kaggle's Dogs vs. Cats): 23,000 photos at 32x32 in `32x32/pre-train` to train
on, and 1,000 photos at 64x64 in `64x64/test` to test on (resized to 32x32 by glassbox's image loader);
labels come from the file-name prefix (`--label-from-name 'cat|dog'`). The tarballs in
../shared/data/cats_dogs are extracted once into $GLASSBOX_CACHE_DIR/cats_dogs (default
~/.cache/glassbox/cats_dogs).

glassbox: the plain `glassbox train` command (no flags beyond the data's), timed from start to end (decoding, audit, split, training,
evaluation, calibration, cost ledger, artifact, report). Goal: test accuracy >= 0.90 within 300 s on 2 CPU cores.
Baseline: a plain loop written by hand (6 conv layers with batch norm, random flips, one-cycle learning
rate, SGD with Nesterov momentum) on the same decoded tensors and the same training split; its time counts
decoding the photos, training and testing. Prints both test accuracies, both wall times and their ratio.
"""
from __future__ import annotations

import argparse
import os
import sys
import tarfile
import tempfile
import time
from pathlib import Path

# As glassbox's CLI does, before torch loads: idle OpenMP threads sleep instead of spinning.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TARBALLS = ROOT.parent / "shared" / "data" / "cats_dogs"

from glassbox.data.images import ImageEncoder, load_images  # noqa: E402
from glassbox.audit.duplicates import split_keys  # noqa: E402
from glassbox.data.split import split_indices  # noqa: E402
from glassbox.run.train.start import train as run  # noqa: E402

# `glassbox train DATA --label-from-name 'cat|dog' --test TEST` as a user types it, with no other flag: the image
# defaults (glassbox/config.py KIND_DEFAULTS["image"]: 15 epochs of batch 128, AdamW 3e-3 with warm-up and cosine
# decay to lr / 10, weight decay 0.1, label smoothing 0.2) are the settings this benchmark measures.
SETTINGS: dict = {}
QUICK = {"max_steps": 200, "eval_every": 100}  # a smoke check, not a result

BASELINE = {"epochs": 10, "batch_size": 128, "max_lr": 0.1, "weight_decay": 5e-4}


def cache_root() -> Path:
    return Path(os.environ.get("GLASSBOX_CACHE_DIR") or Path.home() / ".cache" / "glassbox") / "cats_dogs"


def extract_data() -> tuple[Path, Path]:
    """Unpack both tarballs once; a marker file says an extraction finished."""
    root = cache_root()
    for name in ("cdb_32x32_pretrain_noflip.tar.gz", "cdb_64x64_small.tar.gz"):
        marker = root / f".{name}.done"
        if marker.exists():
            continue
        print(f"extracting {name} into {root}", flush=True)
        root.mkdir(parents=True, exist_ok=True)
        with tarfile.open(TARBALLS / name) as t:
            t.extractall(root, filter="data")
        marker.touch()
    return root / "32x32" / "pre-train", root / "64x64" / "test"


def run_glassbox(train_dir: Path, test_dir: Path, settings: dict, out: Path) -> tuple[float, float, dict]:
    t0 = time.perf_counter()
    summary = run(str(train_dir), label_from_name="cat|dog", test=str(test_dir), out=str(out), quiet=True, **settings)
    return summary["test_accuracy"], time.perf_counter() - t0, summary


def baseline_net() -> nn.Sequential:
    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    return nn.Sequential(*block(3, 32), *block(32, 32), nn.MaxPool2d(2),      # 32x32 -> 16x16
                         *block(32, 64), *block(64, 64), nn.MaxPool2d(2),     # -> 8x8
                         *block(64, 128), *block(128, 128), nn.MaxPool2d(2),  # -> 4x4
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 2))


def run_baseline(train_dir: Path, test_dir: Path, epochs: int, batch_size: int, max_lr: float, weight_decay: float,
                 max_steps: int | None = None, seed: int = 0) -> tuple[float, float]:
    """Decode, split and normalise as glassbox does, then a plain training loop and one test pass."""
    t0 = time.perf_counter()
    train = load_images(train_dir, "cat|dog")
    test = load_images(test_dir, "cat|dog", size=32, classes=train.classes)
    parts = split_indices(split_keys(train), train.labels, (0.9, 0.1), seed, names=("train", "val"))
    train = train.subset(parts["train"])
    encoder = ImageEncoder().fit(train)
    x_train, y_train = encoder.encode(train.inputs), torch.from_numpy(train.labels)
    x_test, y_test = encoder.encode(test.inputs), torch.from_numpy(test.labels)

    torch.manual_seed(seed)
    model = baseline_net()
    per_epoch = len(y_train) // batch_size
    total = max_steps or epochs * per_epoch
    opt = torch.optim.SGD(model.parameters(), lr=max_lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=total)
    model.train()
    step = 0
    while step < total:
        perm = torch.randperm(len(y_train))
        for i in range(per_epoch):
            if step == total:
                break
            idx = perm[i * batch_size:(i + 1) * batch_size]
            x, y = x_train[idx], y_train[idx]
            flip = torch.rand(len(idx)) < 0.5
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
            step += 1
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(x_test[i:i + 500]).argmax(1) for i in range(0, len(y_test), 500)])
    return (pred == y_test).float().mean().item(), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a few hundred steps each: a smoke check, not a result")
    ap.add_argument("--skip-baseline", action="store_true", help="run glassbox only")
    ap.add_argument("--out", default=None, help="glassbox's run folder (default: a temporary folder)")
    args = ap.parse_args()

    train_dir, test_dir = extract_data()
    settings = QUICK if args.quick else SETTINGS
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; glassbox settings: "
          f"{ {k: v for k, v in settings.items() if v is not None} }", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp) / "run"
        acc, seconds, summary = run_glassbox(train_dir, test_dir, settings, out)
    print(f"glassbox train: test accuracy {acc:.4f} in {seconds:.1f} s wall "
          f"(training {summary['train_seconds']:.1f} s, {summary['steps']} steps, {summary['examples_per_second']:.0f} "
          f"examples/s; sweet spot at step {summary['best_step']}; {summary['n_params']:,} weights)", flush=True)
    if args.skip_baseline:
        return
    base = {**BASELINE, "max_steps": 200} if args.quick else BASELINE
    base_acc, base_seconds = run_baseline(train_dir, test_dir, **base)
    print(f"hand-written loop: test accuracy {base_acc:.4f} in {base_seconds:.1f} s wall ({base})", flush=True)
    print(f"time ratio glassbox / hand-written: {seconds / base_seconds:.3f}; accuracy {acc:.4f} vs {base_acc:.4f} "
          f"({100 * (acc - base_acc):+.1f} points); goal: >= 0.90 within 300 s: "
          f"{'met' if acc >= 0.90 and seconds <= 300 else 'not met'}")


if __name__ == "__main__":
    main()

"""Likely label errors in tables and images: 5% of the labels flipped, glassbox's audit against cleanlab
with scikit-learn models, both on 5-fold out-of-fold probabilities, in the same script.

    python benchmarks/label_errors_tables_images.py --data adult --seeds 0 1 2
    python benchmarks/label_errors_tables_images.py --data digits --seeds 0 1 2
    python benchmarks/label_errors_tables_images.py --data digits-table --seeds 0 1 2

adult:  UCI Adult (32,561 census records, income <=50K / >50K). The labels were never clean: income is
        only partly settled by the record, so much of what any method flags is hard cases, not mistakes;
        precision and recall here count the flipped labels only.
digits: scikit-learn's 1,797 handwritten digits (8x8 images, 10 classes), labels nearly clean.
digits-table: the same digits as a table of 64 pixel columns: a table whose labels the inputs settle.

Ours: `glassbox audit`'s check (glassbox/out_of_fold.py: the MLP for tables, a 16-channel CNN for images;
duplicate-aware folds; cleanlab's calibrated count, then the least believed examples). Baselines: cleanlab's
usual recipe, cross_val_predict with StratifiedKFold then cleanlab.filter.find_label_issues (its default
filter), with HistGradientBoosting (categorical columns declared as such) and with logistic regression,
each on the same encoded inputs. Times: one run each, fitting and predicting only (the inputs are
encoded once, outside the timers).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

# On a busy machine spinning OpenMP threads make small torch steps many times slower; the CLI sets this too.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ADULT = ROOT.parent / "shared" / "data" / "uci_adult" / "adult.data"
ADULT_COLUMNS = ["age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
                 "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week", "native_country",
                 "income"]

from glassbox.audit.label_errors import label_errors  # noqa: E402
from glassbox.run.out_of_fold import FoldModels  # noqa: E402


def load(name: str):
    if name == "adult":
        from glassbox.data.tabular import load_tabular

        return load_tabular(ADULT, "income", columns=ADULT_COLUMNS)
    from glassbox.data.builtin import load_builtin

    images = load_builtin("digits")
    if name == "digits":
        return images
    import pandas as pd  # digits-table: the same digits as a table of 64 pixel columns (0-16), MLP fold models
    from glassbox.data.examples import Examples

    pixels = pd.DataFrame(images.inputs.reshape(len(images), 64).astype(str), columns=[f"p{i}" for i in range(64)])
    return Examples(kind="tabular", inputs=pixels, labels=images.labels, classes=images.classes, keys=images.keys,
                    lines=list(range(2, len(images) + 2)), source="digits as a table")


def flip(labels: np.ndarray, n_classes: int, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(labels with `share` of them changed to another class at random, the changed rows)."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(labels), int(round(share * len(labels))), replace=False))
    out = labels.copy()
    out[rows] = (out[rows] + rng.integers(1, n_classes, len(rows))) % n_classes
    return out, rows


def score(flagged, flipped) -> tuple[float, float, int]:
    hits = np.isin(flagged, flipped).sum()
    return hits / max(1, len(flagged)), hits / len(flipped), len(flagged)


def baselines(x: np.ndarray, labels: np.ndarray, categorical: np.ndarray | None, seed: int) -> dict:
    from cleanlab.filter import find_label_issues
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from threadpoolctl import threadpool_limits

    models = {"cleanlab + HistGradientBoosting": HistGradientBoostingClassifier(categorical_features=categorical,
                                                                               random_state=seed),
              "cleanlab + LogisticRegression": LogisticRegression(max_iter=1000)}
    out = {}
    for name, model in models.items():
        t0 = time.perf_counter()
        # One OpenMP thread: in a process that also holds torch, scikit-learn's threads ran 4-6x slower
        # (HistGradientBoosting on the digits: 60 s; 9 s on one thread, 13 s on two in a process of its own).
        with threadpool_limits(limits=1):
            probs = cross_val_predict(model, x, labels, method="predict_proba",
                                      cv=StratifiedKFold(n_splits=5, shuffle=True, random_state=seed))
        issues = find_label_issues(labels, probs)
        out[name] = (np.flatnonzero(issues), time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", choices=("adult", "digits", "digits-table"), default="adult")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="which labels are flipped, and the folds")
    ap.add_argument("--share", type=float, default=0.05, help="share of labels flipped")
    args = ap.parse_args()

    ex = load(args.data)
    clean = ex.labels.copy()
    rows = {}
    for seed in args.seeds:
        ex.labels, flipped = flip(clean, len(ex.classes), args.share, seed)
        print(f"{args.data}: {len(ex):,} examples, {len(flipped)} labels flipped ({args.share:.0%}, seed {seed})", flush=True)
        t0 = time.perf_counter()
        folds = FoldModels(ex, k=5, seed=seed)
        encode_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        found = label_errors(ex, folds.probabilities()).flagged["row"].to_numpy()
        results = {"glassbox audit": (found, time.perf_counter() - t0)}
        x = folds.x.reshape(len(ex), -1).numpy()
        categorical = None
        if ex.kind == "tabular":  # the encoder puts category codes last, one column per categorical column
            categorical = np.zeros(x.shape[1], dtype=bool)
            categorical[x.shape[1] - len(folds.make_model().config.cardinalities):] = True
        results.update(baselines(x, ex.labels, categorical, seed))
        for name, (flagged, seconds) in results.items():
            precision, recall, n = score(flagged, flipped)
            rows.setdefault(name, []).append((precision, recall, n, seconds))
            print(f"  {name:<32} precision {precision:.3f}  recall {recall:.3f}  flagged {n:5d}  time {seconds:6.1f} s",
                  flush=True)
        print(f"  (encoding the inputs once: {encode_s:.1f} s, outside the timers)")
    if len(args.seeds) > 1:
        print(f"\nmedians over flip seeds {args.seeds}:")
        for name, vals in rows.items():
            p, r, n, s = np.median(np.array(vals), axis=0)
            print(f"  {name:<32} precision {p:.3f}  recall {r:.3f}  flagged {n:5.0f}  time {s:6.1f} s")
    ours, hgb = np.median(np.array(rows["glassbox audit"]), axis=0), np.median(np.array(rows["cleanlab + HistGradientBoosting"]), axis=0)
    print(f"time ratio glassbox / cleanlab + HistGradientBoosting: {ours[3] / hgb[3]:.2f}")


if __name__ == "__main__":
    main()

"""UCI Adult: the plain `glassbox train` command against gradient-boosted trees and logistic regression.

    python benchmarks/tabular.py                 # seeds 0-4: the goal's 5 runs (about 2 minutes each on 2 busy cores)
    python benchmarks/tabular.py --seeds 0       # one seed, to iterate

Every contender trains on adult.data (32,561 rows) and is scored on the 16,281 rows of adult.test:
- glassbox: `glassbox train adult.data --columns ... --label income --test adult.test --seed S`, nothing else; it
  holds out 10% of adult.data for validation (early stopping), as the trees hold out 10% for theirs;
- scikit-learn HistGradientBoostingClassifier with its defaults (random_state S), categorical columns as pandas
  categories;
- scikit-learn logistic regression on one-hot categorical and standardised numeric columns.
Goal: glassbox's mean test accuracy >= the trees', its mean test NLL no worse, training under 60 s on 2 cores.
Accuracy and NLL are deterministic for a seed; times depend on how busy the machine is.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
ADULT = ROOT.parent / "shared" / "data" / "uci_adult"
COLUMNS = ("age,workclass,fnlwgt,education,education_num,marital,occupation,relationship,race,sex,gain,loss,hours,"
           "country,income")


def glassbox_run(seed: int, out: Path) -> dict:
    """The plain command, as a user types it; its own figures from RUN/summary.json."""
    command = [sys.executable, "-m", "glassbox", "train", str(ADULT / "adult.data"), "--columns", COLUMNS,
               "--label", "income", "--test", str(ADULT / "adult.test"), "--seed", str(seed), "--out", str(out),
               "--quiet"]
    subprocess.run(command, check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    summary = json.loads((out / "summary.json").read_text())
    return {"accuracy": summary["test_accuracy"], "nll": summary["test_loss"], "seconds": summary["train_seconds"]}


def read_adult() -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray]:
    names = COLUMNS.split(",")
    train = pd.read_csv(ADULT / "adult.data", names=names, skipinitialspace=True, na_values="?")
    test = pd.read_csv(ADULT / "adult.test", names=names, skipinitialspace=True, na_values="?", skiprows=1)
    y = (train.pop("income") == ">50K").to_numpy(int)
    y_test = (test.pop("income").str.rstrip(".") == ">50K").to_numpy(int)
    return train, y, test, y_test


def categorical(train: pd.DataFrame, test: pd.DataFrame) -> list[str]:
    """Text columns as pandas categories with the training file's categories (unseen ones become missing)."""
    cols = [c for c in train.columns if not pd.api.types.is_numeric_dtype(train[c])]
    for c in cols:
        kind = pd.CategoricalDtype(sorted(train[c].dropna().unique()))
        train[c], test[c] = train[c].astype(kind), test[c].astype(kind)
    return cols


def score(model, X, y, X_test, y_test) -> dict:
    from sklearn.metrics import accuracy_score, log_loss

    t0 = time.perf_counter()
    model.fit(X, y)
    seconds = time.perf_counter() - t0
    p = model.predict_proba(X_test)
    return {"accuracy": accuracy_score(y_test, p.argmax(1)), "nll": log_loss(y_test, p), "seconds": seconds}


def baselines(seed: int) -> dict:
    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X, y, X_test, y_test = read_adult()
    cats = categorical(X, X_test)
    nums = [c for c in X.columns if c not in cats]
    trees = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed)
    linear = make_pipeline(make_column_transformer(
        (make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")), cats),
        (StandardScaler(), nums)), LogisticRegression(max_iter=2000))
    return {"trees (HGB)": score(trees, X, y, X_test, y_test), "logistic regression": score(linear, X, y, X_test, y_test)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    rows: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            rows.setdefault("glassbox train", []).append(glassbox_run(seed, Path(tmp) / f"seed{seed}"))
            for name, result in baselines(seed).items():
                rows.setdefault(name, []).append(result)
            print(f"seed {seed}: " + "; ".join(f"{n} {r[-1]['accuracy']:.4f} / {r[-1]['nll']:.4f}"
                                                for n, r in rows.items()), flush=True)
    mean = {name: {k: float(np.mean([r[k] for r in results])) for k in ("accuracy", "nll", "seconds")}
            for name, results in rows.items()}
    print(f"\nUCI Adult, test = adult.test (16,281 rows), mean of {len(args.seeds)} seed(s) {args.seeds}")
    print(f"{'model':<22}{'accuracy':>10}{'(min-max)':>18}{'NLL':>9}{'fit s':>9}")
    for name, results in rows.items():
        acc = [r["accuracy"] for r in results]
        print(f"{name:<22}{mean[name]['accuracy']:>10.4f}{f'({min(acc):.4f}-{max(acc):.4f})':>18}"
              f"{mean[name]['nll']:>9.4f}{mean[name]['seconds']:>9.1f}")
    ours, trees = mean["glassbox train"], mean["trees (HGB)"]
    print(f"glassbox / trees: accuracy {ours['accuracy'] / trees['accuracy']:.4f}x, NLL "
          f"{ours['nll'] / trees['nll']:.4f}x (below 1 is better), fit time {ours['seconds'] / trees['seconds']:.1f}x")
    met = ours["accuracy"] >= trees["accuracy"] and ours["nll"] <= trees["nll"] and ours["seconds"] < 60
    print(f"goal (accuracy >= trees, NLL <= trees, training < 60 s): {'met' if met else 'not met'}")


if __name__ == "__main__":
    main()

"""Regression on real tables: the plain `glassbox train` command against scikit-learn's gradient-boosted trees and
ridge regression, in one script.

    python benchmarks/regression.py                  # diabetes over seeds 0-4, Adult hours-per-week on seed 0
    python benchmarks/regression.py --seeds 0 --adult-seeds   # diabetes, one seed only

glassbox trains twice on diabetes (on Adult too with --mlp-on-adult, about 25 s more): the plain command (no model
named: MLP-PLR, the table default), and the same with `--model mlp` (the plain MLP, with its own defaults), to
measure which model suits a regression of what size.

- diabetes: scikit-learn's 442 patients (10 numeric columns; the label, disease progression a year on), saved as a
  CSV; `glassbox train diabetes.csv --label target --seed S` carves its own split (80/10/10).
- Adult hours-per-week: adult.data (32,561 rows) with `hours` as the label and every other column (income too) a
  feature, scored on adult.test (16,281 rows; its income values lose their trailing '.'), `--test` given.
glassbox is the plain command (regression is picked from the label; nothing else given). The baselines fit on every
row glassbox did not test on (its training and validation splits together; the trees hold out their own 10% for
early stopping where scikit-learn's default does, above 10,000 rows) and are scored on glassbox's test rows. Every
figure is scikit-learn's metric on predictions (glassbox's through its saved artifact). Times are fit times (for
glassbox, its training loop); they depend on how busy the machine is.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
ADULT = ROOT.parent / "shared" / "data" / "uci_adult"
COLUMNS = ("age,workclass,fnlwgt,education,education_num,marital,occupation,relationship,race,sex,gain,loss,hours,"
           "country,income").split(",")


def write_tables(folder: Path) -> dict:
    """The two tables as CSV files with a header, and each one's label and test file (None: carved)."""
    from sklearn.datasets import load_diabetes

    load_diabetes(as_frame=True, scaled=False).frame.to_csv(folder / "diabetes.csv", index=False)
    read = dict(names=COLUMNS, skipinitialspace=True, dtype=str)
    pd.read_csv(ADULT / "adult.data", **read).to_csv(folder / "adult_train.csv", index=False)
    test = pd.read_csv(ADULT / "adult.test", skiprows=1, **read)
    test["income"] = test["income"].str.rstrip(".")
    test.to_csv(folder / "adult_test.csv", index=False)
    return {"diabetes": (folder / "diabetes.csv", "target", None),
            "adult hours": (folder / "adult_train.csv", "hours", folder / "adult_test.csv")}


def glassbox_run(data: Path, label: str, test: Path | None, seed: int, out: Path, *flags: str) -> dict:
    """The command as a user types it; the rows it trained, validated and tested on; its test predictions."""
    from glassbox.infer.predictor import Predictor

    command = [sys.executable, "-m", "glassbox", "train", str(data), "--label", label, "--seed", str(seed),
               "--out", str(out), "--quiet", *(["--test", str(test)] if test else []), *flags]
    subprocess.run(command, check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    summary = json.loads((out / "summary.json").read_text())
    assert summary["task"] == "regression", summary["task"]
    table = pd.read_csv(data, dtype=str)
    split = json.loads((out / "split.json").read_text())
    fitted = table.iloc[np.concatenate([split["train"], split["val"]])]
    tested = pd.read_csv(test, dtype=str) if test else table.iloc[split["test"]]
    predictor = Predictor(out / "model")
    pred = predictor.predict_values(tested.drop(columns=[label]))
    return {"fit": fitted, "test": tested, "pred": pred, "seconds": summary["train_seconds"]}


def typed(frame: pd.DataFrame, label: str, categories: dict | None = None) -> tuple[pd.DataFrame, np.ndarray, dict]:
    """Numbers as numbers, text as pandas categories (the fitted rows' categories; '?' missing)."""
    X = frame.drop(columns=[label]).replace("?", np.nan)
    y = frame[label].astype(float).to_numpy()
    categories = categories or {c: sorted(X[c].dropna().unique()) for c in X.columns
                                if pd.to_numeric(X[c], errors="coerce").isna().mean() > 0.5}
    for c in X.columns:
        X[c] = X[c].astype(pd.CategoricalDtype(categories[c])) if c in categories else pd.to_numeric(X[c])
    return X, y, categories


def baselines(fit: pd.DataFrame, test: pd.DataFrame, label: str, seed: int) -> dict:
    import time

    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X, y, categories = typed(fit, label)
    X_test, _, _ = typed(test, label, categories)
    cats = list(categories)
    nums = [c for c in X.columns if c not in cats]
    models = {"trees (HGB)": HistGradientBoostingRegressor(categorical_features="from_dtype", random_state=seed),
              "ridge (RidgeCV)": make_pipeline(make_column_transformer(
                  (make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")), cats),
                  (make_pipeline(SimpleImputer(), StandardScaler()), nums)), RidgeCV(alphas=np.logspace(-3, 3, 13)))}
    out = {}
    for name, model in models.items():
        t0 = time.perf_counter()
        model.fit(X, y)
        out[name] = (model.predict(X_test), time.perf_counter() - t0)
    return out


def metrics(y: np.ndarray, pred: np.ndarray, seconds: float) -> dict:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    return {"rmse": math.sqrt(mean_squared_error(y, pred)), "mae": mean_absolute_error(y, pred),
            "r2": r2_score(y, pred), "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="diabetes seeds")
    parser.add_argument("--adult-seeds", type=int, nargs="*", default=[0], help="Adult hours-per-week seeds")
    parser.add_argument("--mlp-on-adult", action="store_true", help="also train --model mlp on Adult")
    args = parser.parse_args()
    results: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tables = write_tables(Path(tmp))
        for name, seeds in (("diabetes", args.seeds), ("adult hours", args.adult_seeds)):
            data, label, test = tables[name]
            for seed in seeds:
                run = glassbox_run(data, label, test, seed, Path(tmp) / f"{name.replace(' ', '_')}{seed}")
                y = run["test"][label].astype(float).to_numpy()
                results.setdefault((name, "glassbox train"), []).append(metrics(y, run["pred"], run["seconds"]))
                if name != "adult hours" or args.mlp_on_adult:
                    mlp = glassbox_run(data, label, test, seed, Path(tmp) / f"{name.replace(' ', '_')}{seed}mlp",
                                       "--model", "mlp")
                    results.setdefault((name, "  --model mlp"), []).append(metrics(y, mlp["pred"], mlp["seconds"]))
                for model, (pred, seconds) in baselines(run["fit"], run["test"], label, seed).items():
                    results.setdefault((name, model), []).append(metrics(y, pred, seconds))
                print(f"{name} seed {seed}: " + "; ".join(f"{m} RMSE {r[-1]['rmse']:.4g}" for (n, m), r in
                                                          results.items() if n == name), flush=True)
    print(f"\n{'table':<13}{'model':<17}{'seeds':>6}{'RMSE':>9}{'MAE':>9}{'R^2':>8}{'(min-max)':>16}{'fit s':>8}")
    for (name, model), rows in results.items():
        mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
        r2 = [r["r2"] for r in rows]
        print(f"{name:<13}{model:<17}{len(rows):>6}{mean['rmse']:>9.4g}{mean['mae']:>9.4g}{mean['r2']:>8.4f}"
              f"{f'({min(r2):.3f}-{max(r2):.3f})':>16}{mean['seconds']:>8.2f}")
    for name in dict.fromkeys(n for n, _ in results):
        ours, trees = (np.mean([r["rmse"] for r in results[(name, m)]]) for m in ("glassbox train", "trees (HGB)"))
        print(f"{name}: glassbox RMSE / trees RMSE = {ours / trees:.4f}x (below 1 is better)")


if __name__ == "__main__":
    main()

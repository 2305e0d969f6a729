"""Leakage in tables: the same record in two splits told from different records that share their values
(glassbox/audit/chance.py), on real public tables split as a new user splits them, and on UCI Adult with training rows
copied into its test file."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from glassbox.audit.chance import Z, matches
from glassbox.cli import main
from tests.conftest import shared

ADULT_COLUMNS = ["age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
                 "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week", "native_country",
                 "income"]


def reference_counts(train_csv, test_csv, label: str) -> dict:
    """The matches counted by pandas alone: each test row's feature values looked up among the training rows'."""
    train, test = (pd.read_csv(p, dtype=str, keep_default_na=False).drop(columns=[label]) for p in (train_csv, test_csv))
    columns = list(train.columns)
    seen = train.groupby(columns).size().rename("times").reset_index()
    in_train = test.merge(seen, on=columns, how="left")["times"].fillna(0)
    twice = train.merge(seen, on=columns, how="left")["times"] == 2  # training rows equal to exactly one other
    return {"matched": int((in_train >= 1).sum()), "rare_matched": int((in_train == 1).sum()),
            "rare_expected": len(test) * twice.mean()}


def test_a_coarse_survey_table_split_80_20_trains_without_force(tmp_path):
    """statsmodels' Fair affairs survey (6,366 wives; ratings, years, counts), cut 80/20 at random: 465 test rows
    equal a training row, which stopped the plain command before; they are what independent records give."""
    fair = pytest.importorskip("statsmodels.datasets").fair.load_pandas().data
    order = np.random.default_rng(0).permutation(len(fair))
    fair.iloc[order[:5092]].to_csv(tmp_path / "train.csv", index=False)
    fair.iloc[order[5092:]].to_csv(tmp_path / "test.csv", index=False)
    out = tmp_path / "run"
    assert main(["train", str(tmp_path / "train.csv"), "--label", "rate_marriage", "--test", str(tmp_path / "test.csv"),
                 "--max-steps", "5", "--quiet", "--out", str(out)]) == 0
    leak = next(f for f in json.loads((out / "audit.json").read_text())["findings"] if f["name"] == "leakage")
    ref = reference_counts(tmp_path / "train.csv", tmp_path / "test.csv", "rate_marriage")
    s = leak["stats"]
    assert (leak["severity"], leak["count"], s["matched"], s["rare_matched"]) == ("info", 465, 465, 184)
    assert (s["matched"], s["rare_matched"]) == (ref["matched"], ref["rare_matched"])
    assert s["rare_expected"] == pytest.approx(ref["rare_expected"]) == pytest.approx(203.7, abs=0.05)
    assert s["rare_matched"] < s["rare_upper"] and s["common_matched"] == 281
    assert leak["title"] == "Shared values across splits (not leakage)"
    assert ("465 rows of the test file are equal, value for value, to a row in training" in leak["message"]
            and "about 203.7 such matches" in leak["message"] and "not the same record" in leak["message"])


def test_adult_with_training_rows_copied_into_its_test_file_still_stops(tmp_path, capsys):
    """UCI Adult (its first 8,000 training rows, and 4,000 rows of its own test file, which share a few rows with them
    as chance gives): 80 training rows copied into the test file (2%) stop the run, and the audit counts about that
    many copies beyond chance."""
    def read(name, skip, rows):
        return pd.read_csv(shared("uci_adult", name), header=None, names=ADULT_COLUMNS, skipinitialspace=True,
                           skiprows=skip, nrows=rows, dtype=str, keep_default_na=False)
    train, test = read("adult.data", 0, 8000), read("adult.test", 1, 4000)
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "own.csv", index=False)
    copied = train.iloc[np.random.default_rng(1).choice(len(train), 80, replace=False)]
    pd.concat([test, copied], ignore_index=True).to_csv(tmp_path / "leaky.csv", index=False)
    args = ["audit", str(tmp_path / "train.csv"), "--label", "income", "--no-label-errors", "--json", "--test"]
    assert main([*args, str(tmp_path / "own.csv")]) == 0
    leak = next(f for f in json.loads(capsys.readouterr().out)["findings"] if f["name"] == "leakage")
    s, ref = leak["stats"], reference_counts(tmp_path / "train.csv", tmp_path / "own.csv", "income")
    assert leak["severity"] == "info" and (s["matched"], s["rare_matched"]) == (ref["matched"], ref["rare_matched"])
    assert s["rare_expected"] == pytest.approx(ref["rare_expected"]) and s["rare_matched"] <= s["rare_upper"]
    assert main([*args, str(tmp_path / "leaky.csv")]) == 1  # an error: training stops without --force
    leak = next(f for f in json.loads(capsys.readouterr().out)["findings"] if f["name"] == "leakage")
    s, ref = leak["stats"], reference_counts(tmp_path / "train.csv", tmp_path / "leaky.csv", "income")
    assert leak["severity"] == "error" and (s["matched"], s["rare_matched"]) == (ref["matched"], ref["rare_matched"])
    assert s["rare_expected"] == pytest.approx(ref["rare_expected"])
    assert 80 - 3 * np.sqrt(s["rare_expected"] + 1) < s["excess"] < 80 + 3 * np.sqrt(s["rare_expected"] + 1)
    assert leak["count"] == s["rare_matched"] and "are the same record in two splits" in leak["message"]


def test_the_chance_expectation_against_the_exact_count_of_a_known_population():
    """Values drawn from a known distribution (the coarse columns of a survey, 6 categories each skewed): the expected
    number of later rows equal to a once-seen earlier row is exactly n' sum_v p_v n p_v (1 - p_v)^(n-1). The
    leave-one-out estimate averages to it, and the observed counts spread around it as the bound assumes."""
    rng = np.random.default_rng(0)
    sizes = (2, 3, 4, 5, 6, 8)
    p = np.ones(1)
    for k in sizes:
        col = np.r_[0.5, np.full(k - 1, 0.5 / (k - 1))]
        p = np.outer(p, col).ravel()
    n, n_later = 2000, 500
    exact = n_later * np.sum(p * n * p * (1 - p) ** (n - 1))
    part = np.r_[np.zeros(n, int), np.ones(n_later, int)]
    observed, expected, z = [], [], []
    for _ in range(400):
        m = matches(rng.choice(len(p), n + n_later, p=p), part, 2)
        observed.append(m.observed)
        expected.append(m.expected)
        z.append((m.observed - m.expected) / ((m.upper - m.expected) / Z))
    assert np.mean(expected) == pytest.approx(exact, rel=0.02) and np.mean(observed) == pytest.approx(exact, rel=0.02)
    assert 0.85 < np.std(z) < 1.15 and np.mean(np.array(z) > Z) <= 0.01

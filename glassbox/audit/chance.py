"""Leakage in a table: the same record in two splits, told from different records that share their values.

In a table of a few categories and rounded numbers (a survey: age in years, 5-point ratings, yes/no answers) two
people often give the very same answers, so a test row can equal a training row without being that row. That is not
leakage: the best answer for those values is the same whether or not the model saw the other record. What leaks is a
record that is in both splits, and what gives one away is a test row equal to a training row whose values occur
nowhere else in training: values that single out one record.

How many such matches would independent records give? Check every training row against the others (leave one out):
the share of training rows that equal exactly one other row is what a fresh record drawn like them would show (the
Good-Turing estimate: 2 N2 / n, N2 the number of value combinations seen exactly twice). So the expected count in a
later split of n' rows is n' 2 N2 / n. The observed count against it, with a one-sided 99.9% bound from the binomial
spread of the later split and the estimate's own noise, says whether there are more than chance gives. Rows whose values occur several times in training are common profiles and never counted as copies;
rows of free text, IDs or many continuous columns occur once each, so N2 is near 0 and every copy stands out.

The same holds for near copies (a table's: equal after standardising and rounding): the rows that match an earlier
row only nearly, against training rows that nearly match exactly one other.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Z = 3.09          # one-sided 99.9% normal bound: more matches than this are beyond chance
LEVEL = 0.999
# Var(observed - expected) = binomial + PAIRS_SPREAD x pairs x (n'/n)^2: 2.8 to 3.0 measured with both splits drawn
# independently from real coarse tables and synthetic ones (benchmarks/leakage_tables.py --calibration), against 2
# for the Poisson spread of N2 alone; the matches of the later split vary with which values the earlier one holds.
PAIRS_SPREAD = 3.0


@dataclass
class Matches:
    """Rows of the later splits that match a row of an earlier one, against what independent records would give."""
    matched: np.ndarray      # (R,) bool: the row's key occurs in an earlier split (and, for near copies, not exactly)
    rare: np.ndarray         # (R,) bool: ... where it occurs exactly once
    count: np.ndarray        # (R,) how often the row's key occurs in the earlier splits (0 for the first split)
    expected: float          # rare matches that independent records drawn like the earlier rows would give
    expected_matched: float  # all matches they would give
    upper: float             # the one-sided LEVEL bound of the rare matches under chance

    @property
    def observed(self) -> int:
        return int(self.rare.sum())

    @property
    def beyond_chance(self) -> bool:
        return self.observed > self.upper

    @property
    def excess(self) -> float:
        return self.observed - self.expected

    def stats(self) -> dict:
        common = self.matched & ~self.rare
        return {"matched": int(self.matched.sum()), "matched_expected": self.expected_matched,
                "rare_matched": self.observed, "rare_expected": self.expected, "rare_upper": self.upper,
                "level": LEVEL, "excess": self.excess, "common_matched": int(common.sum()),
                "common_median_count": float(np.median(self.count[common])) if common.any() else None}


def matches(key: np.ndarray, part: np.ndarray, n_parts: int, exact: np.ndarray | None = None) -> Matches:
    """key: each row's code (exact content, or near-copy group); part: each row's split, in order (0 = train).
    exact: with near-copy keys, each row's exact code: rows whose exact content occurs earlier are not near matches.

    A row of split p is compared with the rows of splits 0..p-1; the expectation for split p comes from those rows,
    each checked against the others."""
    R = len(key)
    matched, rare, count = np.zeros(R, bool), np.zeros(R, bool), np.zeros(R, np.int64)
    expected = expected_matched = variance = 0.0
    for p in range(1, n_parts):
        earlier, here = part < p, np.flatnonzero(part == p)
        n_ref, n_here = int(earlier.sum()), len(here)
        if not n_ref or not n_here:
            continue
        in_ref = np.bincount(key[earlier], minlength=key.max() + 1)
        new = np.ones(R, bool) if exact is None else np.bincount(exact[earlier], minlength=exact.max() + 1)[exact] == 0
        count[here] = in_ref[key[here]]
        matched[here] = (count[here] >= 1) & new[here]
        rare[here] = (count[here] == 1) & new[here]
        # Each earlier row against the others: it equals exactly one other when its key occurs twice (and, for near
        # copies, its exact content once: the other is a near copy, not the same content).
        ref_count = in_ref[key[earlier]]
        alone = np.ones(n_ref, bool) if exact is None else np.bincount(exact[earlier])[exact[earlier]] == 1
        pairs = int(((ref_count == 2) & alone).sum())           # 2 N2
        share = pairs / n_ref
        expected += n_here * share
        expected_matched += n_here * float(((ref_count >= 2) & alone).mean())
        # the binomial spread of the later split, and the spread of the estimate: the Poisson spread of N2 (Var 2 N2
        # = 2 pairs) and its covariance with the matches, together PAIRS_SPREAD x pairs (at least one pair, so that
        # none seen is not read as no chance at all)
        variance += n_here * share * (1 - share) + (n_here / n_ref) ** 2 * PAIRS_SPREAD * max(pairs, 1)
    return Matches(matched, rare, count, expected, expected_matched, expected + Z * float(np.sqrt(variance)))

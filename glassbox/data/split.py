"""Seeded, stratified, duplicate-aware train/validation/test split.

Identical examples (same content key) always land in the same split, so one example can never
be both trained on and tested on."""
from __future__ import annotations

import numpy as np

from glassbox.errors import UserError


def split_indices(keys: list[str], labels: np.ndarray, fractions=(0.8, 0.1, 0.1), seed: int = 0,
                  names=("train", "val", "test")) -> dict[str, np.ndarray]:
    """Assign whole groups of identical examples to splits, stratified by each group's label."""
    labels = np.asarray(labels)
    fractions = np.asarray(fractions, dtype=float)
    fractions = fractions / fractions.sum()
    _, group_of = np.unique(np.asarray(keys, dtype=object).astype(str), return_inverse=True)
    n_groups = group_of.max() + 1
    size = np.bincount(group_of, minlength=n_groups)
    # a group's stratum is its most common label (groups with conflicting labels are rare)
    first = np.full(n_groups, -1)
    first[group_of[::-1]] = np.arange(len(labels))[::-1]
    stratum = labels[first]
    rng = np.random.default_rng(seed)
    where = np.zeros(n_groups, dtype=np.int64)
    for c in np.unique(stratum):
        groups = np.flatnonzero(stratum == c)
        groups = groups[rng.permutation(len(groups))]
        # fill the smaller splits first (val, test), so rare classes reach every split
        bounds = np.cumsum(size[groups]) / size[groups].sum()
        cut = np.cumsum(fractions[::-1])
        order = np.searchsorted(cut, bounds - 1e-12, side="left").clip(max=len(fractions) - 1)
        where[groups] = (len(fractions) - 1) - order
    assign = where[group_of]
    out = {name: np.flatnonzero(assign == i) for i, name in enumerate(names)}
    for name in names[:2]:
        if len(out[name]) == 0:
            if n_groups < 10:  # identical examples stay together, so few distinct ones cannot be split
                raise UserError(f"the {len(labels)} examples hold only {n_groups} distinct input(s) (identical ones "
                                f"stay in one split), too few for a {name} split; check that the feature or text "
                                f"columns are filled in and are not the label itself")
            raise UserError(
                f"too few examples for a {name} split ({len(labels)} in all); add examples or change the split fractions"
            )
    return out

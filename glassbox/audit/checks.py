"""Checks on the shape of the data: class balance, classes and groups too small to measure, empty or
missing values, texts of extreme length, and ID-like table columns. Each returns one Finding. The checks of the
inputs themselves apply as the kind of the examples says (DataKind.audit_checks)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from glassbox.audit.report import Finding, flagged_rows
from glassbox.data.examples import Examples
from glassbox.data.kinds import KINDS
from glassbox.data.tabular import MISSING, id_like_columns

RARE_SHARE = 0.05  # a class below this share of the examples makes accuracy a misleading score
MIN_CLASS = 30  # fewer examples than this in a class: a 10% validation split holds too few to measure it
MIN_GROUP = 30  # fewer examples than this in a group: per-group metrics for it are mostly noise
LONG_FACTOR = 20  # a text longer than this many times the median length, and ...
LONG_CHARS = 1000  # ... longer than this many characters, is flagged as extremely long
SHORT_CHARS = 3  # a non-empty text shorter than this is flagged as extremely short


def class_balance(ex: Examples) -> Finding:
    counts = np.bincount(ex.labels, minlength=len(ex.classes))
    share = counts / max(1, counts.sum())
    rare, common = int(share.argmin()), int(share.argmax())
    stats = {"counts": dict(zip(ex.classes, counts.tolist())), "rarest_class": ex.classes[rare],
             "rarest_share": float(share[rare]), "majority_share": float(share[common])}
    rare_classes = np.flatnonzero(share < 0.5 / len(ex.classes))  # under half the share of balanced classes
    msg = (f"the rarest class, '{ex.classes[rare]}', is {share[rare]:.1%} of the examples ({counts[rare]:,} of "
           f"{counts.sum():,}); always answering '{ex.classes[common]}' would already be right "
           f"{share[common]:.1%} of the time, so judge the model by per-class recall and F1, not accuracy.")
    severity = "warning" if share[rare] < RARE_SHARE else "info"
    if not len(rare_classes):
        msg = f"classes are balanced: the rarest, '{ex.classes[rare]}', is {share[rare]:.1%} of the examples."
    return Finding("class_balance", "Class balance", severity, len(rare_classes), msg, pd.DataFrame(), stats)


def small_classes(ex: Examples, min_count: int = MIN_CLASS) -> Finding:
    counts = np.bincount(ex.labels, minlength=len(ex.classes))
    small = np.flatnonzero(counts < min_count)
    rows = np.flatnonzero(np.isin(ex.labels, small))
    stats = {"min_count": min_count, "small": {ex.classes[k]: int(counts[k]) for k in small}}
    if not len(small):
        return Finding("small_classes", "Classes too small to validate", "info", 0,
                       f"every class has at least {min_count} examples.", flagged_rows(ex, rows[:0]), stats)
    listed = ", ".join(f"'{ex.classes[k]}' ({counts[k]})" for k in small[:5])
    severity = "error" if counts[small].min() < 3 else "warning"  # under 3 it cannot reach every split
    msg = (f"{len(small)} classes have fewer than {min_count} examples: {listed}. A 10% validation split holds "
           f"only a few of each, too few to measure them; collect more examples or merge those classes.")
    return Finding("small_classes", "Classes too small to validate", severity, len(small), msg,
                   flagged_rows(ex, rows), stats)


def missing_values(ex: Examples) -> Finding:
    """Empty texts, or missing cells in tabular rows (empty, '?', 'NA', ...)."""
    kind = KINDS[ex.kind]
    if "empty_texts" in kind.audit_checks:
        empty = np.flatnonzero(np.fromiter((not t.strip() for t in ex.inputs), dtype=bool, count=len(ex)))
        stats = {"empty_texts": len(empty)}
        if not len(empty):
            return Finding("missing_values", "Empty texts", "info", 0, "no text is empty.",
                           flagged_rows(ex, empty), stats)
        msg = (f"{len(empty):,} texts are empty ({len(empty) / len(ex):.1%}): the model can only guess the most "
               f"common label for them. Fill them in or remove those rows.")
        return Finding("missing_values", "Empty texts", "warning", len(empty), msg, flagged_rows(ex, empty), stats)
    if "missing_values" not in kind.audit_checks:
        return Finding("missing_values", "Missing values", "info", 0, kind.never_missing)
    missing = ex.inputs.apply(lambda col: col.astype(str).str.strip().str.lower().isin(MISSING))
    per_col = missing.sum().sort_values(ascending=False)
    per_col = per_col[per_col > 0]
    rows = np.flatnonzero(missing.to_numpy().any(axis=1))
    stats = {"rows_with_missing": len(rows), "by_column": {str(k): int(v) for k, v in per_col.items()}}
    if not len(rows):
        return Finding("missing_values", "Missing values", "info", 0, "no value is missing.",
                       flagged_rows(ex, rows), stats)
    cols = ", ".join(f"'{k}' ({v:,})" for k, v in per_col.head(5).items())
    msg = (f"{len(rows):,} rows ({len(rows) / len(ex):.1%}) have missing values, in {len(per_col)} columns: {cols}. "
           f"The encoder gives them a 'missing' value of their own; if missing means something, keep it, "
           f"otherwise fill them in.")
    return Finding("missing_values", "Missing values", "warning", len(rows), msg,
                   flagged_rows(ex, rows, missing_in=[", ".join(missing.columns[m]) for m in missing.to_numpy()[rows]]),
                   stats)


def extreme_lengths(ex: Examples) -> Finding:
    """Texts far longer than the rest (pasted documents, joined rows) or almost empty."""
    if "extreme_lengths" not in KINDS[ex.kind].audit_checks:
        return Finding("extreme_lengths", "Extreme lengths", "info", 0, "only checked for texts.")
    lengths = np.fromiter(map(len, ex.inputs), dtype=np.int64, count=len(ex))
    stripped = np.fromiter((len(t.strip()) for t in ex.inputs), dtype=np.int64, count=len(ex))
    median = float(np.median(lengths))
    long_ = np.flatnonzero((lengths > LONG_FACTOR * median) & (lengths > LONG_CHARS))
    short = np.flatnonzero((stripped > 0) & (stripped < SHORT_CHARS))
    rows = np.r_[long_[np.argsort(-lengths[long_], kind="stable")], short]
    stats = {"median_chars": median, "p99_chars": float(np.percentile(lengths, 99)), "max_chars": int(lengths.max()),
             "long": len(long_), "short": len(short)}
    flagged = flagged_rows(ex, rows, chars=lengths[rows])
    parts = [f"median {median:.0f} characters, longest {lengths.max():,}"]
    if len(long_):
        parts.append(f"{len(long_):,} texts are over {LONG_FACTOR}x the median and {LONG_CHARS:,} characters: "
                     f"pasted documents or joined rows? The model reads only their beginning")
    if len(short):
        parts.append(f"{len(short):,} texts have under {SHORT_CHARS} characters and carry little to learn from")
    severity = "warning" if len(long_) else "info"
    return Finding("extreme_lengths", "Extreme lengths", severity, len(rows), "; ".join(parts) + ".", flagged, stats)


def group_coverage(ex: Examples, groups: dict[str, list] | None, min_count: int = MIN_GROUP) -> Finding | None:
    """Count and label rate per group value; groups too small for per-group metrics to mean anything."""
    groups = groups if groups is not None else ex.groups
    if not groups:
        return None
    table, small_rows, small_names = {}, [], []
    for col, values in groups.items():
        frame = pd.DataFrame({"group": pd.Series(values, dtype=object).astype(str), "label": ex.labels})
        counts = frame.groupby("group")["label"].value_counts().unstack(fill_value=0)
        counts = counts.reindex(columns=range(len(ex.classes)), fill_value=0)
        size = counts.sum(axis=1).sort_values(ascending=False)
        table[col] = {g: {"count": int(size[g]), "label_rates": {ex.classes[k]: float(counts.loc[g, k] / size[g])
                                                                  for k in range(len(ex.classes))}}
                      for g in size.index}
        for g in size.index[size.to_numpy() < min_count]:
            small_names.append(f"{col}='{g}' ({size[g]})")
            small_rows.append(np.flatnonzero(frame["group"].to_numpy() == g))
    rows = np.concatenate(small_rows) if small_rows else np.zeros(0, dtype=np.int64)
    rare = ex.classes[int(np.bincount(ex.labels).argmin())]
    summary = "; ".join(
        f"'{col}': {len(t)} groups, '{rare}' rate " + ", ".join(f"{g} {v['label_rates'][rare]:.1%}" for g, v in
                                                               list(t.items())[:6]) for col, t in table.items())
    stats = {"groups": table, "min_count": min_count, "small": small_names}
    if not small_names:
        return Finding("group_coverage", "Group coverage", "info", 0,
                       f"{summary}. Every group has at least {min_count} examples.", flagged_rows(ex, rows), stats)
    msg = (f"{summary}. {len(small_names)} groups have fewer than {min_count} examples "
           f"({', '.join(small_names[:5])}): their per-group metrics will be mostly noise; collect more or merge them.")
    return Finding("group_coverage", "Group coverage", "warning", len(small_names), msg,
                   flagged_rows(ex, rows, group=[n for n, r in zip(small_names, small_rows) for _ in r]), stats)


def id_columns(ex: Examples) -> Finding | None:
    """Table columns that name rows rather than describe them (data/tabular.py: id_like_columns); the table
    encoder leaves them out. None for other kinds of data."""
    if "id_columns" not in KINDS[ex.kind].audit_checks:
        return None
    found = id_like_columns(ex.inputs)
    stats = {"columns": found}
    if not found:
        return Finding("id_columns", "ID-like columns", "info", 0, "no column looks like a row ID.", pd.DataFrame(), stats)
    msg = "; ".join(f"column '{name}' looks like an ID ({why})" for name, why in found.items()) + (
        ": it names rows rather than describing them, so nothing learned from it carries over to new rows; "
        "the model leaves it out.")
    return Finding("id_columns", "ID-like columns", "warning", len(found), msg, pd.DataFrame(), stats)

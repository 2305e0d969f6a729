"""Copies: exact duplicates, near duplicates, leakage between splits, and identical inputs with different labels.

Everything works on integer codes of the examples' content keys (one pandas factorize), so a million
examples cost a few vector operations. The user's test file, when given, is appended after the
training examples, and each row carries the split ("part") it belongs to. The kind of the examples
(glassbox/data/kinds) finds their near copies and gives the words: what they are called, when two are the same.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from glassbox.audit import chance
from glassbox.audit.report import Finding, flagged_rows
from glassbox.data.examples import Examples
from glassbox.data.kinds import KINDS
from glassbox.data.minhash import THRESHOLD


@dataclass
class Contents:
    """Every row's content code, part and near-duplicate group: the training examples, then the test file."""

    parts: list[tuple[str, Examples, np.ndarray]]  # (part name, its Examples, its rows there), in order
    codes: np.ndarray  # (R,) code of each row's content key; equal codes = identical content
    part: np.ndarray  # (R,) index into `parts` of each row
    row: np.ndarray  # (R,) index of each row in its own Examples
    first: np.ndarray  # (C,) position in these arrays of each code's first row
    near: np.ndarray  # (C,) near-duplicate group of each code, -1 for none
    similarity: np.ndarray  # (C,) near-copy score (DataKind.near_copy_score), NaN where the kind has none


def contents(examples: Examples, split: dict | None = None, test: Examples | None = None,
             threshold: float = THRESHOLD, near: bool = True) -> Contents:
    split = split or {"train": np.arange(len(examples))}
    parts = [(name, examples, np.asarray(rows, dtype=np.int64)) for name, rows in split.items()]
    if test is not None:
        parts.append(("test file", test, np.arange(len(test))))
    keys = pd.Series([ex.keys[i] for _, ex, rows in parts for i in rows], dtype=object)
    codes, _ = pd.factorize(keys)
    part = np.repeat(np.arange(len(parts)), [len(rows) for _, _, rows in parts])
    row = np.concatenate([rows for _, _, rows in parts])
    _, first = np.unique(codes, return_index=True)
    n_codes = len(first)
    near_ids, similarity = np.full(n_codes, -1), np.full(n_codes, np.nan)
    if near:  # each distinct content once, from the part it first appears in (codes number them in that order)
        pieces = [(ex, row[first][part[first] == p_idx]) for p_idx, (_, ex, _) in enumerate(parts)]
        near_ids, similarity = KINDS[examples.kind].near_copy_groups(pieces, threshold)
    return Contents(parts, codes, part, row, first, near_ids, similarity)


SPLIT_GROUP_MAX = (20, 0.01)  # a near-copy group is kept in one split up to max(20 examples, 1% of them)


def split_keys(examples: Examples, threshold: float = THRESHOLD) -> list[str]:
    """Each example's content key, except that near copies (the near-duplicate groups below) share one key:
    split on these and a near copy never lands in another split than the example it copies.

    A group larger than SPLIT_GROUP_MAX (templated texts such as "see you at 3", "see you at 4", ... chain
    into one) is not kept together: it would unbalance or empty a split. Its near copies may then cross
    splits, and the audit's near-leakage check says so."""
    c = contents(examples, threshold=threshold)
    group = c.near[c.codes]  # one part holding every row in order: position i is row i
    sizes = np.bincount(group[group >= 0], minlength=1)
    limit = max(SPLIT_GROUP_MAX[0], SPLIT_GROUP_MAX[1] * len(examples))
    return [key if g < 0 or sizes[g] > limit else f"\x00near copies {g}"
            for key, g in zip(examples.keys, group.tolist())]


def exact_duplicates(ex: Examples, c: Contents) -> Finding:
    """Rows whose content key repeats an earlier row's (within the training examples)."""
    mine = c.part < _n_own_parts(c)
    codes, rows = c.codes[mine], c.row[mine]
    order = np.argsort(rows, kind="stable")
    codes, rows = codes[order], rows[order]
    _, first_pos, inverse = np.unique(codes, return_index=True, return_inverse=True)
    sizes = np.bincount(inverse)
    repeat = np.flatnonzero(first_pos[inverse] != np.arange(len(codes)))
    repeat = repeat[np.lexsort((rows[repeat], inverse[repeat], -sizes[inverse[repeat]]))]
    kind = KINDS[ex.kind]
    n, distinct, what = len(codes), len(first_pos), kind.counted
    copy_of = rows[first_pos[inverse[repeat]]]
    flagged = flagged_rows(ex, rows[repeat], copy_of_row=copy_of,
                           copy_of_line=[ex.lines[i] for i in copy_of] if ex.lines else copy_of + 1,
                           copies=sizes[inverse[repeat]])
    stats = {"examples": n, "distinct": distinct, "repeats": n - distinct,
             "groups_with_copies": int((sizes >= 2).sum()), "largest_group": int(sizes.max(initial=0))}
    how, as_read = kind.identical, kind.distinct_as_read(ex)
    if as_read is not None:
        stats["distinct_as_read"] = as_read
        how += f" ({as_read:,} distinct exactly as read)"
    if n == distinct:
        return Finding("exact_duplicates", "Exact duplicates", "info", 0,
                       f"all {n:,} {what} are distinct {how.split(' (')[0]}.", flagged, stats)
    msg = (f"{n:,} {what} hold only {distinct:,} distinct ones {how}: {n - distinct:,} repeat an earlier one, "
           f"in {stats['groups_with_copies']:,} groups (the largest has {stats['largest_group']:,} copies). "
           f"The split keeps copies together, so none is both trained and tested on, but repeats weigh more "
           f"in training and in the scores; remove them unless the repetition is real.")
    return Finding("exact_duplicates", "Exact duplicates", "warning", n - distinct, msg, flagged, stats)


def near_duplicates(ex: Examples, c: Contents, threshold: float = THRESHOLD) -> Finding:
    """Distinct training contents that are near copies of another, as the kind finds them (DataKind.near_copy_groups:
    MinHash for texts, rounding for rows, perceptual hashes and pixel correlation for images)."""
    kind = KINDS[ex.kind]
    in_train = np.zeros(len(c.first), dtype=bool)
    in_train[c.codes[c.part < _n_own_parts(c)]] = True
    group = np.where(in_train, c.near, -1)
    codes = np.flatnonzero(group >= 0)
    codes = codes[np.bincount(group[codes])[group[codes]] >= 2]  # groups left with 2+ training contents
    _, head_pos = np.unique(group[codes], return_index=True)
    head = codes[head_pos][np.searchsorted(group[codes][head_pos], group[codes])]
    extra = codes[codes != head]
    sizes = np.bincount(group[codes])
    extra = extra[np.lexsort((extra, -_nan0(c.similarity[extra]), -sizes[group[extra]]))]
    rows, head_rows = c.row[c.first[extra]], c.row[c.first[head[np.searchsorted(codes, extra)]]]
    method, score = kind.near_copy_method(threshold), kind.near_copy_score(threshold)
    extras = {"near_row": head_rows, "near_line": [ex.lines[i] for i in head_rows] if ex.lines else head_rows + 1}
    if score is not None:
        extras[score[0]] = c.similarity[extra]
    if kind.shows_copied_input:
        extras["near_input"] = kind.show_inputs(ex, head_rows)
    differ = ex.labels[rows] != ex.labels[head_rows]
    extras["near_label"] = np.asarray(ex.classes, dtype=object)[ex.labels[head_rows]]
    flagged = flagged_rows(ex, rows, **extras)
    n_groups = len(head_pos)
    stats = {"groups": n_groups, "near_copies": len(extra), "labels_differ": int(differ.sum()),
             "threshold": score[1] if score is not None else None}
    if not len(extra):
        return Finding("near_duplicates", "Near duplicates", "info", 0,
                       f"no {kind.counted} are near copies of another ({method}).", flagged, stats)
    msg = (f"{len(extra):,} {kind.counted} are near copies of another, in {n_groups:,} groups, {method}: they differ "
           f"only by small edits. glassbox's split keeps each group in one split, so they cannot flatter the test "
           f"score, but each group weighs as many examples in training; merge or remove those that are the same example.")
    if differ.any():
        msg += (f" {int(differ.sum()):,} of them carry another label than the {kind.counted[:-1]} they copy: one of "
                f"each such pair is likely mislabelled.")
    return Finding("near_duplicates", "Near duplicates", "warning", len(extra), msg, flagged, stats)


LEAK_ERROR_SHARE = 0.01  # copies across splits above this share of the later splits are an error


def leakage(c: Contents) -> list[Finding]:
    """The same (error above 1% of the later splits, else warning) or nearly the same (warning) content
    in more than one split. Where different examples can share their content by chance (a table's few distinct
    values: DataKind.chance_matches), only the matches beyond what independent examples would give count (chance.py)."""
    if len(c.parts) < 2:
        return []
    if KINDS[c.parts[0][1].kind].chance_matches:
        return _leakage_beyond_chance(c)
    # Each content's home: its earliest part (train < val < test < test file) and its first row there.
    home_part = c.part[c.first]
    exact = np.flatnonzero(c.part > home_part[c.codes])
    # Each near group's home: the earliest home part among its contents, and that content's first row.
    by_group = pd.DataFrame({"group": c.near, "part": home_part, "pos": c.first})
    by_group = by_group[by_group["group"] >= 0].sort_values(["group", "part", "pos"]).drop_duplicates("group")
    by_group = by_group.set_index("group")
    # A near leak: a content's first row whose near group has its home in an earlier part.
    firsts = c.first[c.near >= 0]
    group_of = c.near[c.codes[firsts]]
    near = firsts[c.part[firsts] > by_group["part"].reindex(group_of).to_numpy()]
    near_home = by_group["pos"].reindex(c.near[c.codes[near]]).to_numpy()
    # A few copies in a large test set bias the score by less than its noise: a warning. Beyond 1% of the later
    # splits the test score is not to be trusted.
    severity = "error" if len(exact) > LEAK_ERROR_SHARE * max(_later(c), 1) else "warning"
    what = "the same content appears"
    return [_leak_finding(c, exact, c.first[c.codes[exact]], "leakage", "Leakage: same example in two splits",
                          severity, _leak_message(c, exact, what), {}),
            _leak_finding(c, np.sort(near), near_home[np.argsort(near)], "near_leakage",
                          "Leakage: near copies across splits", "warning",
                          _leak_message(c, near, "a near copy of an example appears"), {})]


def _leakage_beyond_chance(c: Contents) -> list[Finding]:
    """Exact and near matches across splits, each against what independent examples would give (chance.py)."""
    n_parts = len(c.parts)
    exact = chance.matches(c.codes, c.part, n_parts)
    near_key = np.where(c.near >= 0, c.near, c.near.max(initial=-1) + 1 + np.arange(len(c.near)))[c.codes]
    near = chance.matches(near_key, c.part, n_parts, exact=c.codes)
    later = _later(c)
    if not exact.beyond_chance:
        severity = "info"
    else:
        severity = "error" if exact.excess > LEAK_ERROR_SHARE * max(later, 1) else "warning"
    findings = []
    for name, m, sev, what in (("leakage", exact, severity, "exact"),
                               ("near_leakage", near, "warning" if near.beyond_chance else "info", "near")):
        pos = np.flatnonzero(m.matched)
        pos = pos[np.lexsort((pos, ~m.rare[pos]))]  # rows matching a once-seen row (the likely copies) first
        # the earlier row each matches: the first row of its content (exact), or of its near group (near)
        # (rows are in split order, so a key's first row is in the earliest split that holds it)
        key = c.codes if what == "exact" else near_key
        keys, first = np.unique(key, return_index=True)
        other = first[np.searchsorted(keys, key[pos])]
        shared = m.matched.any() and not m.beyond_chance
        title = {("exact", False): "Leakage: same example in two splits",
                 ("near", False): "Leakage: near copies across splits",
                 ("exact", True): "Shared values across splits (not leakage)",
                 ("near", True): "Near-equal values across splits (not leakage)"}[what, shared]
        findings.append(_leak_finding(c, pos, other, name, title, sev, chance_message(c, m, what, sev),
                                      {"in_earlier_splits": m.count[pos]}, m.observed if m.beyond_chance else None,
                                      m.stats()))
    return findings


def chance_message(c: Contents, m: chance.Matches, what: str, severity: str) -> str:
    """What the matches across splits are, with the counts: copies beyond chance, or shared values."""
    kind = KINDS[c.parts[0][1].kind]
    s = m.stats()
    if not s["matched"]:
        return f"no content of one split appears {'' if what == 'exact' else 'nearly '}in another " \
               f"({', '.join(n for n, _, _ in c.parts)})."
    two = len(c.parts) == 2  # the training examples and one later split (the test file)
    later = f"the {c.parts[1][0]}" if two else "a later split"
    earlier = "training" if two else "the earlier splits"
    how = "equal, value for value, to" if what == "exact" else f"nearly equal ({kind.near_copy_method(0)}) to"
    where = "" if two else " (" + ", ".join(f"{k}: {v:,}" for k, v in _by_split(c, m.matched).items()) + ")"
    chance_words = (f"independent {kind.counted} drawn like those in {earlier} (each checked against the others) "
                    f"would give about {s['rare_expected']:.1f} such matches, {LEVEL_WORDS} at most {s['rare_upper']:.1f}")
    common = (f"{_n(s['common_matched'], kind)} share values that occur several times in {earlier} "
              f"({s['common_median_count']:g} times on the median): common profiles, which different records share"
              if s["common_matched"] else "")
    if m.beyond_chance:
        text = (f"{_n(s['rare_matched'], kind)} of {later}{where} {'is' if s['rare_matched'] == 1 else 'are'} {how} a "
                f"row that occurs only once in {earlier}; {chance_words}. So about {s['excess']:,.0f} are the same "
                f"record in two splits")
        if what == "exact" and severity == "error":
            text += (": the model is tested on what it was trained on, so test scores overstate it. Remove them "
                     "from the later split")
        elif what == "exact":
            text += (f": under {LEAK_ERROR_SHARE:.0%} of the later splits, they move test scores by less than "
                     f"their noise; still, remove them")
        else:
            text += ": the model is tested on records it was trained on, slightly edited; remove them"
        return text + (f". Another {common}." if common else ".")
    text = (f"{_n(s['matched'], kind)} of {later}{where} {'is' if s['matched'] == 1 else 'are'} {how} a row in "
            f"{earlier}, as different records are in a table of few distinct values")
    text += f": {common}; " if common else ": "
    text += (f"{s['rare_matched']:,} {'matches' if s['rare_matched'] == 1 else 'match'} a row that occurs only once, "
             f"where {chance_words}. No more than chance: "
             f"shared values, not the same record in two splits.")
    return text


def _n(n: int, kind) -> str:
    """'1 row', '465 rows'."""
    return f"{n:,} {kind.counted if n != 1 else kind.counted[:-1]}"


LEVEL_WORDS = f"{chance.LEVEL:.1%} of the time"


def _later(c: Contents) -> int:
    return int(sum(len(rows) for _, _, rows in c.parts[1:]))


def _by_split(c: Contents, mask: np.ndarray) -> dict:
    return {n: int((c.part[mask] == i).sum()) for i, (n, _, _) in enumerate(c.parts) if (c.part[mask] == i).any()}


def _leak_message(c: Contents, pos, what: str) -> str:
    names = [n for n, _, _ in c.parts]
    if not len(pos):
        return f"no content of one split appears in another ({', '.join(names)})."
    mask = np.zeros(len(c.part), bool)
    mask[pos] = True
    where = ", ".join(f"{k}: {v:,}" for k, v in _by_split(c, mask).items())
    return (f"{what} in more than one split ({len(pos):,} examples; {where}): the model is tested on what it "
            f"was trained on, so test scores overstate it. Remove them from the later split.")


def _leak_finding(c: Contents, pos, other_pos, name, title, severity, msg, columns: dict, count: int | None = None,
                  stats: dict | None = None) -> Finding:
    """Flag the rows at `pos` (later splits) with the split and row of the copy they match (`other_pos`) and any
    further `columns` (one value per row of `pos`)."""
    names, kind = [n for n, _, _ in c.parts], KINDS[c.parts[0][1].kind]
    frames = []
    for p_idx, (part_name, ex, _) in enumerate(c.parts):
        sel = c.part[pos] == p_idx
        if sel.any():
            other = other_pos[sel]
            extra = {"also_in": [names[k] for k in c.part[other]], "other_row": c.row[other]}
            if kind.shows_copied_input:
                extra["other_input"] = [kind.show_inputs(c.parts[k][1], [r])[0]
                                        for k, r in zip(c.part[other], c.row[other])]
            extra.update({k: np.asarray(v)[sel] for k, v in columns.items()})
            frames.append(flagged_rows(ex, c.row[pos[sel]], split=part_name, **extra))
    flagged = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    counts = {n: int((c.part[pos] == i).sum()) for i, n in enumerate(names) if (c.part[pos] == i).any()}
    stats = {"by_split": counts, **(stats or {})}
    if not len(pos):
        return Finding(name, title, "info", 0, msg, flagged, stats)
    return Finding(name, title, severity, len(pos) if count is None else count, msg, flagged, stats)


def conflicting_labels(ex: Examples, c: Contents) -> Finding:
    """Identical inputs (same content key) given different labels within the training examples."""
    mine = c.part < _n_own_parts(c)
    frame = pd.DataFrame({"code": c.codes[mine], "row": c.row[mine], "label": ex.labels[c.row[mine]]})
    n_labels = frame.groupby("code")["label"].nunique()
    bad = frame[frame["code"].map(n_labels).to_numpy() > 1]
    size = bad.groupby("code")["row"].transform("size")
    bad = bad.assign(size=size).sort_values(["size", "code", "row"], ascending=[False, True, True])
    summary = {code: ", ".join(f"{ex.classes[k]} x{v}" for k, v in grp["label"].value_counts().sort_index().items())
               for code, grp in bad.groupby("code")}
    flagged = flagged_rows(ex, bad["row"].to_numpy(), labels_in_group=bad["code"].map(summary).tolist())
    groups, what = bad["code"].nunique(), KINDS[ex.kind].counted
    stats = {"rows": len(bad), "groups": int(groups)}
    if not len(bad):
        return Finding("conflicting_labels", "Conflicting labels", "info", 0,
                       f"no identical {what} carry different labels.", flagged, stats)
    msg = (f"{len(bad):,} {what} in {groups:,} groups of identical inputs carry different labels: no model can "
           f"be right on all of them, so they cap the best score. Decide the right label and fix the others.")
    return Finding("conflicting_labels", "Conflicting labels", "warning", len(bad), msg, flagged, stats)


def _n_own_parts(c: Contents) -> int:
    """Parts that belong to the training examples (all but a trailing test file)."""
    return len(c.parts) - (1 if c.parts[-1][0] == "test file" else 0)


def _nan0(x: np.ndarray) -> np.ndarray:
    return np.nan_to_num(x, nan=0.0)

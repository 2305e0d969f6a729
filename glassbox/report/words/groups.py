"""The plain words under the group figures (evaluate/groups.py): what the gap is, whether it is beyond noise, and
whether it comes from different base rates or from the model's own errors; and `glassbox eval`'s lines per group.
Every number is three decimals."""
from __future__ import annotations


def worded(report: dict, classes: list[str] | None = None) -> dict:
    """groups_report as a run stores it: each column with its sentence last, and every column's sentence together
    after the columns. classes: the class names, for the positive class's name."""
    columns = {name: {**c, "sentence": column_sentence(c, classes)} for name, c in report["columns"].items()}
    rest = {key: value for key, value in report.items() if key != "columns"}
    return {"columns": columns, "sentences": [c["sentence"] for c in columns.values()], **rest}


def _verdict(interval: list[float], beyond: str, chance: str, reverse: str | None = None) -> str:
    """What an interval of a difference says: beyond noise (excludes 0 from above), chance, or the reverse."""
    low, high = interval
    if low > 0:
        return beyond
    if high < 0 and reverse:
        return reverse
    return chance


def _small_groups(r: dict) -> str:
    small = [f"{row['value']} ({row['size']})" for row in r["groups"] if row["too_small"]]
    if not small:
        return ""
    listed = ", ".join(small[:5]) + (f" and {len(small) - 5} more" if len(small) > 5 else "")
    many = len(small) > 1
    return (f" {len(small)} group{'s' if many else ''} with fewer than {r['min_size']} examples "
            f"{'are' if many else 'is'} not ranked: {listed}.")


def _accuracy(r: dict) -> str:
    """The lowest-accuracy group against the rest, with the gap split into base rates and errors."""
    w, col = r["worst"], r["column"]
    low, high = w["gap_ci"]
    text = (f"Accuracy is lowest for {col}={w['value']}: {w['accuracy']:.3f} vs {w['rest_accuracy']:.3f} for "
            f"the other {w['rest_size']} examples (gap {w['gap']:.3f}, {r['ci_level']:.0%} CI {low:.3f} to {high:.3f}).")
    low, high = w["gap_ci_adjusted"]
    verdict = _verdict(w["gap_ci_adjusted"], "excludes 0, so chance alone is unlikely to explain the gap",
                       "includes 0, so the gap may be chance")
    if len(r["ranked"]) > 1:
        text += (f" Allowing for this being the lowest of {len(r['ranked'])} groups, the interval is "
                 f"{low:.3f} to {high:.3f}: it {verdict}.")
    else:
        text += f" The interval {verdict}."
    low, high = w["error_part_ci_adjusted"]
    errors = _verdict(w["error_part_ci_adjusted"], "beyond noise", "may be chance",
                      "beyond noise, the model is on the whole right more often within a class for this group")
    text += (f" Of the gap, {w['base_rate_part']:.3f} comes from a different mix of true classes (base "
             f"rates) and {w['error_part']:.3f} from more errors within the same true class (recall; "
             f"interval {low:.3f} to {high:.3f}: {errors}).")
    by = w.get("split_by_reference")
    if by:  # a run from before the symmetric split has one split only
        g, rest = by["group"], by["rest"]
        text += (f" The split depends on which class mix weighs the recalls: this group's gives {g['base_rate_part']:.3f}"
                 f" and {g['error_part']:.3f}, the rest's {rest['base_rate_part']:.3f} and {rest['error_part']:.3f}; "
                 f"the figures above are their mean.")
    return text


RATES = (("selection", "how often it says {positive} (selection rate)"),
         ("tpr", "recall on {positive} (true-positive rate)"),
         ("fpr", "false-positive rate"))


def _parity(r: dict, positive: str) -> str:
    """Selection rates against base rates (demographic parity), then the model's errors (equalized odds): each rate's
    spread between the groups, and whether it is beyond noise, rate by rate."""
    p, col = r["parity"], r["column"]
    s = p["selection"]
    label = {row["value"]: row["label_positive_rate"] for row in r["groups"]}
    ratio = "n/a" if s["ratio"] is None else f"{s['ratio']:.3f}"
    text = (f" The model says {positive} for {s['low_rate']:.3f} of {col}={s['low']} and {s['high_rate']:.3f} of "
            f"{col}={s['high']} (demographic parity difference {s['difference']:.3f}, ratio {ratio}); the labels "
            f"say {positive} for {label[s['low']]:.3f} and {label[s['high']]:.3f} of them (base rates).")
    spreads = [(name.format(positive=positive), key, p[key]) for key, name in RATES if p.get(key) is not None]
    if len(spreads) < 2:
        return text
    parts, beyond = [], []
    for name, key, x in spreads:
        low, high = x["ci_adjusted"]
        noise = "beyond noise" if low > 0 else "may be chance"
        parts.append(f"{name} {x['low_rate']:.3f} ({x['low']}) to {x['high_rate']:.3f} ({x['high']}), interval of the "
                     f"difference {low:.3f} to {high:.3f}: {noise}")
        if low > 0 and key != "selection":
            beyond.append(name)
    ratio = "n/a" if p["equalized_odds_ratio"] is None else f"{p['equalized_odds_ratio']:.3f}"
    text += (f" Between the groups, allowing for every pair of them: {'; '.join(parts)} (equalized-odds difference "
             f"{p['equalized_odds_difference']:.3f}, ratio {ratio}).")
    if beyond:
        return text + f" So the model's errors differ between groups beyond noise, in its {' and '.join(beyond)}."
    return text + " So the evidence that the model errs differently by group is thin."


def column_sentence(r: dict, classes: list[str] | None = None) -> str:
    """Plain words first for one group column (r: group_metrics): which group fares worst, by how much, why, and
    whether chance could explain it."""
    small = _small_groups(r)
    if not r["ranked"]:
        return f"No {r['column']} group has {r['min_size']} or more examples to rank.{small}"
    if len(r["groups"]) == 1 or r["worst"] is None:
        return f"Every example has {r['column']}={r['groups'][0]['value']}: there is nothing to compare."
    text = _accuracy(r)
    pos = r.get("positive_class")
    if r.get("parity") is not None:
        name = classes[pos] if classes and 0 <= pos < len(classes) else f"class {pos}"
        text += _parity(r, f"'{name}'")
    return text + small


def group_lines(groups: dict, classes: list[str]) -> list[str]:
    """`glassbox eval`'s text for a groups_report: each column's sentence, then each group's figures (the rates of
    the positive class for a binary task, each class's recall otherwise)."""
    lines = [column_sentence(c, classes) for c in groups.get("columns", {}).values()]
    for col, g in groups.get("columns", {}).items():
        for row in g["groups"]:
            def ci(key):
                low_high = row.get(key + "_ci")
                return f" [{low_high[0]:.3f}, {low_high[1]:.3f}]" if low_high else ""
            rates = (f", predicted positive {row['positive_rate']:.3f}{ci('positive_rate')}, labelled positive "
                     f"{row['label_positive_rate']:.3f}" if row.get("positive_rate") is not None else "")
            for key, what in (("tpr", "true-positive rate"), ("fpr", "false-positive rate")):
                rates += f", {what} {row[key]:.3f}{ci(key)}" if row.get(key) is not None else ""
            if row.get("positive_rate") is None and row.get("recall"):
                rates += ", recall " + ", ".join(f"{name} {x:.3f}" for name, x in zip(classes, row["recall"])
                                                 if x is not None)
            flag = " (too small to judge)" if row["too_small"] else ""
            lines.append(f"  {col}={row['value']}: n={row['size']}, accuracy {row['accuracy']:.3f}{ci('accuracy')}, "
                         f"NLL {row['nll']:.3f}, ECE {row['ece']:.3f}{rates}{flag}")
    if groups:
        lines.append("  (in brackets: 95% bootstrap intervals)")
    return lines

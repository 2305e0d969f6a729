"""The audit of a language-model corpus, before any weight moves: repeated lines, near-copies of whole
passages or files, and validation text that also sits in the training text.

    report = audit_corpus(corpus_files("input.txt"), val_fraction=0.1)

The corpus is split as training splits it (the first 90% of the characters train, the rest validate),
and each finding points at lines: the file and its 1-based line number. Lines shorter than MIN_CHARS
(after normalising case and whitespace) are left out: short lines ("Amen.", a speaker's name) repeat
in any real text.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pandas as pd

from glassbox.audit.minhash import THRESHOLD, near_duplicate_groups
from glassbox.audit.report import AuditReport, Finding

MIN_CHARS = 30            # shortest normalised line the line checks consider
PASSAGE_MIN_CHARS = 200   # shortest paragraph (text between blank lines) the near-copy check considers
REPEAT_WARN = 0.01        # repeats above this share of the training text are a warning
LEAK_WARN = 0.01          # validation text also in training above this share is a warning


@dataclass
class Line:
    split: str   # "train" or "val"
    file: str    # which file of the corpus
    line: int    # 1-based line number in that file
    text: str    # the line as written (the part on this side of the split, for the line the split cuts)
    key: str     # lower-cased, whitespace collapsed: what "the same line" means


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def corpus_lines(files: list[tuple[str, str]], val_fraction: float) -> list[Line]:
    """Every non-blank line of the corpus, with its split as split_text cuts the joined text."""
    total = sum(len(t) for _, t in files) + max(0, len(files) - 1)  # the files are joined with "\n"
    cut = int(total * (1.0 - val_fraction))
    out, offset = [], 0
    for name, text in files:
        for number, line in enumerate(text.split("\n"), 1):
            start, end = offset, offset + len(line)
            if end <= cut:
                parts = [("train", line)]
            elif start >= cut:
                parts = [("val", line)]
            else:
                parts = [("train", line[:cut - start]), ("val", line[cut - start:])]
            out += [Line(split, name, number, part, _norm(part)) for split, part in parts if part.strip()]
            offset = end + 1
    return out


def _where(line: Line, many_files: bool) -> str:
    return f"{line.file}:{line.line}" if many_files else str(line.line)


def _table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=["line", "input"])


def repeated_lines(lines: list[Line], many_files: bool) -> Finding:
    train = [ln for ln in lines if ln.split == "train"]
    copies = Counter(ln.key for ln in train if len(ln.key) >= MIN_CHARS)
    first: dict[str, Line] = {}
    rows = []
    for ln in train:
        if copies.get(ln.key, 0) < 2:
            continue
        if ln.key not in first:
            first[ln.key] = ln
            continue
        rows.append({"file": ln.file, "line": ln.line, "input": ln.text, "copies": copies[ln.key],
                     "first_copy_at": _where(first[ln.key], many_files)})
    rows.sort(key=lambda r: -r["copies"])
    train_chars = max(1, sum(len(ln.text) for ln in train))
    share = sum(len(r["input"]) for r in rows) / train_chars
    severity = "warning" if share >= REPEAT_WARN else "info"
    if rows:
        message = (f"{len(rows):,} training lines of at least {MIN_CHARS} characters repeat an earlier line "
                   f"({len(first):,} distinct lines; {share:.2%} of the training text). "
                   + ("The model sees them again and again, learns them by heart and will echo them. Remove "
                      "boilerplate (headers, licences, navigation, copied files) unless the repetition is real."
                      if severity == "warning" else
                      f"Below {REPEAT_WARN:.0%} of the text: too few to matter, nothing to fix."))
    else:
        message = f"No line of at least {MIN_CHARS} characters repeats in the training text."
    df = _table(rows)
    if not many_files and len(df):
        df = df.drop(columns="file")
    return Finding("exact_duplicates", "Repeated lines", severity, len(rows), message, df,
                   {"repeated_lines": len(rows), "distinct_repeated": len(first), "share_of_training_text": share,
                    "min_chars": MIN_CHARS})


def near_copies(lines: list[Line], files: list[tuple[str, str]], many_files: bool,
                threshold: float = THRESHOLD) -> Finding:
    """Paragraphs (and, for a folder, whole files) of the training text that nearly copy another one."""
    units: list[tuple[str, str, int, str]] = []  # (kind, file, first line, text)
    para = []
    for ln in [ln for ln in lines if ln.split == "train"] + [None]:
        if ln is not None and para and ln.file == para[-1].file and ln.line == para[-1].line + 1:
            para.append(ln)
            continue
        if para and sum(len(p.text) for p in para) >= PASSAGE_MIN_CHARS:
            units.append(("passage", para[0].file, para[0].line, "\n".join(p.text for p in para)))
        para = [ln] if ln is not None else []
    if many_files:
        units += [("file", name, 1, text) for name, text in files if len(text) >= PASSAGE_MIN_CHARS]
    keys = [_norm(u[3]) for u in units]
    distinct = {}
    for i, k in enumerate(keys):
        distinct.setdefault(k, i)
    firsts = list(distinct.values())
    groups, similarity = near_duplicate_groups([keys[i] for i in firsts], threshold)
    head = {}
    rows = []
    for j, g in enumerate(groups):
        if g < 0:
            continue
        kind, name, line, text = units[firsts[j]]
        if g not in head:
            head[g] = units[firsts[j]]
            continue
        ref = head[g]
        rows.append({"file": name, "line": line, "input": text, "unit": kind,
                     "similarity": round(float(similarity[j]), 3),
                     "near_copy_of": f"{ref[1]}:{ref[2]}" if many_files else str(ref[2])})
    # exact copies of a whole passage or file count too
    seen = {}
    for i, k in enumerate(keys):
        if k in seen:
            kind, name, line, text = units[i]
            ref = units[seen[k]]
            rows.append({"file": name, "line": line, "input": text, "unit": kind, "similarity": 1.0,
                         "near_copy_of": f"{ref[1]}:{ref[2]}" if many_files else str(ref[2])})
        else:
            seen[k] = i
    rows.sort(key=lambda r: (-r["similarity"], r["file"], r["line"]))
    n_passages = sum(u[0] == "passage" for u in units)
    severity = "warning" if rows else "info"
    message = (f"{len(rows):,} passages or files of the training text are near copies of another (estimated "
               f"Jaccard similarity of 5-character shingles >= {threshold}, {n_passages:,} passages of at least "
               f"{PASSAGE_MIN_CHARS} characters checked): copies weigh more in training and are memorised first. "
               f"Keep one of each unless the repetition is real." if rows else
               f"No passage of at least {PASSAGE_MIN_CHARS} characters nearly copies another ({n_passages:,} checked, "
               f"similarity threshold {threshold}).")
    df = _table(rows)
    if not many_files and len(df):
        df = df.drop(columns="file")
    return Finding("near_duplicates", "Near-copied passages", severity, len(rows), message, df,
                   {"passages_checked": n_passages, "threshold": threshold})


def validation_in_training(lines: list[Line], many_files: bool) -> Finding:
    train_at: dict[str, Line] = {}
    for ln in lines:
        if ln.split == "train" and len(ln.key) >= MIN_CHARS:
            train_at.setdefault(ln.key, ln)
    val = [ln for ln in lines if ln.split == "val"]
    rows = [{"file": ln.file, "line": ln.line, "input": ln.text, "also_in_training_at": _where(train_at[ln.key], many_files)}
            for ln in val if ln.key in train_at]
    val_chars = max(1, sum(len(ln.text) for ln in val))
    share = sum(len(r["input"]) for r in rows) / val_chars
    severity = "warning" if share >= LEAK_WARN else "info"
    if rows:
        message = (f"{len(rows):,} validation lines ({share:.2%} of the validation text) also appear in the training "
                   f"text" + (": validation loss and perplexity are partly measured on text the model trained on, and "
                              "flatter it; the memorisation test's validation baseline is affected too. Remove the "
                              "copies from one side." if severity == "warning" else
                              f". Below {LEAK_WARN:.0%} of the validation text: too little to sway its loss."))
    else:
        message = f"No validation line of at least {MIN_CHARS} characters appears in the training text."
    df = _table(rows)
    if not many_files and len(df):
        df = df.drop(columns="file")
    return Finding("leakage", "Validation text also in training", severity, len(rows), message, df,
                   {"lines": len(rows), "share_of_validation_text": share, "min_chars": MIN_CHARS})


def audit_corpus(files: list[tuple[str, str]], val_fraction: float = 0.1, threshold: float = THRESHOLD) -> AuditReport:
    """Audit a corpus given as (file name, text) pairs, split as training splits it."""
    many = len(files) > 1
    lines = corpus_lines(files, val_fraction)
    findings = [repeated_lines(lines, many), near_copies(lines, files, many, threshold), validation_in_training(lines, many)]
    return AuditReport(findings=findings, n_examples=len(lines), kind="corpus", unit="lines of text")


__all__ = ["audit_corpus", "corpus_lines", "MIN_CHARS", "PASSAGE_MIN_CHARS"]

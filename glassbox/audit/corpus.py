"""The audit of a language-model corpus, before any weight moves: repeated lines, near-copies of whole
passages or files, and validation text that also sits in the training text.

    report = audit_corpus(corpus_files("input.txt"), val_fraction=0.1)

The corpus is split as training splits it (the first 90% of the characters train, the rest validate),
and each finding points at lines: the file and its 1-based line number. Lines shorter than MIN_CHARS
(after normalising case and whitespace) are left out: short lines ("Amen.", a speaker's name) repeat
in any real text.

Memory stays a small multiple of the corpus: one pass keeps 21 bytes per line (a hash of its
normalised text, its size, split, file and number); the texts of flagged lines are fetched in a
second pass, at most MAX_FLAGGED per finding (the counts cover them all). The near-copy check reads
the training text's passages up to PASSAGE_BUDGET characters and says how far it got.
"""
from __future__ import annotations

from array import array
from dataclasses import dataclass

import numpy as np
import pandas as pd

from glassbox.audit.report import AuditReport, Finding
from glassbox.data.minhash import THRESHOLD, near_duplicate_groups

MIN_CHARS = 30              # shortest normalised line the line checks consider
PASSAGE_MIN_CHARS = 200     # shortest paragraph (text between blank lines) the near-copy check considers
PASSAGE_BUDGET = 50_000_000  # characters of passages (and files) the near-copy check reads at most
REPEAT_WARN = 0.01          # repeats above this share of the training text are a warning
LEAK_WARN = 0.01            # validation text also in training above this share is a warning
MAX_FLAGGED = 5_000         # flagged lines listed per finding, worst first


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _lines(text: str):
    """(1-based number, line) of each line of text, without building a list of them all."""
    start, number = 0, 1
    while True:
        end = text.find("\n", start)
        yield number, text[start:] if end < 0 else text[start:end]
        if end < 0:
            return
        start, number = end + 1, number + 1


@dataclass
class Lines:
    """Every non-blank line of the corpus, column-wise: hash of its normalised text (0 when shorter than
    MIN_CHARS), characters, whether it is validation text, file index, 1-based line number."""
    key: np.ndarray
    size: np.ndarray
    val: np.ndarray
    file: np.ndarray
    number: np.ndarray


def scan(files: list[tuple[str, str]], val_fraction: float) -> tuple[Lines, list[tuple[int, int, str]]]:
    """One pass over the corpus: the Lines, and the training passages for the near-copy check as
    (file index, first line, text), up to PASSAGE_BUDGET characters. A line the split cuts counts as
    two: its training part and its validation part."""
    total = sum(len(t) for _, t in files) + max(0, len(files) - 1)  # the files are joined with "\n"
    cut = int(total * (1.0 - val_fraction))
    key, size, val, fidx, num = array("q"), array("i"), array("b"), array("i"), array("i")
    passages, para, para_start, budget = [], [], 0, PASSAGE_BUDGET

    def close_paragraph():
        nonlocal para, budget
        text = "\n".join(para)
        if len(text) >= PASSAGE_MIN_CHARS and budget > 0:
            passages.append((para_file, para_start, text))
            budget -= len(text)
        para = []

    offset = 0
    for f, (_, text) in enumerate(files):
        para_file = f
        for number, line in _lines(text):
            start, end = offset, offset + len(line)
            offset = end + 1
            parts = ((False, line),) if end <= cut else ((True, line),) if start >= cut else \
                ((False, line[:cut - start]), (True, line[cut - start:]))
            for is_val, part in parts:
                normal = _norm(part)
                if not normal:
                    if para:
                        close_paragraph()
                    continue
                key.append((hash(normal) or 1) if len(normal) >= MIN_CHARS else 0)  # 0: too short to count
                size.append(len(part))
                val.append(is_val)
                fidx.append(f)
                num.append(number)
                if is_val:
                    if para:
                        close_paragraph()
                else:
                    if not para:
                        para_start = number
                    para.append(part)
        if para:
            close_paragraph()
    lines = Lines(np.frombuffer(key, dtype=np.int64), np.frombuffer(size, dtype=np.int32),
                  np.frombuffer(val, dtype=np.int8).astype(bool), np.frombuffer(fidx, dtype=np.int32),
                  np.frombuffer(num, dtype=np.int32))
    return lines, passages


def _texts(files: list[tuple[str, str]], wanted: set[tuple[int, int]]) -> dict[tuple[int, int], str]:
    """The text of the (file index, line number) pairs asked for (the whole line)."""
    out = {}
    for f, (_, text) in enumerate(files):
        numbers = {n for g, n in wanted if g == f}
        if not numbers:
            continue
        last = max(numbers)
        for number, line in _lines(text):
            if number in numbers:
                out[(f, number)] = line
            if number >= last:
                break
    return out


def _where(files, f: int, number: int) -> str:
    return f"{files[f][0]}:{number}" if len(files) > 1 else str(number)


def _frame(rows: list[dict], files) -> pd.DataFrame:
    df = pd.DataFrame(rows) if rows else pd.DataFrame(columns=["line", "input"])
    return df.drop(columns="file") if len(files) == 1 and "file" in df else df


def repeated_lines(files, lines: Lines) -> Finding:
    train = np.flatnonzero(~lines.val & (lines.key != 0))
    keys = lines.key[train]
    _, first_pos, inverse, counts = np.unique(keys, return_index=True, return_inverse=True, return_counts=True)
    copies = counts[inverse]
    later = (copies > 1) & (np.arange(len(train)) != first_pos[inverse])  # every copy after the first
    flagged = train[later]
    share = float(lines.size[flagged].sum()) / max(1, int(lines.size[~lines.val].sum()))
    n_distinct = int((counts > 1).sum())
    severity = "warning" if share >= REPEAT_WARN else "info"
    order = np.lexsort((flagged, -copies[later]))[:MAX_FLAGGED]  # most copies first, then in reading order
    shown, firsts = flagged[order], train[first_pos[inverse[later]]][order]
    texts = _texts(files, {(int(lines.file[i]), int(lines.number[i])) for i in shown})
    rows = [{"file": files[lines.file[i]][0], "line": int(lines.number[i]),
             "input": texts[(int(lines.file[i]), int(lines.number[i]))], "copies": int(c),
             "first_copy_at": _where(files, int(lines.file[j]), int(lines.number[j]))}
            for i, j, c in zip(shown, firsts, copies[later][order])]
    if len(flagged):
        message = (f"{len(flagged):,} training lines of at least {MIN_CHARS} characters repeat an earlier line "
                   f"({n_distinct:,} distinct lines; {share:.2%} of the training text). "
                   + ("The model sees them again and again, learns them by heart and will echo them. Remove "
                      "boilerplate (headers, licences, navigation, copied files) unless the repetition is real."
                      if severity == "warning" else
                      f"Below {REPEAT_WARN:.0%} of the text: too few to matter, nothing to fix."))
    else:
        message = f"No line of at least {MIN_CHARS} characters repeats in the training text."
    return Finding("exact_duplicates", "Repeated lines", severity, len(flagged), message, _frame(rows, files),
                   {"repeated_lines": len(flagged), "distinct_repeated": n_distinct, "share_of_training_text": share,
                    "min_chars": MIN_CHARS, "listed": len(rows)})


def near_copies(files, passages: list[tuple[int, int, str]], threshold: float = THRESHOLD) -> Finding:
    """Paragraphs (and, for a folder, whole files) of the training text that nearly copy another one."""
    units = [("passage", f, line, text) for f, line, text in passages]
    read = sum(len(u[3]) for u in units)
    if len(files) > 1:
        for f, (_, text) in enumerate(files):
            if PASSAGE_MIN_CHARS <= len(text) and read + len(text) <= 2 * PASSAGE_BUDGET:
                units.append(("file", f, 1, text))
                read += len(text)
    keys = [_norm(u[3]) for u in units]
    first_of: dict[str, int] = {}
    for i, k in enumerate(keys):
        first_of.setdefault(k, i)
    distinct = list(first_of.values())
    groups, similarity = near_duplicate_groups([keys[i] for i in distinct], threshold)
    rows, head = [], {}
    for j, g in enumerate(groups):
        if g < 0:
            continue
        if g not in head:
            head[g] = units[distinct[j]]
            continue
        kind, f, line, text = units[distinct[j]]
        ref = head[g]
        rows.append({"file": files[f][0], "line": line, "input": text, "unit": kind,
                     "similarity": round(float(similarity[j]), 3), "near_copy_of": _where(files, ref[1], ref[2])})
    for i, k in enumerate(keys):  # exact copies of a whole passage or file count too
        if first_of[k] != i:
            kind, f, line, text = units[i]
            ref = units[first_of[k]]
            rows.append({"file": files[f][0], "line": line, "input": text, "unit": kind, "similarity": 1.0,
                         "near_copy_of": _where(files, ref[1], ref[2])})
    rows.sort(key=lambda r: (-r["similarity"], r["file"], r["line"]))
    n_passages = len(passages)
    reach = ("" if sum(len(p[2]) for p in passages) < PASSAGE_BUDGET else
             f" (the first {PASSAGE_BUDGET / 1e6:.0f} million characters of passages were read)")
    message = (f"{len(rows):,} passages or files of the training text are near copies of another (estimated "
               f"Jaccard similarity of 5-character shingles >= {threshold}; {n_passages:,} passages of at least "
               f"{PASSAGE_MIN_CHARS} characters checked{reach}): copies weigh more in training and are memorised "
               f"first. Keep one of each unless the repetition is real." if rows else
               f"No passage of at least {PASSAGE_MIN_CHARS} characters nearly copies another ({n_passages:,} "
               f"checked{reach}; similarity threshold {threshold}).")
    return Finding("near_duplicates", "Near-copied passages", "warning" if rows else "info", len(rows), message,
                   _frame(rows[:MAX_FLAGGED], files), {"passages_checked": n_passages, "threshold": threshold,
                                                       "listed": min(len(rows), MAX_FLAGGED)})


def validation_in_training(files, lines: Lines) -> Finding:
    train = np.flatnonzero(~lines.val & (lines.key != 0))
    tkeys, tfirst = np.unique(lines.key[train], return_index=True)
    val = np.flatnonzero(lines.val)
    vk = lines.key[val]
    if len(tkeys):
        pos = np.minimum(np.searchsorted(tkeys, vk), len(tkeys) - 1)
        hit = (vk != 0) & (tkeys[pos] == vk)
        flagged, where = val[hit], train[tfirst[pos[hit]]]
    else:  # no training line long enough to count
        flagged = where = val[:0]
    share = float(lines.size[flagged].sum()) / max(1, int(lines.size[val].sum()))
    severity = "warning" if share >= LEAK_WARN else "info"
    shown, at = flagged[:MAX_FLAGGED], where[:MAX_FLAGGED]
    texts = _texts(files, {(int(lines.file[i]), int(lines.number[i])) for i in shown})
    rows = [{"file": files[lines.file[i]][0], "line": int(lines.number[i]),
             "input": texts[(int(lines.file[i]), int(lines.number[i]))],
             "also_in_training_at": _where(files, int(lines.file[j]), int(lines.number[j]))} for i, j in zip(shown, at)]
    if len(flagged):
        message = (f"{len(flagged):,} validation lines ({share:.2%} of the validation text) also appear in the training "
                   f"text" + (": validation loss and perplexity are partly measured on text the model trained on, and "
                              "flatter it; the memorisation test's validation baseline is affected too. Remove the "
                              "copies from one side." if severity == "warning" else
                              f". Below {LEAK_WARN:.0%} of the validation text: too little to sway its loss."))
    else:
        message = f"No validation line of at least {MIN_CHARS} characters appears in the training text."
    return Finding("leakage", "Validation text also in training", severity, len(flagged), message, _frame(rows, files),
                   {"lines": len(flagged), "share_of_validation_text": share, "min_chars": MIN_CHARS, "listed": len(rows)})


def audit_corpus(files: list[tuple[str, str]], val_fraction: float = 0.1, threshold: float = THRESHOLD) -> AuditReport:
    """Audit a corpus given as (file name, text) pairs, split as training splits it."""
    lines, passages = scan(files, val_fraction)
    findings = [repeated_lines(files, lines), near_copies(files, passages, threshold),
                validation_in_training(files, lines)]
    return AuditReport(findings=findings, n_examples=len(lines.key), kind="corpus", unit="lines of text")


__all__ = ["audit_corpus", "scan", "MIN_CHARS", "PASSAGE_MIN_CHARS"]

"""run_audit: every check on the data, before any weight moves."""
from __future__ import annotations

import numpy as np

from glassbox.audit import checks, duplicates
from glassbox.audit.label_errors import label_errors
from glassbox.audit.report import AuditReport, Finding
from glassbox.data.examples import Examples
from glassbox.data.minhash import THRESHOLD


def run_audit(examples: Examples, test: Examples | None = None, pred_probs: np.ndarray | None = None,
              groups: dict[str, list] | None = None, split: dict[str, np.ndarray] | None = None,
              near_threshold: float = THRESHOLD, near: bool = True, label_errors_note: str | None = None) -> AuditReport:
    """Audit `examples` (and the user's own `test` file, for leakage).

    pred_probs: (N, K) out-of-fold probabilities, for the likely-label-errors check (skipped without them).
    groups:     group column -> value per example (default: examples.groups).
    split:      split name -> row indices (as split_indices returns), to check leakage between the splits.
    near:       False skips the near-duplicate checks (the most expensive ones).
    label_errors_note: without pred_probs, why the likely-label-errors check did not run (shown as an info finding)."""
    if test is not None and test.kind != examples.kind:
        raise ValueError(f"test examples are {test.kind!r} but the training examples are {examples.kind!r}")
    c = duplicates.contents(examples, split, test, near_threshold, near)
    findings = [duplicates.exact_duplicates(examples, c)]
    if near:
        findings.append(duplicates.near_duplicates(examples, c, near_threshold))
    findings += duplicates.leakage(c)
    if not near:
        findings = [f for f in findings if f.name != "near_leakage"]
    classes = examples.targets is None  # a continuous label has no classes to balance, count or disagree on
    findings += [duplicates.conflicting_labels(examples, c), checks.class_balance(examples),
                 checks.small_classes(examples)] if classes else []
    findings += [checks.missing_values(examples), checks.extreme_lengths(examples)]
    findings += [f for f in (checks.id_columns(examples), checks.group_coverage(examples, groups) if classes else None)
                 if f is not None]
    if pred_probs is not None:
        findings.append(label_errors(examples, pred_probs))
    elif label_errors_note:
        findings.append(Finding("label_errors", "Likely label errors", "info", 0, label_errors_note))
    return AuditReport(findings=findings, n_examples=len(examples), kind=examples.kind)

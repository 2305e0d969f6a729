"""The data audit, before any weight moves: the same checks for `glassbox train` and `glassbox audit`, and the gate
that stops a training run on errors (unless --force) or on warnings (with --strict)."""
from __future__ import annotations

from pathlib import Path

from glassbox.config import TrainConfig
from glassbox.data.examples import Examples
from glassbox.errors import UserError
from glassbox.runtime import distributed
from glassbox.runtime.files import write_json


def audit_examples(ex: Examples, test: Examples | None, split: dict | None, *, folds: int, seed: int, device: str,
                   label_errors: bool = True, max_flops: dict | None = None, show: bool = False):
    """Every check of labelled examples (duplicates, leakage across `split` or into `test`, conflicts, imbalance,
    groups, likely label errors from k out-of-fold models); an AuditReport. max_flops: see out_of_fold.label_check;
    show: the fold models' progress on a terminal."""
    from glassbox.audit import run_audit
    from glassbox.audit.label_errors import import_cleanlab
    from glassbox.run.out_of_fold import label_check

    if ex.targets is not None:  # cleanlab ranks a given class against predicted class probabilities
        probs, note = None, REGRESSION_SKIPS
    elif label_errors:
        # cleanlab (and the scikit-learn it imports, about a second) loads while the fold models train elsewhere
        probs, note = label_check(ex, folds, seed, device, max_flops=max_flops, show=show,
                                  while_waiting=import_cleanlab)
    else:
        probs, note = None, "not checked (--no-label-errors)."
    return run_audit(ex, test=test, split=split, pred_probs=probs, label_errors_note=note)


REGRESSION_SKIPS = ("not checked: the label is a number, and this check, like the class checks left out (balance, "
                    "small classes, conflicting labels, label rates per group), needs classes. Duplicates, near "
                    "copies, leakage, missing values and ID-like columns are checked as for a classifier.")


def audit_corpus_at(data: str, val_fraction: float):
    """A language-model corpus's checks: repeated lines, near-copied passages, validation text also in training."""
    from glassbox.audit.corpus import audit_corpus
    from glassbox.data.corpus import corpus_files

    files = corpus_files(data)
    if not any(text.strip() for _, text in files):
        raise UserError(f"the corpus {data} is empty; give a text file with some text in it")
    return audit_corpus(files, val_fraction)


def gate(make_report, cfg: TrainConfig, run_dir: Path, what: str = "data") -> dict:
    """Audit (`make_report()`), write RUN/audit.json and show the findings, then stop the run where they say so.
    Under torchrun rank 0 audits alone and sends its verdict to the others, which stop alike: the audit's fold
    models would only repeat the same work on every process, competing for the same cores."""
    main = distributed.current().is_main
    report = make_report() if main else None
    if main:
        write_json(run_dir / "audit.json", report.to_dict())
        if not cfg.quiet:
            report.render()
    errors, warnings = distributed.from_rank0([report.has_errors, report.has_warnings] if main else [False, False])
    where = run_dir / "audit.json"
    if errors and not cfg.force:
        raise UserError(f"the {what} audit found errors (see {where}); fix the {what}, or pass --force to train anyway")
    if cfg.strict and warnings:
        raise UserError(f"the {what} audit found warnings and --strict is on (see {where}); fix the {what} or drop --strict")
    return report.to_dict() if main else {"errors": int(errors), "warnings": int(warnings), "findings": []}


def headline(audit: dict) -> dict:
    """The audit's counts and the titles of its warnings and errors, for summary.json."""
    return {"errors": audit["errors"], "warnings": audit["warnings"],
            "findings": [f["title"] for f in audit["findings"] if f["severity"] != "info"]}

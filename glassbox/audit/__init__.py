"""The data audit: findings about the examples before training (duplicates, leakage, conflicting and
likely wrong labels, balance, missing values, lengths, group coverage)."""
from glassbox.audit.report import AuditReport, Finding, render_audit
from glassbox.audit.run import run_audit

__all__ = ["AuditReport", "Finding", "render_audit", "run_audit"]

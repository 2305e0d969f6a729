"""The model card: what the model is for, what it was trained on, what it cannot know, and what
to be careful of, derived from the run folder."""
from __future__ import annotations

from glassbox.report.html import count, counted, esc, interval, or_nan, pct
from glassbox.report.load import Run
from glassbox.report.sections import model_name
from glassbox.report.summary import RegressionSummary
from glassbox.report.worries import top_worries


def intended_use(run: Run) -> str:
    s = run.summary
    if run.is_lm:
        return (f"Generating text in the style of {s.data or 'its training text'}. It continues text with what "
                f"is likely there, not with what is true; it states nothing as fact.")
    if isinstance(s, RegressionSummary):
        return (f"Predicting '{s.label}', a number, for rows like those in {s.data or 'its training data'}. "
                f"It answers with a number and an interval for any row, even one unlike every row it saw; its scores "
                f"and its intervals' coverage hold for rows drawn the way its training data was, and on anything else "
                f"they say nothing.")
    classes = [str(c) for c in s.classes or []]
    shown = ", ".join(f"'{c}'" for c in classes[:10]) + (f" and {len(classes) - 10} more" if len(classes) > 10 else "")
    return (f"Sorting {s.kind or ''} examples like those in {s.data or 'its training data'} into one of "
            f"{len(classes)} classes: {shown}. It always answers with one of these classes, even for an input that "
            f"belongs to none of them. Its scores hold for inputs drawn the way its training data was; on anything "
            f"else they say nothing.")


def training_data(run: Run) -> str:
    s, m = run.summary, run.manifest or {}
    fingerprint = m.get("training_data_fingerprint") or s.data_fingerprint or "not recorded"
    if run.is_lm:
        tokens = (s.corpus or {}).get("tokens") or {}
        size = f"{count(tokens.get('train'))} training and {count(tokens.get('val'))} validation tokens"
    else:
        n = s.n_examples
        size = f"{count(n.train)} training, {count(n.val)} validation and {count(n.test)} test examples"
    return f"{s.data or 'unknown'}: {size}. Fingerprint (sha256 of the data): {fingerprint}."


def knowledge_cutoff(run: Run) -> str:
    if run.is_lm:
        return (f"Trained on {run.trained_on}, on {run.summary.data or 'its corpus'} alone. It knows nothing that "
                f"text does not contain: no events after it was written, no facts from anywhere else. Asked about "
                f"them, it still writes fluent, confident text.")
    return (f"Trained on {run.trained_on}. The model knows nothing that is not in its training data: nothing that "
            f"happened after it was collected, and no kinds of input it never showed. It will still answer about "
            f"them, with the same apparent confidence.")


def performance(run: Run) -> str:
    s = run.summary
    if run.is_lm:
        return f"Validation perplexity {or_nan(s.perplexity):.2f} (vocabulary of {count(s.vocab_size)})."
    if isinstance(s, RegressionSummary):
        return regression_performance(s)
    text = f"Test accuracy {pct(s.test_accuracy)} on {counted(s.n_examples.test, 'example')}"
    majority = s.chance.majority_accuracy
    text += f" (the most common class alone: {pct(majority)})." if majority is not None else "."
    calib = s.calibration
    saved = (calib.after if calib.kept else calib.before) if calib else None  # what the saved model gives
    if saved:
        how = "after temperature scaling" if calib.kept else "as saved (no temperature kept)"
        text += f" Confidence {how}: {saved.verdict} (ECE {saved.ece or 0:.3f})."
    gap = (s.groups or {}).get("largest_gap")
    if gap:
        column = s.groups["columns"].get(gap["column"], {})
        worst = column.get("worst") or {}
        ci, adjusted = worst.get("gap_ci"), worst.get("gap_ci_adjusted")
        noise = ("" if not adjusted else ", beyond noise" if adjusted[0] > 0 else ", which may be chance")
        against = (f"{pct(worst['accuracy'])} against {pct(worst['rest_accuracy'])} for everyone else; overall "
                   f"{pct(column['overall']['accuracy'])}; " if "rest_accuracy" in worst and column.get("overall")
                   else "")
        text += (f" Largest group gap: {gap['column']}={gap['value']}, {100 * gap['gap']:.1f} points below the rest "
                 f"({against}95% interval of the gap {interval(ci, lambda x: f'{100 * x:.1f}')} points{noise}).")
    return text


def regression_performance(s: RegressionSummary) -> str:
    text = (f"Test RMSE {or_nan(s.test_rmse):.4g}, MAE {or_nan(s.test_mae):.4g}, R² {or_nan(s.test_r2):.3f} on "
            f"{counted(s.n_examples.test, 'example')} (always the training mean: RMSE {or_nan(s.chance.test_rmse):.4g}).")
    i = s.interval
    if i and i.test:
        text += (f" Its {pct(i.level, 0)} prediction intervals (value ± {or_nan(i.half_width):.4g}) "
                 f"held {pct(i.test.coverage)} of the test values (95% interval {interval(i.test.ci)}).")
    return text


def audit_findings(run: Run) -> str:
    a = run.audit
    if not a:
        return "No data audit was recorded for this run."
    flagged = [f for f in a.get("findings") or [] if f.get("count") and f.get("severity") in ("error", "warning")]
    if not flagged:
        return f"The audit of {count(a.get('n_examples'))} {a.get('unit') or 'examples'} found nothing to fix."
    listed = "; ".join(f"{f.get('title', f.get('name'))} ({f.get('severity')}, {count(f.get('count'))})" for f in flagged)
    return f"The audit of {count(a.get('n_examples'))} {a.get('unit') or 'examples'} flagged: {listed}."


def limitations(run: Run) -> list[str]:
    out = top_worries(run.summary, run.audit, run.memorization, n=5)
    if not run.is_lm and not run.summary.groups:
        out.append("No group columns were given, so nobody checked whether it works worse for some people "
                   "(train with --group COL to measure it).")
    return out


def model_card(run: Run) -> str:
    m, s = run.manifest or {}, run.summary
    model = (f"{model_name(m.get('architecture', s.model or 'model'))}, {count(m.get('n_params', s.n_params))} weights; "
             f"glassbox {m.get('glassbox_version', '?')}, torch {m.get('torch_version', '?')}")
    rows = [("Model", model), ("Intended use", intended_use(run)), ("Training data", training_data(run)),
            ("Knowledge cutoff", knowledge_cutoff(run)), ("Performance", performance(run)),
            ("What the audit found", audit_findings(run))]
    if m.get("weights_sha256"):
        rows.append(("Weights", f"{run.path / 'model' / 'model.safetensors'} (sha256 {m['weights_sha256']})"))
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in rows)
    limits = "".join(f"<li>{esc(t)}</li>" for t in limitations(run))
    return (f'<dl class="card">{items}</dl><h3>Limitations</h3><ul>{limits}</ul>'
            if limits else f'<dl class="card">{items}</dl>')

"""The three things a reader should worry about most, derived from the run's own figures.

Each check returns (how serious, sentence) or nothing; the report shows the three most serious.
Scores only order the concerns: 100 means the results cannot be trusted, 10 is a caveat that
holds for every run (a finite test set).
"""
from __future__ import annotations

import math

from glassbox.report.html import counted, is_number, or_nan, pct
from glassbox.report.summary import (CalibrationFigures, ClassifierSummary, LMSummary, MemorisationControl,
                                     RegressionSummary, RunSummary)


def _points(x: float) -> str:
    return f"{100 * x:.1f} points"


def leak(s: RunSummary):
    c = None if isinstance(s, LMSummary) else s.control
    if isinstance(c, MemorisationControl) and c.leak_suspected:
        return 100, (f"Something may leak the answer: trained on shuffled labels, the same model still scored "
                     f"{pct(c.val_accuracy)} on validation against {pct(c.chance_accuracy)} by chance. "
                     f"Do not trust any score here until you find it (copies across splits, or the label hidden "
                     f"in a feature).")


def diverged(s: RunSummary):
    d = s.diverged
    if d is None:
        return None
    kept = (f"the weights from step {s.best_step}, the best before it, are the ones scored and saved"
            if d.restored else "no evaluation had beaten the untrained model, so no model was saved")
    return 95, (f"Training diverged at step {d.step} (learning rate {or_nan(d.lr):.3g}): the loss "
                f"or its gradient stopped being a finite number; {kept}. {d.advice or ''}".strip())


def audit_problems(audit: dict | None):
    if not audit:
        return []
    out = []
    found = [f for f in audit.get("findings", []) if f.get("count")]
    errors = [f for f in found if f.get("severity") == "error"]
    warnings = [f for f in found if f.get("severity") == "warning"]
    if errors:
        out.append((90, f"The data audit found {len(errors)} error{'s' if len(errors) > 1 else ''} "
                        f"({', '.join(f.get('title', f.get('name', '')) for f in errors)}): the scores may be "
                        f"wrong until the data is fixed. First: {errors[0].get('message', '')}"))
    if warnings:
        leaky = [f for f in warnings if "leak" in str(f.get("name", ""))]
        first = (leaky or warnings)[0]
        out.append((65 if leaky else 50,
                    f"The data audit raised {len(warnings)} warning{'s' if len(warnings) > 1 else ''} "
                    f"({', '.join(f.get('title', f.get('name', '')) for f in warnings)}). "
                    f"Most important: {first.get('message', '')}"))
    return out


def near_chance(s: RunSummary):
    if not isinstance(s, ClassifierSummary):
        return None
    acc, majority = s.test_accuracy, s.chance.majority_accuracy
    n = s.n_examples.test or 0
    if not (is_number(acc) and is_number(majority) and n):
        return None
    margin = 2 * math.sqrt(max(majority * (1 - majority), 1e-12) / n)
    if acc <= majority + margin:
        return 85, (f"The model is hardly better than always answering the most common class: test accuracy "
                    f"{pct(acc)} against {pct(majority)} for that one fixed answer.")


def _odds_beyond_noise(rep: dict):
    """The larger of a column's true- and false-positive-rate spreads when its interval excludes 0, else None."""
    p = rep.get("parity") or {}
    spreads = [(name, p[key]) for name, key in (("true-positive rate", "tpr"), ("false-positive rate", "fpr"))
               if isinstance(p.get(key), dict) and ((p[key].get("ci_adjusted") or [0])[0] or 0) > 0]
    return max(spreads, key=lambda x: x[1].get("difference", 0)) if spreads else None


def group_gap(s: RunSummary):
    """The group column where the model's own errors differ most clearly (then where accuracy differs beyond
    noise, then most): its worst group against the rest, the gap split into base rates and errors."""
    if not isinstance(s, ClassifierSummary):  # a regression's groups: errors by column, no accuracy gap
        return None
    worst = []
    for column, rep in ((s.groups or {}).get("columns") or {}).items():
        w = rep.get("worst") or {}
        if is_number(w.get("gap")) and len(rep.get("ranked") or []) > 1:
            low = (w.get("gap_ci_adjusted") or [0, 0])[0]
            errors = ((w.get("error_part_ci_adjusted") or [0])[0] or 0) > 0 or _odds_beyond_noise(rep) is not None
            worst.append((errors, is_number(low) and low > 0, w["gap"], column, w, rep))
    if not worst:
        return None
    errors, real, gap, column, w, rep = max(worst, key=lambda t: t[:3])
    if "rest_accuracy" not in w:  # a run from before groups were compared with the rest
        text = (f"The model is worse for {column}={w['value']} than for the test set as a whole: accuracy "
                f"{pct(w.get('accuracy'))} vs {pct(w.get('overall_accuracy'))} (gap {_points(gap)}); ")
        text += ("chance alone is unlikely to explain it." if real else "the gap may be chance.")
        return (70 if real and gap >= 0.02 else 45 if real else 15), text
    text = (f"The model is less accurate for {column}={w['value']} than for the other examples: "
            f"{w['accuracy']:.3f} vs {w['rest_accuracy']:.3f} (gap {gap:.3f}, "
            f"{'beyond noise' if real else 'may be chance'}); {w.get('base_rate_part', float('nan')):.3f} of it comes "
            f"from different base rates, {w.get('error_part', float('nan')):.3f} from more errors within a class.")
    odds = _odds_beyond_noise(rep)
    if odds:
        name, x = odds
        text += (f" Its {name} differs by {column} beyond noise: {x['low_rate']:.3f} for {x['low']} vs "
                 f"{x['high_rate']:.3f} for {x['high']}.")
    return (70 if errors else 45 if real else 15), text


CALIBRATED = ("well calibrated", "no miscalibration beyond chance on this many examples")  # evaluate/calibration.py


def calibration(s: RunSummary):
    c = s.calibration if isinstance(s, ClassifierSummary) else None
    if c is None or not c.before or c.before.verdict in CALIBRATED:
        return None
    before, after = c.before, c.after or CalibrationFigures()
    if not c.kept:
        figures = (f"average confidence {pct(before.mean_confidence)}, accuracy {pct(before.accuracy)}, "
                   f"ECE {or_nan(before.ece):.3f}")
        why = f"temperature scaling was not applied: {c.reason or 'no reason recorded'}."
        acc, n = before.accuracy, c.n_test
        confidence = acc if before.mean_confidence is None else before.mean_confidence
        gap = abs(confidence - acc) if is_number(acc) else float("nan")
        noise = 2 * math.sqrt(acc * (1 - acc) / n) if is_number(acc) and is_number(n) and n > 0 else float("nan")
        if gap <= noise:  # confidence within two standard errors of accuracy: the test set cannot show a gap
            return 20, (f"As trained the model looks {before.verdict} ({figures}), but on {n} test examples "
                        f"the gap is within noise (±{100 * noise:.1f} points), so the evidence is thin; {why}")
        return 60, f"Its stated confidence cannot be taken at face value: as trained it is {before.verdict} ({figures}); {why}"
    doubt = (" Test disagrees with validation about this T (see the calibration section)."
             if (c.test_check or {}).get("agrees") is False else "")
    if after.verdict not in CALIBRATED:
        return 60, (f"Its stated confidence cannot be taken at face value, even after temperature scaling: "
                    f"{after.verdict or before.verdict} (average confidence "
                    f"{pct(after.mean_confidence)}, accuracy {pct(after.accuracy)}, ECE "
                    f"{or_nan(after.ece):.3f}).{doubt}")
    return 35, (f"As trained, the model is {before.verdict} (ECE {or_nan(before.ece):.3f}); "
                f"the saved model divides its scores by T = {or_nan(c.temperature):.2f}, which "
                f"brings ECE to {or_nan(after.ece):.3f}. Use the saved artifact, not raw logits.{doubt}")


def generalisation(s: RunSummary):
    if not isinstance(s, ClassifierSummary):
        return None
    gap = s.generalisation_gap  # train minus validation accuracy
    if not is_number(gap) or gap <= 0.02:
        return None
    return (55 if gap > 0.05 else 25), (
        f"It does better on examples it was trained on than on new ones: training accuracy "
        f"{pct(s.train_accuracy)} vs validation {pct(s.val_accuracy)} (gap {_points(gap)}).")


def worst_class(s: RunSummary):
    pc = (s.per_class if isinstance(s, ClassifierSummary) else None) or {}
    macro = (pc.get("macro") or {}).get("f1")
    row = next((c for c in pc.get("classes", []) if c.get("name") == pc.get("worst_class")), None)
    if not row or not is_number(macro) or len(pc.get("classes", [])) < 2:
        return None
    return (40 if row["f1"] < macro - 0.1 else 12), (
        f"Class '{row['name']}' is handled worst: F1 {row['f1']:.2f} against {macro:.2f} on average over "
        f"classes; it finds {pct(row['recall'])} of the {counted(row['support'], 'test example')} of that class.")


def stopping(s: RunSummary):
    steps, best = s.steps, s.best_step
    if s.stopped_early or not is_number(steps) or best != steps:
        return None
    return 30, (f"Validation loss was still falling when training ended (its best was at the last step, {steps}): "
                f"more steps may help.")


def test_size(s: RunSummary):
    if isinstance(s, LMSummary):
        return None
    n = s.n_examples.test
    if isinstance(s, RegressionSummary):
        ci = (s.test_ci or {}).get("rmse")  # a bootstrap interval
        if not (n and ci and is_number(s.test_rmse)):
            return None
        return (45 if n < 200 else 25 if n < 1000 else 10), (
            f"The test score comes from {counted(n, 'example')}, so its RMSE, {s.test_rmse:.4g}, is known only to "
            f"within {ci[0]:.4g} to {ci[1]:.4g} (95% bootstrap interval); small differences between runs mean nothing.")
    acc = s.test_accuracy
    if not n or not is_number(acc):
        return None
    half = 1.96 * math.sqrt(max(acc * (1 - acc), 1 / n) / n)
    score = 45 if n < 200 else 25 if n < 1000 else 10
    return score, (f"The test score comes from {counted(n, 'example')}, so it is known only to about ±{_points(half)} "
                   f"(95% interval of {pct(acc)}); small differences between runs mean nothing.")


def memorisation(s: RunSummary, mem: dict | None):
    ext = (mem or {}).get("extraction") or {}
    diff, err = ext.get("difference"), ext.get("difference_stderr")
    if not (is_number(diff) and is_number(err)) or diff <= max(2 * err, 0.01):
        return None
    return 75, (f"The model reproduces its training text: given the start of a training passage it continues "
                f"it word for word {pct((ext.get('train') or {}).get('rate'))} of the time, against "
                f"{pct((ext.get('val') or {}).get('rate'))} for unseen text. Do not train on private text.")


def lm_chance(s: RunSummary):
    loss, chance = s.val_loss, s.chance_loss
    if not isinstance(s, LMSummary) or not (is_number(loss) and is_number(chance)):
        return None
    if loss > 0.9 * chance:
        return 85, (f"The language model has learned little: validation loss {loss:.3f} against "
                    f"{chance:.3f} for a uniform guess over its vocabulary.")
    return 8, (f"At each step it is still about as unsure as choosing among {math.exp(loss):.1f} tokens (validation "
               f"perplexity; a uniform guess: {math.exp(chance):.0f}), so expect slips in everything it writes.")


def little_explained(s: RunSummary):
    """A regression whose test R^2 is low: its predictions are not much better than the training mean."""
    if not isinstance(s, RegressionSummary) or not is_number(s.test_r2) or s.test_r2 >= 0.3:
        return None
    r2 = s.test_r2
    return (85 if r2 < 0.1 else 50), (
        f"It explains only {pct(r2)} of the test set's variance (R²): its typical error, RMSE "
        f"{or_nan(s.test_rmse):.4g}, is close to the {s.chance.test_rmse:.4g} of always predicting the training mean.")


def knowledge(s: RunSummary):
    """Holds for every model: a caveat to fill the list when nothing more serious stands out."""
    source = s.data or "its training data"
    if isinstance(s, LMSummary):
        return 5, (f"It writes what is likely in the style of {source}, not what is true, and knows nothing outside "
                   f"that text.")
    return 5, (f"It knows only what is in {source}: inputs unlike those examples (another source, another time, "
               f"another population) get answers with the same confidence and no warning.")


def top_worries(summary: RunSummary, audit: dict | None = None, memorization: dict | None = None,
                n: int = 3) -> list[str]:
    found = [leak(summary), diverged(summary), near_chance(summary), group_gap(summary), calibration(summary),
             generalisation(summary), worst_class(summary), stopping(summary), test_size(summary),
             memorisation(summary, memorization), lm_chance(summary), little_explained(summary), knowledge(summary),
             *audit_problems(audit)]
    found = sorted((w for w in found if w), key=lambda w: -w[0])
    return [text for _, text in found[:n]]

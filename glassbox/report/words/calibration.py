"""Calibration in words (evaluate/temperature.py calibration_report): why a fitted temperature was kept or not,
what the saved model's stated confidence is worth on test, and whether test agrees with the decision."""
from __future__ import annotations

from glassbox.evaluate.calibration import busiest_bin


def worded(report: dict) -> dict:
    """calibration_report as a run stores it: the decision's reason in words in place of its code, in the report and
    in its "decision", and the sentence last."""
    decision = {**report["decision"], "reason": reason(report["decision"])}
    out = {**report, "reason": decision["reason"], "decision": decision}
    out["sentence"] = sentence(out)
    return out


def reason(d: dict) -> str:
    """Why the fitted T was kept or not, with the numbers (d: decide_temperature's record, "reason" its code)."""
    t, n, why = d["fitted_temperature"], d["n_val"], d["reason"]
    if why == "too_few_examples":
        return f"the validation split holds {n} examples, fewer than the {d['min_val']} needed to check a temperature"
    if why == "no_gain":
        return "no temperature lowers validation NLL below T = 1"
    if why == "at_bound":
        return (f"the fitted T stopped at the search bound {t:g}: the {n} validation examples "
                f"({d['val_errors']} wrong) cannot pin it down")
    cf = d["crossfit"]
    lo, hi = cf["change_ci"]
    where = (f"T = {t:.2f} was fitted on the {n} validation examples; scoring each of {d['folds']} parts of them "
             f"with a T fitted on the other parts changed NLL {cf['nll_before']:.4f} -> {cf['nll_after']:.4f} (change "
             f"{cf['change']:+.4f}, 95% interval {lo:+.4f} to {hi:+.4f})")
    if why in ("few_errors", "too_few_errors"):  # too_few_errors: a run from before the errors were allowed for
        if "change_ci_errors" not in cf:
            return (f"{where}, which looks like a gain, but only {d['val_errors']} of the {n} validation examples are "
                    f"wrong, too few to trust it")
        lo, hi = cf["change_ci_errors"]
        return (f"{where}, which looks like a gain, but only {d['val_errors']} of the {n} validation examples are wrong "
                f"and how sure the model is when wrong decides T: allowing for as many wrong ones as that count "
                f"allows, the interval is {lo:+.4f} to {hi:+.4f}, which reaches 0")
    if why == "milder":
        m = d["milder"]
        lo, hi = cf["change_ci_errors"]
        return (f"{where}, and allowing for as many wrong examples as {d['val_errors']} of {n} allows, {lo:+.4f} to "
                f"{hi:+.4f}: not sure. The milder T = {m['temperature']:.2f} (the fitted T to the power {m['power']:g}), "
                f"fitted and scored the same way, changed NLL {m['nll_before']:.4f} -> {m['nll_after']:.4f} (change "
                f"{m['change']:+.4f}, 95% interval {m['change_ci'][0]:+.4f} to {m['change_ci'][1]:+.4f}"
                f"{_allowing(d, m)}): a clear gain")
    return where + {"not_clearly_better": ": not clearly better", "worse": ": worse",
                    "clear_gain": ": a clear gain"}[why] + (_allowing(d, cf) if why == "clear_gain" else "")


def _allowing(d: dict, cf: dict) -> str:
    """For a kept T: the interval with the share of wrong examples left uncertain, and the count it rests on."""
    if "change_ci_errors" not in cf:  # a run from before the errors were allowed for
        return ""
    lo, hi = cf["change_ci_errors"]
    return (f", also allowing for as many wrong examples as {d['val_errors']} of {d['n_val']} allows "
            f"({lo:+.4f} to {hi:+.4f})")


def sentence(r: dict) -> str:
    """Which happened and why first; then the saved model's calibration on test; then whether test agrees
    (r: calibration_report with its reason in words)."""
    before, after = r["before"], r["after"]
    t = r.get("temperature", r["fitted_temperature"]) if r["applied"] else r["fitted_temperature"]  # "after"'s T
    if r["applied"]:
        text = (f"Temperature scaling applied: {r['reason']}. As trained, {_says(r['reliability_before'], 'this model')} "
                f"({_ece_words(before, r['tolerance'])}); with T = {t:.2f}, "
                f"{_says(r['reliability_after'], 'it')} ({_ece_words(after)}).")
    else:
        text = (f"Temperature scaling not applied (the saved model keeps T = 1): {r['reason']}. As saved, "
                f"{_says(r['reliability_before'], 'this model')} ({_ece_words(before, r['tolerance'])}).")
    text += (f" Accuracy is {before['accuracy']:.1%} either way; figures are for the confidence band holding the "
             f"most of the {r['n_test']} test examples.")
    return text + _test_words(r["test_check"], r["applied"], t)


def _ece_words(fig: dict, tolerance: float | None = None) -> str:
    """'verdict: ECE x, tolerance t; a perfectly calibrated model would show up to ...; right on k of n where its
    confidences add up to ...' (the noise floor and the overall count only where the figures have them)."""
    text = f"{fig['verdict']}: ECE {fig['ece']:.3f}" + (f", tolerance {tolerance}" if tolerance is not None else "")
    if "ece_noise" in fig:
        text += f"; a perfectly calibrated model would show up to {fig['ece_noise']:.3f} here by chance"
    o = fig.get("overall")
    if o:  # evaluate/calibration.py overall_confidence
        low, high = o["range"]
        text += (f"; right on {o['right']:,} of {o['n']:,}, where its confidences add up to {o['expected_right']:,.1f} "
                 f"and a calibrated model is right {low:,} to {high:,} times, 95% of the time (p = {o['p_value']:.2g})")
    return text


def _pct(x: float) -> str:
    """A share as a percentage; one decimal near 0% and 100% so 99.6% does not read as 100%."""
    return f"{x:.1%}" if round(x * 100) in (0, 100) and 0.0 < x < 1.0 else f"{x:.0%}"


def _says(bins: list[dict], who: str) -> str:
    b = busiest_bin(bins)
    return f"when {who} says {_pct(b['mean_confidence'])} it is right {_pct(b['accuracy'])} of the time"


def _test_words(c: dict, applied: bool, t: float) -> str:
    """One sentence on whether test agrees with the validation decision (nothing when T = 1 was fitted)."""
    if t == 1.0:
        return ""
    lo, hi = c["change_ci"]
    change = (f"T = {t:.2f} {'changed' if applied else 'would have changed'} test NLL {c['nll_before']:.4f} -> "
              f"{c['nll_after']:.4f} (change {c['change']:+.4f}, 95% interval {lo:+.4f} to {hi:+.4f})")
    if c["agrees"] is None:
        return f" On test the change is within noise: {change}."
    if c["agrees"]:
        return f" Test agrees: {change}."
    if applied:
        return (f" Test disagrees with validation: {change}; validation and test may differ, or validation "
                f"is too small to tell.")
    return (f" Test disagrees with keeping T = 1: {change}, a gain the evidence on validation did not establish "
            f"beyond noise.")

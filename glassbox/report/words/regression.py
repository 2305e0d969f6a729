"""A regression's numbers in words (evaluate/regression.py): the prediction intervals and their coverage on test, a
group's mean residual, R^2 where it is undefined, and `glassbox eval`'s lines for a regression artifact."""
from __future__ import annotations

from glassbox.evaluate.regression import fewest_for


def interval_sentence(interval: dict, cover: dict | None) -> str:
    """The split-conformal interval, how it was found, and whether test coverage agrees with the nominal level
    (interval: conformal_interval; cover: coverage on test, None where there is no interval)."""
    nominal = f"{interval['level']:.0%}"
    if cover is None:
        return (f"prediction intervals: none, as {interval['n_val']:,} validation examples are too few for a "
                f"{nominal} interval (it needs at least {fewest_for(interval['level']):,})")
    measured = (f"on {cover['n']:,} test examples {cover['coverage']:.1%} fell inside (95% interval "
                f"{cover['ci'][0]:.1%} to {cover['ci'][1]:.1%})")
    verdict = {"consistent": f"consistent with the nominal {nominal} within the noise of this many examples",
               "below": f"below the nominal {nominal} beyond noise: test examples differ from validation ones",
               "above": f"above what the method promises ({interval['guaranteed_at_most']:.1%}) beyond noise: the "
                        f"intervals are wider than they need be"}[cover["verdict"]]
    return (f"prediction intervals: each prediction ± {interval['half_width']:.4g} (the absolute validation "
            f"residual ranked {interval['rank']:,} of {interval['n_val']:,}, smallest first) for a nominal {nominal} coverage; "
            f"{measured}: {verdict}.")


def worded_groups(by_column: dict) -> dict:
    """group_errors as a run stores it: each column's figures with its sentence last."""
    return {column: {**r, "sentence": group_sentence(column, r)} for column, r in by_column.items()}


def group_sentence(column: str, r: dict) -> str:
    """The group whose mean residual lies furthest from 0, and whether that is beyond noise (r: one column of
    group_errors)."""
    if r["worst"] is None:
        return f"group '{column}': too few test rows in each group to measure its mean residual"
    t = r["groups"][r["worst"]]
    if r["beyond_noise"]:
        side = "too low" if t["mean_residual"] > 0 else "too high"
        return (f"group '{column}': for {column}={r['worst']} the model predicts {side} by "
                f"{abs(t['mean_residual']):.4g} on average ({t['n']:,} test rows, {r['z']:.1f} standard errors from "
                f"0, beyond noise); RMSE there {t['rmse']:.4g}")
    return (f"group '{column}': no group's mean residual differs from 0 beyond noise (the furthest, "
            f"{column}={r['worst']}, {t['mean_residual']:+.4g} at {r['z']:.1f} standard errors, under {r['z_cut']:.1f})")


def r2_words(r2) -> str:
    """R^2 to 4 decimals; None where the true values do not vary (one row, or all alike) and it is undefined."""
    return f"{r2:.4f}" if r2 is not None else "undefined (the true values do not vary)"


def eval_lines(r: dict) -> list[str]:
    """`glassbox eval` of a regression artifact, in words (r: run/eval/artifact.py regression_eval)."""
    i, t = r["interval"], r["interval"]["test"]
    inside = (f"; {t['coverage']:.1%} inside the {i['level']:.0%} prediction intervals (value ± {i['half_width']:.4g}; "
              f"95% interval {t['ci'][0]:.1%} to {t['ci'][1]:.1%}: {t['verdict']})" if t else "; no prediction intervals")
    lines = [f"{r['n']:,} examples: RMSE {r['rmse']:.4g}, MAE {r['mae']:.4g}, R^2 {r2_words(r['r2'])}, mean residual "
             f"{r['mean_residual']:+.4g}{inside}"]
    u = r.get("unseen")
    if u:
        lines.append(f"  on the {u['n']:,} examples it never saw: RMSE {u['rmse']:.4g}, MAE {u['mae']:.4g}, "
                     f"R^2 {r2_words(u['r2'])}")
    return lines + [group_sentence(column, g) for column, g in (r.get("groups") or {}).items()]

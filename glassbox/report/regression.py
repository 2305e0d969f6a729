"""The report's sections for a regression (a number per row): its errors next to always predicting the training
mean, the residual plot, the prediction intervals that take calibration's place, and per-group errors. The audit,
cost and learning-curve figures are the classifier's."""
from __future__ import annotations

from glassbox.report import plots
from glassbox.report.html import count, esc, image, is_number, num, para, pct, seconds, table
from glassbox.report.load import Run
from glassbox.report.sections import STOPPED, model_name
from glassbox.report.summary import Coverage
from glassbox.report.worries import top_worries


def g4(x) -> str:
    """A figure in the label's units: 4 significant digits."""
    return f"{x:.4g}" if is_number(x) else "–"


def summary(run: Run) -> str:
    s, chance, target = run.summary, run.summary.chance, run.summary.target
    lead = (f"A {model_name(s.model or 'model')} with {count(s.n_params)} weights learned to predict "
            f"'{esc(s.label)}', a number, from {count(s.n_examples.train)} training rows of {esc(s.data)} "
            f"in {count(s.steps)} steps ({seconds(s.train_seconds)}), on the target standardised by "
            f"the training split's mean ({g4(target.mean)}) and standard deviation ({g4(target.std)}) "
            f"with {'Huber' if target.loss == 'huber' else 'squared-error'} loss.")
    ci = (s.test_ci or {}).get("rmse") or [None, None]
    how_good = (f"On {count(s.n_examples.test)} test rows it never saw, its typical error (RMSE) is {g4(s.test_rmse)} "
                f"(95% bootstrap interval {g4(ci[0])} to {g4(ci[1])}) "
                f"and its mean absolute error {g4(s.test_mae)}; always predicting the training mean would "
                f"give {g4(chance.test_rmse)} and {g4(chance.test_mae)}. It explains "
                f"{pct(s.test_r2)} of the test set's variance (R²).")
    rows = [["training set (at the sweet spot)", g4(s.train_rmse), g4(s.train_mae), g4(s.train_r2), num(s.train_loss)],
            ["validation set", g4(s.val_rmse), g4(s.val_mae), g4(s.val_r2), num(s.val_loss)],
            ["test set", g4(s.test_rmse), g4(s.test_mae), g4(s.test_r2), num(s.test_loss)],
            ["always the training mean, validation", g4(chance.val_rmse), g4(chance.val_mae), g4(chance.val_r2),
             num(s.chance_loss)],
            ["always the training mean, test", g4(chance.test_rmse), g4(chance.test_mae), g4(chance.test_r2), "–"],
            ["the untrained model (random weights)", "–", "–", "–", num(chance.untrained_loss)]]
    items = "".join(f"<li>{esc(w)}</li>" for w in top_worries(s, run.audit))
    return (para(lead, "lead") + para(how_good, "lead") + "<h3>What to worry about most</h3>"
            + (f'<ol class="worries">{items}</ol>' if items else para("Nothing in this run stands out."))
            + "<h3>Scores at a glance</h3>"
            + table(["", "RMSE", "MAE", "R²", "loss (standardised)"], rows, {1, 2, 3, 4}))


def curves(run: Run) -> str:
    s = run.summary
    if not run.metrics:
        return ""
    png = plots.learning_curves(run.metrics, s.best_step, s.chance_loss)
    html = para(s.verdict) if s.verdict else ""
    html += image(png, "training and validation loss by step, with the sweet spot and the chance level")
    html += para("Losses are on the standardised target. The dashed line is chance: the validation loss of always "
                 "predicting the training mean. The star marks the sweet spot, the evaluation with the lowest "
                 "validation loss, whose weights were kept.", "note")
    return html + para(f"The generalisation gap at the sweet spot (step {s.best_step}): training RMSE "
                       f"{g4(s.train_rmse)} vs validation {g4(s.val_rmse)}. Training stopped at step "
                       f"{s.steps} ({STOPPED.get(s.stop_reason, 'why was not recorded')}).")


def residuals(run: Run) -> str:
    r = run.summary.residuals
    if not r or not r.get("true"):
        return ""
    half = run.summary.interval.half_width if run.summary.interval else None
    shown = len(r["true"])
    sample = "every test row" if shown == r.get("n_test") else f"{count(shown)} of the {count(r.get('n_test'))} test rows, drawn at random"
    return (image(plots.residual_plots(r["true"], r["predicted"], half), "predicted against true values, and "
                  "residuals against predictions, on the test set")
            + para(f"Left: each test row's prediction against its true value ({sample}); on the diagonal the "
                   f"prediction is exact. Right: the residual (true minus predicted) against the prediction; a "
                   f"trend or a funnel there means the errors depend on the value predicted. The dashed band is the "
                   f"prediction interval.", "note"))


def intervals(run: Run) -> str:
    i = run.summary.interval
    if i is None:
        return ""
    t = i.test or Coverage()
    rows = [["nominal coverage", pct(i.level)], ["interval: prediction ±", g4(i.half_width)],
            ["validation rows it was set on", count(i.n_val)],
            ["test rows inside", f"{count(t.covered)} of {count(t.n)}"],
            ["measured test coverage", pct(t.coverage)],
            ["its 95% interval", f"{pct((t.ci or [None])[0])} to {pct((t.ci or [None, None])[1])}"]]
    return (para(i.sentence or "") + table(["prediction intervals (split conformal)", ""], rows, {1})
            + para("In place of a classifier's calibration: the half-width is a quantile of the absolute residuals on "
                   "the validation split, with the finite-sample correction (rank ceil((n + 1) × level)), so a new "
                   "row like the validation rows falls inside with at least the nominal probability. The test rows "
                   "check it; the verdict counts only a difference beyond their sampling noise.", "note"))


def groups(run: Run) -> str:
    g = (run.summary.groups or {}).get("by_column")
    if not g:
        return ""
    html = para("Errors on the test set for each group. The mean residual is true minus predicted: positive where the "
                "model predicts too low. Its standard error says how far from 0 noise alone would move it.")
    for column, rep in g.items():
        rows = [[value, count(t.get("n")), g4(t.get("rmse")), g4(t.get("mae")), g4(t.get("mean_residual")),
                 g4(t.get("se_mean_residual")), "furthest from 0" if value == rep.get("worst") else ""]
                for value, t in rep.get("groups", {}).items()]
        html += (f"<h3>By {esc(column)}</h3>" + para(rep.get("sentence", ""))
                 + table([column, "test rows", "RMSE", "MAE", "mean residual", "its standard error", ""], rows,
                         {1, 2, 3, 4, 5}, wide=True))
    return html

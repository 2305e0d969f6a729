"""The report's sections for a trained model. Each takes the loaded Run and returns HTML, or ""
when the run holds nothing for it (the section is then left out)."""
from __future__ import annotations

from glassbox.report import plots
from glassbox.report.html import (Raw, capital, count, esc, image, interval, is_number, num, para, pct, processes, seconds,
                                  severity, si, sig, table)
from glassbox.models.registry import display_name
from glassbox.report.load import Run
from glassbox.report.summary import CalibrationFigures, LMSummary, MemorisationControl
from glassbox.report.worries import top_worries

NUMS = set(range(1, 12))  # every column after the first holds numbers, in most tables here
model_name = display_name  # a model's name in words, from the one table of models


def what_was_trained(run: Run) -> str:
    s = run.summary
    classes = [str(c) for c in s.classes or []]
    shown = ", ".join(classes[:8]) + (f" and {len(classes) - 8} more" if len(classes) > 8 else "")
    name = model_name(s.model or 'model')
    return (f"{'An' if name[:1].lower() in 'aeiou' else 'A'} {name} with {count(s.n_params)} weights learned to sort "
            f"{s.kind or ''} examples from {s.data or 'the data'} into {len(classes)} classes ({shown}), "
            f"from {count(s.n_examples.train)} training examples in {count(s.steps)} steps "
            f"({seconds(s.train_seconds)}){processes(s)}.")


def summary(run: Run) -> str:
    s, chance = run.summary, run.summary.chance
    k = chance.n_classes or len(s.classes or []) or None
    how_good = (f"On {count(s.n_examples.test)} test examples it never saw, it is right {pct(s.test_accuracy)} of the "
                f"time. Always answering the most common class would be right {pct(chance.majority_accuracy)} "
                f"of the time" + (f", and guessing at random among {k} classes {pct(1 / k)}." if k else "."))
    worries = top_worries(s, run.audit, run.memorization)
    items = "".join(f"<li>{esc(w)}</li>" for w in worries)
    rows = [["training set (at the sweet spot)", pct(s.train_accuracy), num(s.train_loss)],
            ["validation set", pct(s.val_accuracy), num(s.val_loss)],
            ["test set", pct(s.test_accuracy), num(s.test_loss)],
            ["always the most common class", pct(chance.majority_accuracy), "–"],
            [f"uniform guess over {k} classes (chance, ln K)" if k else "uniform guess",
             pct(1 / k) if k else "–", num(s.chance_loss)],
            ["the untrained model (random weights)", pct(chance.untrained_accuracy), num(chance.untrained_loss)]]
    return (para(what_was_trained(run), "lead") + para(how_good, "lead")
            + "<h3>What to worry about most</h3>"
            + (f'<ol class="worries">{items}</ol>' if items else para("Nothing in this run stands out."))
            + "<h3>Scores at a glance</h3>" + table(["", "accuracy", "loss"], rows, {1, 2}))


def _cell(value) -> str:
    """A flagged example's field as one short line of text."""
    if isinstance(value, dict):
        value = "; ".join(f"{k}={v}" for k, v in value.items())
    elif isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    elif isinstance(value, float):  # a confidence or similarity: 0.9997, not 0.9996924399456744
        value = f"{value:.4f}" if value == 0 or abs(value) >= 0.001 else f"{value:.2e}"
    text = "" if value is None else str(value)
    return text if len(text) <= 220 else text[:219] + "…"


def audit(run: Run) -> str:
    a = run.audit
    if not a:
        return ""
    intro = (f"Before any weight moved, the audit checked the {count(a.get('n_examples'))} "
             f"{a.get('unit') or str(a.get('kind', '')) + ' examples'}: "
             f"{a.get('errors', 0)} error(s) and {a.get('warnings', 0)} warning(s). An error means the scores could "
             f"be wrong; a warning means look at it; info means nothing to fix; skipped says why a check did not run.")
    findings = a.get("findings") or []
    order = {"error": 0, "warning": 1, "info": 2}
    findings = sorted(findings, key=lambda f: (order.get(f.get("severity"), 3), "leak" not in str(f.get("name")),
                                               -(f.get("count") or 0)))
    rows = [[severity(f.get("severity", "info"), f.get("checked", True)), f.get("title", f.get("name")), count(f.get("count")),
             capital(f.get("message", ""))] for f in findings]
    html = para(intro) + table(["severity", "check", "count", "what it means"], rows, {2}, wide=True)
    for f in findings:
        worst = [w for w in f.get("worst") or [] if isinstance(w, dict)][:2]
        if not worst or f.get("severity") == "info":
            continue
        keys = [k for k in dict.fromkeys(k for w in worst for k in w) if any(w.get(k) is not None for w in worst)]
        numeric = {i for i, k in enumerate(keys) if all(is_number(w.get(k)) for w in worst)}
        html += (f"<h3>{esc(f.get('title', f.get('name')))}: {len(worst)} of the {count(f.get('count'))} "
                 f"flagged</h3>"
                 + table(keys, [[_cell(w.get(k)) for k in keys] for w in worst], numeric, wide=True))
    return html


def curves(run: Run) -> str:
    s = run.summary
    if not run.metrics:
        return ""
    png = plots.learning_curves(run.metrics, s.best_step, s.chance_loss, s.chance.majority_accuracy)
    html = para(s.verdict) if s.verdict else ""
    html += image(png, "training and validation loss by step, with the sweet spot and the chance level")
    html += para("Training loss is measured on the batches the model learns from, validation loss on examples it "
                 "never trains on. The dashed line is chance: the loss of a uniform guess, ln K. The star marks the "
                 "sweet spot, the evaluation with the lowest validation loss, whose weights were kept.", "note")
    gap, lm = s.generalisation_gap, isinstance(s, LMSummary)
    stop = f"Training stopped at step {s.steps} ({STOPPED.get(s.stop_reason, 'why was not recorded')})."
    if lm and is_number(s.val_windows) and is_number(s.curve_val_windows) and s.curve_val_windows < s.val_windows:
        stop += (f" Validation loss here is on all {count(s.val_windows)} validation windows; the curve and the "
                 f"verdict above use {count(s.curve_val_windows)} of them, spread evenly over the text "
                 f"({num(s.curve_val_loss)} at the sweet spot).")
    if is_number(gap) and lm:
        side = (f"{num(gap)} higher on text it never trained on" if gap > 0 else
                f"{num(-gap)} lower on text it never trained on: no sign of memorising yet (the two halves of "
                f"a corpus differ in difficulty, so a small negative gap is noise)")
        html += para(f"The generalisation gap: validation loss {num(s.val_loss)} vs training loss "
                     f"{num(s.train_loss)}, {side}. " + stop)
    elif is_number(gap):
        html += para(f"The generalisation gap at the sweet spot (step {s.best_step}): training accuracy "
                     f"{pct(s.train_accuracy)} vs validation {pct(s.val_accuracy)}, a gap of "
                     f"{100 * gap:.1f} points. " + stop)
    else:
        html += para(stop)
    return html


STOPPED = {"early_stop": "early: validation loss had not improved for --patience evaluations",
           "max_steps": "at its last step", "interrupted": "when interrupted",
           "diverged": "as soon as the loss or the gradient became infinite or NaN: training diverged"}


def per_class(run: Run) -> str:
    pc = run.summary.per_class
    if not pc:
        return ""
    classes = pc.get("classes") or []
    html = para(f"Where the errors fall. Each row of the matrix is a true class and each column the class the model "
                f"said, so the diagonal holds the right answers. Accuracy on the {count(pc.get('n'))} test examples "
                f"is {pct(pc.get('accuracy'))}; the class handled worst (lowest F1) is '{pc.get('worst_class')}'.")
    html += image(plots.confusion(pc.get("confusion_matrix") or [], [c["name"] for c in classes]),
                  "confusion matrix on the test set")
    rows = [[c["name"], num(c["precision"], 3), num(c["recall"], 3), num(c["f1"], 3), count(c["support"]),
             count(c["predicted"])] for c in classes]
    for name in ("macro", "weighted"):
        avg = pc.get(name) or {}
        rows.append([Raw(f"<em>{name} average</em>"), num(avg.get("precision"), 3), num(avg.get("recall"), 3),
                     num(avg.get("f1"), 3), "", ""])
    html += table(["class", "precision", "recall", "F1", "test examples", "times predicted"], rows, NUMS)
    return html + para("Precision: when the model says this class, how often it is right. Recall: of the examples "
                       "really in this class, how many it finds. F1 combines the two.", "note")


def calibration(run: Run) -> str:
    c = run.summary.calibration
    if c is None:
        return ""
    before, after = c.before or CalibrationFigures(), c.after or CalibrationFigures()
    rows = [["ECE (average gap between confidence and accuracy)", num(before.ece), num(after.ece)],
            ["MCE (largest gap in any confidence band)", num(before.mce), num(after.mce)],
            ["NLL (test loss)", num(before.nll), num(after.nll)], ["Brier score", num(before.brier), num(after.brier)],
            ["accuracy", pct(before.accuracy), pct(after.accuracy)],
            ["average confidence", pct(before.mean_confidence), pct(after.mean_confidence)]]
    applied = c.kept
    # the T "after" shows: the one the saved model uses (the fitted one, or a milder one), else the fitted one
    t = c.temperature if applied or c.fitted_temperature is None else c.fitted_temperature
    scaled = f"with T = {num(t, 2)} ({'applied' if applied else 'not applied'})"
    html = para(c.sentence or "")
    html += table(["on the test set", "as trained", scaled], rows, {1, 2})
    html += para(f"Verdict: as trained, {before.verdict or 'not measured'}; {scaled}, "
                 f"{after.verdict or 'not measured'}.")
    html += image(plots.reliability(c.reliability_before or [], c.reliability_after or [], t, applied),
                  "reliability diagrams before and after temperature scaling")
    kept = ("was kept because validation examples held out from its fit showed a lower NLL, and is stored in the "
            "saved model" if applied else "was not kept: the saved model gives its scores as trained (T = 1)")
    return html + para(f"Each bar is one confidence band: the model's stated probability on the x-axis, how often it "
                       f"was right on the y-axis. Bars on the diagonal mean 'when it says 80%, it is right 80% of "
                       f"the time'; below it the model is over-confident. T was fitted on the "
                       f"{count(c.n_val)} validation examples and {kept}; the grey "
                       f"bars count the test examples in each band.", "note")


def groups(run: Run) -> str:
    g = run.summary.groups
    if not g or not g.get("columns"):
        return ""
    classes = run.summary.classes or []
    html = para("How the model fares for each group in the test set. Intervals are 95% bootstrap intervals; groups "
                "too small to judge are listed but never ranked.")
    for column, rep in g["columns"].items():
        positive = rep.get("positive_class")
        pos_name = classes[positive] if isinstance(positive, int) and 0 <= positive < len(classes) else None
        worst = (rep.get("worst") or {}).get("value")
        rows = []
        for row in rep.get("groups") or []:
            note = "too small to rank" if row.get("too_small") else "worst" if row.get("value") == worst else ""
            rows.append([row.get("value"), count(row.get("size")), pct(row.get("accuracy")),
                         interval(row.get("accuracy_ci")), pct(row.get("positive_rate")),
                         interval(row.get("positive_rate_ci")), pct(row.get("label_positive_rate")),
                         num(row.get("tpr"), 3), num(row.get("fpr"), 3),
                         num(row.get("nll"), 3), num(row.get("ece"), 3), note])
        o = rep.get("overall") or {}
        rows.append([Raw("<em>all test examples</em>"), count(o.get("size")), pct(o.get("accuracy")),
                     interval(o.get("accuracy_ci")), pct(o.get("positive_rate")), interval(o.get("positive_rate_ci")),
                     pct(o.get("label_positive_rate")), num(o.get("tpr"), 3), num(o.get("fpr"), 3),
                     num(o.get("nll"), 3), num(o.get("ece"), 3), ""])
        said = f"says '{pos_name}'" if pos_name else "says the positive class"
        html += f"<h3>By {esc(column)}</h3>" + para(rep.get("sentence", ""))
        html += table([column, "size", "accuracy", "95% interval", f"model {said}", "95% interval",
                       "label is" + (f" '{pos_name}'" if pos_name else " positive"), "true-positive rate",
                       "false-positive rate", "loss", "ECE", ""], rows, set(range(1, 11)), wide=True)
        if positive is None and classes and len(classes) <= 20:  # multi-class: each class's recall per group
            recalls = [[row.get("value")] + [num(x, 3) for x in row.get("recall") or []] for row in rep.get("groups") or []]
            html += para(f"Recall of each class (the share of its examples the model gets right) by {column}:")
            html += table([column] + list(classes), recalls, set(range(1, len(classes) + 1)), wide=True)
        html += image(plots.group_accuracy(column, rep), f"accuracy by {column}")
    return html


def control(run: Run) -> str:
    c = run.summary.control
    if not isinstance(c, MemorisationControl):  # a str: the setting, for a run that did not get to the control
        return ""
    steps = f" ({c.steps:,} steps)" if isinstance(c.steps, int) else ""
    html = para(f"The same model was trained again from scratch on shuffled training labels, which carry no "
                f"information: for twice the main run's planned steps{steps}, with no early stopping, so it has every "
                f"chance to memorise. Whatever it scores on training data there is pure memorisation; on validation "
                f"it should stay at chance.")
    html += para(c.sentence or "")
    rows = [["training accuracy on shuffled labels", pct(c.train_accuracy)],
            ["chance on the shuffled training labels", pct(c.train_chance_accuracy)],
            ["validation accuracy (real labels)", pct(c.val_accuracy)],
            ["chance (most common class)", pct(c.chance_accuracy)],
            ["leak suspected", "yes" if c.leak_suspected else "no"]]
    html += table(["memorisation control", ""], rows, {1})
    png = plots.learning_curves(run.control_metrics, None, run.summary.chance_loss, run.summary.chance.majority_accuracy,
                                train_label="training loss (shuffled labels)")
    return html + image(png, "learning curves of the shuffled-label control run")


def cost(run: Run) -> str:
    s, c = run.summary, run.summary.cost
    if c is None:
        return ""
    t, i = c.train, c.inference
    steps = t.steps or s.steps
    step_seconds = t.seconds / steps if is_number(t.seconds) and steps else None
    per_1000 = (lambda x: x * 1000 if is_number(x) else None)
    rows = [["FLOPs", si(t.flops_per_step, "FLOP"), si(t.flops, "FLOP"), si(i.flops, "FLOP"), si(per_1000(i.flops), "FLOP")],
            ["time", seconds(step_seconds), seconds(t.seconds), seconds(i.seconds), seconds(per_1000(i.seconds))],
            ["share of the machine's peak (MFU)", "–", pct(t.mfu, 2), pct(i.mfu, 2), "–"],
            ["energy (kWh)", "–", sig(t.energy_kwh), "–", sig(i.energy_kwh_per_1000)],
            ["money", "–", sig(t.cost), "–", sig(i.cost_per_1000)]]
    html = para(c.sentence or "")
    html += table(["", "one training step", "whole training run", "one prediction", "1,000 predictions"], rows, NUMS)
    if s.stage_seconds:
        html += para("Wall time of this run, stage by stage: " + ", ".join(
            f"{name} {sig(sec, 2)} s" for name, sec in s.stage_seconds.items() if is_number(sec))
            + (f" (all together {sig(s.wall_seconds, 3)} s)." if is_number(s.wall_seconds) else "."))
    return html + para(
        f"Assumed, not metered: a constant {sig(c.power_watts, 3)} W and {sig(c.price_per_kwh, 3)} per "
        f"kWh (in your currency). The peak is this machine's measured matrix-multiply speed, "
        f"{si(c.peak_flops, 'FLOP/s')}. MFU (model FLOPs utilisation) is the share of that peak the work "
        f"achieved."
        + (f" The whole-run FLOPs include {si(t.eval_flops, 'FLOP')} spent on validation passes."
           if is_number(t.eval_flops) else "")
        + (f" One training step costs {si(t.flops_per_token, 'FLOP')} per token." if is_number(t.flops_per_token)
           else "")
        + (f" One prediction here means {i.unit}." if i.unit else "")
        + (f" The test inputs differ in length, and so does what one costs: the column 'one prediction' is the median "
           f"of the {i.flops_spread['n']:,} test inputs ({si(i.flops_spread['min'], 'FLOP')} to "
           f"{si(i.flops_spread['max'], 'FLOP')})." if i.flops_spread else ""), "note")

"""The report's sections for a trained model. Each takes the loaded Run and returns HTML, or ""
when the run holds nothing for it (the section is then left out)."""
from __future__ import annotations

from glassbox.report import plots
from glassbox.report.html import (Raw, capital, count, esc, image, interval, is_number, num, para, pct, processes, seconds,
                                  severity, si, sig, table)
from glassbox.models.registry import display_name
from glassbox.report.load import Run
from glassbox.report.worries import top_worries

NUMS = set(range(1, 12))  # every column after the first holds numbers, in most tables here
model_name = display_name  # a model's name in words, from the one table of models


def what_was_trained(run: Run) -> str:
    s = run.summary
    classes = [str(c) for c in s.get("classes") or []]
    shown = ", ".join(classes[:8]) + (f" and {len(classes) - 8} more" if len(classes) > 8 else "")
    n = s.get("n_examples") or {}
    return (f"A {model_name(s.get('model', 'model'))} with {count(s.get('n_params'))} weights learned to sort "
            f"{s.get('kind', '')} examples from {s.get('data', 'the data')} into {len(classes)} classes ({shown}), "
            f"from {count(n.get('train'))} training examples in {count(s.get('steps'))} steps "
            f"({seconds(s.get('train_seconds'))}){processes(s)}.")


def summary(run: Run) -> str:
    s, chance = run.summary, run.summary.get("chance") or {}
    n_test = (s.get("n_examples") or {}).get("test")
    k = chance.get("n_classes") or len(s.get("classes") or []) or None
    how_good = (f"On {count(n_test)} test examples it never saw, it is right {pct(s.get('test_accuracy'))} of the "
                f"time. Always answering the most common class would be right {pct(chance.get('majority_accuracy'))} "
                f"of the time" + (f", and guessing at random among {k} classes {pct(1 / k)}." if k else "."))
    worries = top_worries(s, run.audit, run.memorization)
    items = "".join(f"<li>{esc(w)}</li>" for w in worries)
    rows = [[name, pct(s.get(f"{key}_accuracy")), num(s.get(f"{key}_loss"))]
            for name, key in [("training set (at the sweet spot)", "train"), ("validation set", "val"),
                              ("test set", "test")]]
    rows += [["always the most common class", pct(chance.get("majority_accuracy")), "–"],
             [f"uniform guess over {k} classes (chance, ln K)" if k else "uniform guess",
              pct(1 / k) if k else "–", num(s.get("chance_loss"))],
             ["the untrained model (random weights)", pct(chance.get("untrained_accuracy")),
              num(chance.get("untrained_loss"))]]
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
    png = plots.learning_curves(run.metrics, s.get("best_step"), s.get("chance_loss"),
                                (s.get("chance") or {}).get("majority_accuracy"))
    html = para(s.get("verdict", "")) if s.get("verdict") else ""
    html += image(png, "training and validation loss by step, with the sweet spot and the chance level")
    html += para("Training loss is measured on the batches the model learns from, validation loss on examples it "
                 "never trains on. The dashed line is chance: the loss of a uniform guess, ln K. The star marks the "
                 "sweet spot, the evaluation with the lowest validation loss, whose weights were kept.", "note")
    gap = s.get("generalisation_gap")
    stop = f"Training stopped at step {s.get('steps')} ({STOPPED.get(s.get('stop_reason'), 'why was not recorded')})."
    windows = s.get("val_windows"), s.get("curve_val_windows")
    if run.is_lm and is_number(windows[0]) and is_number(windows[1]) and windows[1] < windows[0]:
        stop += (f" Validation loss here is on all {count(windows[0])} validation windows; the curve and the verdict "
                 f"above use {count(windows[1])} of them, spread evenly over the text ({num(s.get('curve_val_loss'))} "
                 f"at the sweet spot).")
    if is_number(gap) and run.is_lm:
        side = (f"{num(gap)} higher on text it never trained on" if gap > 0 else
                f"{num(-gap)} lower on text it never trained on: no sign of memorising yet (the two halves of "
                f"a corpus differ in difficulty, so a small negative gap is noise)")
        html += para(f"The generalisation gap: validation loss {num(s.get('val_loss'))} vs training loss "
                     f"{num(s.get('train_loss'))}, {side}. " + stop)
    elif is_number(gap):
        html += para(f"The generalisation gap at the sweet spot (step {s.get('best_step')}): training accuracy "
                     f"{pct(s.get('train_accuracy'))} vs validation {pct(s.get('val_accuracy'))}, a gap of "
                     f"{100 * gap:.1f} points. " + stop)
    else:
        html += para(stop)
    return html


STOPPED = {"early_stop": "early: validation loss had not improved for --patience evaluations",
           "max_steps": "at its last step", "interrupted": "when interrupted",
           "diverged": "as soon as the loss or the gradient became infinite or NaN: training diverged"}


def per_class(run: Run) -> str:
    pc = run.summary.get("per_class")
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
    c = run.summary.get("calibration")
    if not c:
        return ""
    before, after = c.get("before") or {}, c.get("after") or {}
    rows = [[name, fmt(before.get(key)), fmt(after.get(key))] for name, key, fmt in [
        ("ECE (average gap between confidence and accuracy)", "ece", num),
        ("MCE (largest gap in any confidence band)", "mce", num),
        ("NLL (test loss)", "nll", num), ("Brier score", "brier", num),
        ("accuracy", "accuracy", pct), ("average confidence", "mean_confidence", pct)]]
    applied = c.get("applied", True)  # a run from before the check always applied its T
    t = c.get("fitted_temperature", c.get("temperature"))
    scaled = f"with T = {num(t, 2)} ({'applied' if applied else 'not applied'})"
    html = para(c.get("sentence", ""))
    html += table(["on the test set", "as trained", scaled], rows, {1, 2})
    html += para(f"Verdict: as trained, {before.get('verdict', 'not measured')}; {scaled}, "
                 f"{after.get('verdict', 'not measured')}.")
    html += image(plots.reliability(c.get("reliability_before") or [], c.get("reliability_after") or [], t, applied),
                  "reliability diagrams before and after temperature scaling")
    kept = ("was kept because validation examples held out from its fit showed a lower NLL, and is stored in the "
            "saved model" if applied else "was not kept: the saved model gives its scores as trained (T = 1)")
    return html + para(f"Each bar is one confidence band: the model's stated probability on the x-axis, how often it "
                       f"was right on the y-axis. Bars on the diagonal mean 'when it says 80%, it is right 80% of "
                       f"the time'; below it the model is over-confident. T was fitted on the "
                       f"{count(c.get('n_val'))} validation examples and {kept}; the grey "
                       f"bars count the test examples in each band.", "note")


def groups(run: Run) -> str:
    g = run.summary.get("groups")
    if not g or not g.get("columns"):
        return ""
    classes = run.summary.get("classes") or []
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
    c = run.summary.get("control")
    if not isinstance(c, dict):
        return ""
    steps = f" ({c['steps']:,} steps)" if isinstance(c.get("steps"), int) else ""
    html = para(f"The same model was trained again from scratch on shuffled training labels, which carry no "
                f"information: for twice the main run's planned steps{steps}, with no early stopping, so it has every "
                f"chance to memorise. Whatever it scores on training data there is pure memorisation; on validation "
                f"it should stay at chance.")
    html += para(c.get("sentence", ""))
    rows = [["training accuracy on shuffled labels", pct(c.get("train_accuracy"))],
            ["chance on the shuffled training labels", pct(c.get("train_chance_accuracy"))],
            ["validation accuracy (real labels)", pct(c.get("val_accuracy"))],
            ["chance (most common class)", pct(c.get("chance_accuracy"))],
            ["leak suspected", "yes" if c.get("leak_suspected") else "no"]]
    html += table(["memorisation control", ""], rows, {1})
    png = plots.learning_curves(run.control_metrics, None, run.summary.get("chance_loss"),
                                (run.summary.get("chance") or {}).get("majority_accuracy"),
                                train_label="training loss (shuffled labels)")
    return html + image(png, "learning curves of the shuffled-label control run")


def cost(run: Run) -> str:
    c = run.summary.get("cost")
    if not c:
        return ""
    t, i = c.get("train") or {}, c.get("inference") or {}
    steps = t.get("steps") or run.summary.get("steps")
    step_seconds = t["seconds"] / steps if is_number(t.get("seconds")) and steps else None
    per_1000 = (lambda x: x * 1000 if is_number(x) else None)
    rows = [["FLOPs", si(t.get("flops_per_step"), "FLOP"), si(t.get("flops"), "FLOP"), si(i.get("flops"), "FLOP"),
             si(per_1000(i.get("flops")), "FLOP")],
            ["time", seconds(step_seconds), seconds(t.get("seconds")), seconds(i.get("seconds")),
             seconds(per_1000(i.get("seconds")))],
            ["share of the machine's peak (MFU)", "–", pct(t.get("mfu"), 2), pct(i.get("mfu"), 2), "–"],
            ["energy (kWh)", "–", sig(t.get("energy_kwh")), "–", sig(i.get("energy_kwh_per_1000"))],
            ["money", "–", sig(t.get("cost")), "–", sig(i.get("cost_per_1000"))]]
    html = para(c.get("sentence", ""))
    html += table(["", "one training step", "whole training run", "one prediction", "1,000 predictions"], rows, NUMS)
    stages = run.summary.get("stage_seconds")
    if isinstance(stages, dict) and stages:
        html += para("Wall time of this run, stage by stage: " + ", ".join(
            f"{name} {sig(sec, 2)} s" for name, sec in stages.items() if is_number(sec))
            + (f" (all together {sig(run.summary['wall_seconds'], 3)} s)." if is_number(run.summary.get("wall_seconds")) else "."))
    return html + para(
        f"Assumed, not metered: a constant {sig(c.get('power_watts'), 3)} W and {sig(c.get('price_per_kwh'), 3)} per "
        f"kWh (in your currency). The peak is this machine's measured matrix-multiply speed, "
        f"{si(c.get('peak_flops'), 'FLOP/s')}. MFU (model FLOPs utilisation) is the share of that peak the work "
        f"achieved."
        + (f" The whole-run FLOPs include {si(t['eval_flops'], 'FLOP')} spent on validation passes."
           if is_number(t.get("eval_flops")) else "")
        + (f" One training step costs {si(t['flops_per_token'], 'FLOP')} per token." if is_number(t.get("flops_per_token"))
           else "")
        + (f" One prediction here means {i['unit']}." if i.get("unit") else ""), "note")

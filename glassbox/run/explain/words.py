"""What `glassbox explain` prints: the six parts of one step in plain words, each number from explain.json."""
from __future__ import annotations

import math
from pathlib import Path

from glassbox.report.explain_page import memorised_sentence
from glassbox.run.explain.step import CONFIDENT, FD_STEP

SHOWN_LAYERS = 16   # layers listed on the terminal (explain.json and the page have all)


def explain_lines(r: dict, run_dir: Path) -> list[str]:
    return [*batch_lines(r), *prediction_lines(r), *loss_lines(r), *gradient_lines(r), *update_lines(r),
            *history_lines(r), f"written: {run_dir / 'explain.html'} and {run_dir / 'explain.json'}"]


def batch_lines(r: dict) -> list[str]:
    what = "windows of the training text" if r["kind"] == "lm" else "training examples"
    lines = [f"1. the batch: {len(r['batch'])} {what} of {r['data']}, drawn at random (seeded)"]
    for i, b in enumerate(r["batch"], 1):
        where = f" ({b['line'] if not str(b['line']).isdigit() else 'line ' + str(b['line'])})" if b["line"] else ""
        shown = repr(b["input"]) if r["kind"] == "lm" else b["input"]  # a token window's line breaks shown as \n
        lines.append(f"  #{i} {'next token' if r['kind'] == 'lm' else 'label'} {b['label']!r}{where}: {shown}")
    return lines


def prediction_lines(r: dict) -> list[str]:
    p, classes = r["predictions"], r["classes"]
    k = p["n_classes"]
    lines = [f"2. {model_words(r)}'s answers in the step's forward pass ({r['model']}, {r['n_params']:,} weights"
             f"{', none trained yet' if not r['from_run'] else ''}):"]
    for i, (b, guess, conf) in enumerate(zip(r["batch"], p["predicted"], p["confidence"]), 1):
        verdict = "right" if classes[guess] == b["label"] else "wrong"
        lines.append(f"  #{i} predicted {classes[guess]!r} with {conf:.1%} confidence ({verdict})")
    what = "token predictions" if r["kind"] == "lm" else "examples"
    lines.append(f"  wrong on {p['wrong']} of {p['n_predictions']} {what}; mean confidence {p['mean_confidence']:.1%} "
                 f"(a uniform guess: 1/{k} = {1 / k:.1%}); wrong with at least {CONFIDENT:.0%} confidence: "
                 f"{p['confidently_wrong']}")
    if not r["from_run"]:  # the seed's claim is about random weights
        lines.append("  " + confidence_sentence(p))
    return lines


def model_words(r: dict) -> str:
    return f"the model at step {r['start_step']} of {r['from_run']}" if r["from_run"] else "the random model"


def confidence_sentence(p: dict) -> str:
    """Whether the random model is the seed's "airplane with 100% confidence", as measured."""
    k, mean = p["n_classes"], p["mean_confidence"]
    if p["confidently_wrong"]:
        n = p["confidently_wrong"]
        return (f"{n} of its wrong answers {'carries' if n == 1 else 'carry'} at least {CONFIDENT:.0%} confidence: "
                f"random weights can be sure and wrong")
    if mean < 1.5 / k:
        return ("these random weights are unsure rather than confidently wrong: the initialisation keeps the first "
                "outputs small, so every class gets about the same probability")
    return (f"these random weights already favour some classes ({mean:.1%} mean confidence against {1 / k:.1%} for a "
            f"uniform guess), but none of their wrong answers reaches {CONFIDENT:.0%}")


def loss_lines(r: dict) -> list[str]:
    p = r["predictions"]
    losses = ", ".join(f"{x:.3f}" for x in p["loss"])
    one = p["p_true"][0]
    mean = r["first_step"]["loss"]
    what = " (each window's mean over its tokens)" if r["kind"] == "lm" else ""
    smooth = r["label_smoothing"]
    k = p["n_classes"]
    kind = f"cross-entropy with label smoothing {smooth:g}" if smooth else "cross-entropy"
    lines = [f"3. the loss: {kind} per example{what}: {losses}",
             "  in words, for #1 (the last token of its window):" if r["kind"] == "lm" else "  in words, for #1:",
             f"    the model gave the right answer {r['batch'][0]['label']!r} probability {one:.4f}; "
             f"-ln({one:.4f}) = {-math.log(one):.4f} is its cross-entropy"]
    if smooth:
        lines.append(f"    with label smoothing {smooth:g} the target is {1 - smooth + smooth / k:.3f} on the right answer "
                     f"and {smooth / k:.3f} on each other class, so the loss training lowers is {p['loss'][0]:.4f}")
    return [*lines, f"  mean over the batch: {mean:.4f}, the number training lowers; a uniform guess scores "
                    f"ln({k}) = {p['uniform_loss']:.4f}"]


def gradient_lines(r: dict) -> list[str]:
    step = r["first_step"]
    layers = step["layers"]
    lines = ["4. the gradients (backprop: how much each weight moved the loss), per layer:"]
    for row in layers[:SHOWN_LAYERS]:
        lines.append(f"  {row['layer']:<32} {row['weights']:>9,} weights  gradient norm {row['grad_norm']:.3e}  "
                     f"zero {row['zero_grads'] / row['weights']:.0%}")
    if len(layers) > SHOWN_LAYERS:
        lines.append(f"  ... {len(layers) - SHOWN_LAYERS} more in explain.json")
    lines.append(f"  the gradient is the slope: for three weights, backprop's dL/dw next to (L(w+h) - L(w-h)) / 2h "
                 f"with h = {FD_STEP:g}:")
    for w in step["weights"]:
        lines.append(f"    {w['weight']}: backprop {w['backprop']:+.6e}, finite difference {w['finite_difference']:+.6e} "
                     f"(relative difference {w['relative_error']:.1e}"
                     + (f"; at h = {w['h']:g}: a ReLU or max-pool switches inside w ± {FD_STEP:g}" if w.get("h", FD_STEP)
                        != FD_STEP else "") + ")")
    zeros = sum(row["zero_grads"] for row in layers)
    total = sum(row["weights"] for row in layers)
    lines.append(f"  {zeros:,} of {total:,} weights ({zeros / total:.1%}) got a gradient of exactly 0 from this batch: "
                 f"nothing in these {len(r['batch'])} examples reached them")
    return lines


def update_lines(r: dict) -> list[str]:
    step, before, after = r["first_step"], r["before"], r["after"]
    warm = (f" (warm-up: step {r['start_step'] + 1} of {r['warmup_steps']} rises to the peak {r['peak_lr']:g})"
            if r["warmup_steps"] > r["start_step"] + 1 else "")
    clip = (f", clipped to {r['grad_clip']:g}" if step["clipped"] else
            f", under the clip at {r['grad_clip']:g}" if r["grad_clip"] > 0 else "")
    lines = [f"5. the update: {r['optimizer']} with learning rate {step['lr']:.3g}{warm}, weight decay "
             f"{r['weight_decay']:g}; gradient norm {step['grad_norm']:.4f}{clip}"]
    for w in step["weights"]:
        lines.append(f"    {w['weight']}: {w['value']:+.6f} -> {w['after']:+.6f} (moved {w['update']:+.3e} = "
                     f"{w['update'] / step['lr']:+.3f} x lr)")
    if r["optimizer"] == "sgd" and not r["start_step"]:
        lines.append("    SGD's first step moves each weight by lr x its gradient, against it" +
                     (f" (x {1 + r['momentum']:g} with Nesterov momentum {r['momentum']:g})" if r["momentum"] else "")
                     + (", the gradient first scaled down by the clip" if step["clipped"] else "")
                     + (", and weight decay adds lr x decay x w" if r["weight_decay"] else ""))
    if r["optimizer"] == "adamw" and not r["start_step"]:
        lines.append("    AdamW's first step moves each weight by about lr against its gradient's sign, whatever the "
                     "gradient's size (m / sqrt(v) = g / |g| on step 1)")
    ratios = sorted(row["update_ratio"] for row in step["layers"] if row["update_ratio"] is not None)
    median = ratios[len(ratios) // 2]
    where = "above it: large steps" if median > 3e-3 else "below it: small steps" if median < 3e-4 else "near it"
    lines.append(f"  update-to-weight ratio |dw| / |w| per weight matrix: median {median:.1e} (from {ratios[0]:.1e} to "
                 f"{ratios[-1]:.1e}); about 1e-3 is the usual healthy size, and this is {where}")
    lines.append(f"  loss on this batch {before['batch_loss']:.4f} -> {after['batch_loss']:.4f}; on the "
                 f"{r['n_val']:,} validation examples {before['val_loss']:.4f} -> {after['val_loss']:.4f} "
                 f"(evaluation mode, before and after this one step)")
    if abs(before["batch_loss"] - step["loss"]) > 0.01:
        smooth = f"with label smoothing {r['label_smoothing']:g}, " if r["label_smoothing"] else ""
        lines.append(f"  (the step itself saw {step['loss']:.4f} on the batch: {smooth}in training mode, where dropout "
                     f"and batch normalisation, if the model has them, act differently)")
    return lines


def history_lines(r: dict) -> list[str]:
    h = r["history"]
    if h[-1]["step"] <= h[0]["step"] + 1:
        return []
    lines = ["6. the same batch again, step after step:",
             "  step        lr  batch loss  val loss  val acc  grad norm  update ratio  FD error"]
    for row in h:
        acc = "" if row["val_accuracy"] is None else f"{row['val_accuracy']:.3f}"
        lines.append(f"  {row['step']:>4}  {row.get('lr', 0):>8.2e}  {row['batch_loss']:>10.4f}  {row['val_loss']:>8.4f}"
                     f"  {acc:>7}  {row.get('grad_norm', float('nan')):>9.3g}  {row.get('median_update_ratio', float('nan')):>12.1e}"
                     f"  {row.get('max_fd_error', float('nan')):>8.1e}")
    lines.append("  " + memorised_sentence(h[0], h[-1]))
    return lines


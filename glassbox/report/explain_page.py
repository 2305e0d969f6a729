"""RUN/explain.html: one real training step taken apart (glassbox explain), self-contained like the report.

It is drawn from explain.json's numbers (and, for images, the batch's pixels); every figure is an inlined PNG."""
from __future__ import annotations

import math
from pathlib import Path

from glassbox.report.html import capital, esc, image, num, page, pct, table
from glassbox.report.plots import GREY, TRAIN, VAL, label, plt, to_png


DRAWN_LAYERS = 30   # bars per panel: beyond this the figure outgrows the page


def explain_page(r: dict, images=None) -> str:
    sections = [("batch", "1. The batch", batch_section(r, images)),
                ("predictions", "2. The model's answers" if r.get("from_run") else "2. The random model's answers",
                 prediction_section(r)),
                ("loss", "3. The loss", loss_section(r)),
                ("gradients", "4. The gradients", gradient_section(r)),
                ("update", "5. The update", update_section(r))]
    if r["history"][-1]["step"] > r["history"][0]["step"] + 1:
        sections.append(("steps", "6. The same batch, step after step", history_section(r)))
    subtitle = (f"One real training step of a {r['model']} on {len(r['batch'])} examples of {r['data']}, "
                f"computed from the real tensors (float64).")
    return page(f"glassbox explain: {Path(str(r['data'])).name or r['data']}", subtitle, sections)


def batch_section(r: dict, images) -> str:
    rows = [[i, b["label"], b["input"], b["line"]] for i, b in enumerate(r["batch"], 1)]
    return table(["#", "label", "input", "line or file"], rows, numeric={0}) + image(thumbnails(images, r), "the batch's images")


def thumbnails(images, r: dict) -> str | None:
    if images is None:
        return None
    fig, axes = plt.subplots(1, len(images), figsize=(1.1 * len(images), 1.5))
    for ax, img, b in zip(list(getattr(axes, "flat", [axes])), images, r["batch"]):
        ax.imshow(img.transpose(1, 2, 0).squeeze(), cmap="gray" if img.shape[0] == 1 else None)
        ax.set_title(label(b["label"], 8), fontsize=8)
        ax.axis("off")
    return to_png(fig)


def prediction_section(r: dict) -> str:
    p, classes = r["predictions"], r["classes"]
    rows = [[i, b["label"], classes[g], pct(c), num(t), num(loss)]
            for i, (b, g, c, t, loss) in enumerate(zip(r["batch"], p["predicted"], p["confidence"], p["p_true"],
                                                       p["loss"]), 1)]
    k = p["n_classes"]
    text = (f"Wrong on {p['wrong']} of {p['n_predictions']} predictions; mean confidence {pct(p['mean_confidence'])} "
            f"(a uniform guess: 1/{k} = {pct(1 / k)}); wrong with at least 90% confidence: {p['confidently_wrong']}.")
    loss = f"loss (label smoothing {r['label_smoothing']:g})" if r.get("label_smoothing") else "loss"
    return (table(["#", "label", "predicted", "confidence", "p(right answer)", loss], rows, numeric={0, 3, 4, 5})
            + f"<p>{esc(text)}</p>")


def loss_section(r: dict) -> str:
    p = r["predictions"]
    one = p["p_true"][0]
    return (f"<p>For example #1 the model gave the right answer, {esc(repr(r['batch'][0]['label']))}, probability "
            f"{num(one)}; its cross-entropy is −ln({num(one)}) = {num(-math.log(one))}"
            + (f" (with label smoothing {r['label_smoothing']:g}, the loss training lowers is {num(p['loss'][0])})"
               if r.get("label_smoothing") else "") + ".</p>"
            f"<p>The batch's loss is the mean of the eight: {num(r['first_step']['loss'])}; a uniform guess over "
            f"{p['n_classes']} classes scores ln {p['n_classes']} = {num(p['uniform_loss'])}.</p>")


def gradient_section(r: dict) -> str:
    step = r["first_step"]
    layers = step["layers"]
    rows = [[w["weight"], f"{w['backprop']:+.6e}", f"{w['finite_difference']:+.6e}", f"{w['relative_error']:.1e}"]
            for w in step["weights"]]
    zeros = sum(x["zero_grads"] for x in layers) / sum(x["weights"] for x in layers)
    return ("<p>Backprop's gradient next to a finite difference, (L(w+h) − L(w−h)) / 2h: the gradient is the slope "
            "of the loss along each weight.</p>"
            + table(["weight", "backprop dL/dw", "finite difference", "relative difference"], rows, numeric={1, 2, 3})
            + f"<p>{pct(zeros)} of the weights got a gradient of exactly 0 from this batch.</p>"
            + image(layer_bars(layers[:DRAWN_LAYERS]), "gradient norm and update-to-weight ratio per layer")
            + (f'<p class="note">The first {DRAWN_LAYERS} of {len(layers)} layers; explain.json has every one.</p>'
               if len(layers) > DRAWN_LAYERS else ""))


def layer_bars(layers: list[dict]) -> str:
    names = [label(x["layer"], 28) for x in layers]
    fig, (a, b) = plt.subplots(1, 2, figsize=(7.5, 0.28 * len(layers) + 1.2), sharey=True)
    a.barh(names, [max(x["grad_norm"], 1e-12) for x in layers], color=TRAIN)
    a.set_xscale("log")
    a.set_xlabel("gradient norm")
    b.barh(names, [x["update_ratio"] or float("nan") for x in layers], color=VAL)
    b.axvline(1e-3, color=GREY, ls="--", lw=1)
    b.set_xscale("log")
    b.set_xlabel("update / weight, matrices (1e-3 dashed)")
    a.invert_yaxis()
    a.tick_params(axis="y", labelsize=7)
    return to_png(fig)


def update_section(r: dict) -> str:
    step, before, after = r["first_step"], r["before"], r["after"]
    rows = [[w["weight"], f"{w['value']:+.6f}", f"{w['after']:+.6f}", f"{w['update']:+.3e}",
             f"{w['update'] / step['lr']:+.3f}"] for w in step["weights"]]
    losses = table(["", "before", "after"], [["loss on the batch", num(before["batch_loss"]), num(after["batch_loss"])],
                                             [f"loss on validation ({r['n_val']:,})", num(before["val_loss"]),
                                              num(after["val_loss"])]], numeric={1, 2})
    return (f"<p>{esc(r['optimizer'])}, learning rate {step['lr']:.3g} (peak {r['peak_lr']:g}, warm-up "
            f"{r['warmup_steps']} steps); gradient norm {num(step['grad_norm'])}.</p>"
            + table(["weight", "before", "after", "moved", "moved / lr"], rows, numeric={1, 2, 3, 4}) + losses)


def history_section(r: dict) -> str:
    h = r["history"]
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    ax.plot([x["step"] for x in h], [x["batch_loss"] for x in h], color=TRAIN, marker="o", ms=3, label="this batch")
    ax.plot([x["step"] for x in h], [x["val_loss"] for x in h], color=VAL, marker="o", ms=3, label="validation")
    ax.axhline(r["predictions"]["uniform_loss"], color=GREY, ls="--", lw=1, label="uniform guess, ln K")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (evaluation mode)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, frameon=False)
    ax.grid(alpha=0.25)
    rows = [[x["step"], f"{x.get('lr', 0):.2e}", num(x["batch_loss"]), num(x["val_loss"]), pct(x["val_accuracy"]),
             f"{x.get('median_update_ratio', float('nan')):.1e}", f"{x.get('max_fd_error', float('nan')):.1e}"]
            for x in h]
    return (image(to_png(fig), "loss on the batch and on validation per step")
            + table(["step", "lr", "batch loss", "val loss", "val accuracy", "update ratio", "FD error"], rows,
                    numeric=set(range(7))) + f"<p>{esc(capital(memorised_sentence(h[0], h[-1])))}.</p>")


def memorised_sentence(start: dict, end: dict) -> str:
    """What the batch's loss against validation's says after the steps."""
    batch_drop, val_drop = start["batch_loss"] - end["batch_loss"], start["val_loss"] - end["val_loss"]
    said = (f"after {end['step'] - start['step']} steps on this one batch its loss went {start['batch_loss']:.4f} -> "
            f"{end['batch_loss']:.4f}, validation loss {start['val_loss']:.4f} -> {end['val_loss']:.4f}: ")
    if val_drop < 0:
        return said + "validation got worse while the batch got better: the model memorised these examples"
    if batch_drop > 0 and val_drop < 0.25 * batch_drop:
        return said + (f"the batch's loss fell {batch_drop / max(val_drop, 1e-12):.0f} times as far as validation's: "
                       f"a single batch can be memorised; only validation says what carries over")
    return said + "validation fell with the batch: so far what it learned from these examples carries over"

"""RUN/curve.html and the terminal lines of `glassbox curve`: test accuracy (or a language model's validation
loss) against the number of training examples, or a group's figures with and without --skew, from curve.json."""
from __future__ import annotations

from pathlib import Path

from glassbox.report.html import capital, esc, image, num, page, pct, table
from glassbox.report.plots import GREY, TRAIN, VAL, plt, to_png


def curve_lines(r: dict) -> list[str]:
    if r["task"] == "skew":
        return skew_lines(r)
    lm = r["task"] == "lm"
    spread = "(range)" if r["repeats"] > 1 else "       "
    head = (f"  examples  test acc {spread}          test loss  train acc  val acc  gap (train - val)" if not lm else
            "    tokens  val loss  perplexity  train loss  gap (val - train)")
    lines = [f"learning curve: the same {'GPT' if lm else 'model'}, {r['steps']:,} updates at most per size "
             f"(each stopped at its own sweet spot), {repeats_said(r['repeats'])}", head]
    for p in r["points"]:
        if lm:
            lines.append(f"  {p['n']:>8,}  {p['val_loss']:>8.4f}  {p['perplexity']:>10.2f}  {p['train_loss']:>10.4f}  "
                         f"{p['gap']:>+8.4f}")
        else:
            lo, hi = p["test_accuracy_range"]
            spread = f"({lo:.3f}-{hi:.3f})" if r["repeats"] > 1 else ""
            lines.append(f"  {p['n']:>8,}  {p['test_accuracy']:.4f} {spread:<15}  {p['test_loss']:>9.4f}  "
                         f"{p['train_accuracy']:>9.4f}  {p['val_accuracy']:>7.4f}  {p['gap']:+.4f}")
    chance = (f"chance: loss ln({r['vocab_size']}) = {r['chance_loss']:.4f}" if lm else
              f"chance: always the majority class scores {r['chance_accuracy']:.4f} on test; loss ln K = "
              f"{r['chance_loss']:.4f}")
    return [*lines, chance, r["sentence"]]


def repeats_said(repeats: int) -> str:
    if repeats == 1:
        return "one repeat (--repeats 1: verdicts allow for the test examples' noise only, not another seed's)"
    return f"{repeats} repeats, each its own seed"


def skew_lines(r: dict) -> list[str]:
    s = r["skew"]
    lines = [f"skew: {s['column']}={s['value']} cut from {s['share_before']:.1%} to {s['share_after']:.1%} of the "
             f"training split ({s['members_before']:,} -> {s['members_after']:,} examples; the other {s['others']:,} "
             f"unchanged); validation and test untouched; {r['steps']:,} updates at most each, "
             f"{repeats_said(r['repeats'])}",
             "  test examples                 model         accuracy  loss    ECE"]
    for part in ("group", "rest"):
        for which in ("unskewed", "skewed"):
            f = r[which][part]
            lines.append(f"  {f['name'][:26]:<26} ({f['n']:>5,})  {which:<12}  {f['accuracy']:.4f}    {f['loss']:.4f}  "
                         f"{f['ece']:.4f}")
    return [*lines, r["sentence"]]


def curve_page(r: dict) -> str:
    if r["task"] == "skew":
        body = skew_body(r)
        title, what = "Skewed training set", f"{r['skew']['column']}={r['skew']['value']}"
    else:
        body = curve_body(r)
        title, what = "Learning curve", "more examples"
    sub = f"What {what} bought on {r['data']}: every number measured by glassbox curve (seed {r['seed']})."
    return page(f"glassbox curve: {Path(str(r['data'])).name or r['data']}", sub, [("curve", title, body)])


def curve_body(r: dict) -> str:
    lm = r["task"] == "lm"
    pts = r["points"]
    if lm:
        rows = [[f"{p['n']:,}", num(p["val_loss"]), num(p["perplexity"], 2), num(p["train_loss"]), num(p["gap"])]
                for p in pts]
        head = ["training tokens", "val loss", "perplexity", "train loss", "gap (val − train)"]
        chance = f"Chance: a uniform guess over {r['vocab_size']} tokens scores ln {r['vocab_size']} = {num(r['chance_loss'])}."
    else:
        spread = r["repeats"] > 1
        rows = [[f"{p['n']:,}", pct(p["test_accuracy"]),
                 *([f"{pct(p['test_accuracy_range'][0])} – {pct(p['test_accuracy_range'][1])}"] if spread else []),
                 num(p["test_loss"]), pct(p["train_accuracy"]), pct(p["val_accuracy"]), pct(p["gap"])] for p in pts]
        head = ["training examples", "test accuracy", *(["range over repeats"] if spread else []), "test loss",
                "train accuracy", "val accuracy", "gap (train − val)"]
        chance = (f"Chance: always answering the commonest class scores {pct(r['chance_accuracy'])} on test; a uniform "
                  f"guess has loss ln K = {num(r['chance_loss'])}.")
    return (image(curve_plot(r), "learning curve by amount of training data")
            + table(head, rows, numeric=set(range(1, len(head)))) + f"<p>{esc(chance)}</p>"
            + f"<p>{esc(capital(r['sentence']))}</p>")


def curve_plot(r: dict) -> str:
    """Accuracy (a classifier) and loss against the amount of training data, with the chance lines."""
    lm, pts = r["task"] == "lm", r["points"]
    xs = [p["n"] for p in pts]
    fig, axes = plt.subplots(1, 1 if lm else 2, figsize=(6.5 if lm else 8.5, 3.6))
    loss_ax = axes if lm else axes[1]
    if not lm:
        acc = [p["test_accuracy"] for p in pts]
        low = [a - p["test_accuracy_range"][0] for a, p in zip(acc, pts)]
        high = [p["test_accuracy_range"][1] - a for a, p in zip(acc, pts)]
        axes[0].errorbar(xs, acc, yerr=[low, high], color=VAL, marker="o", capsize=3, label="test")
        axes[0].plot(xs, [p["train_accuracy"] for p in pts], color=TRAIN, marker="o", ls="--", label="training")
        axes[0].axhline(r["chance_accuracy"], color=GREY, ls=":", label="commonest class")
        axes[0].set_ylabel("accuracy")
    key, name = ("val_loss", "validation") if lm else ("test_loss", "test")
    loss_ax.plot(xs, [p[key] for p in pts], color=VAL, marker="o", label=name)
    if lm:
        loss_ax.plot(xs, [p["train_loss"] for p in pts], color=TRAIN, marker="o", ls="--", label="training")
    loss_ax.axhline(r["chance_loss"], color=GREY, ls=":", label="uniform guess, ln K")
    loss_ax.set_ylabel("loss (nats" + (" per token)" if lm else ")"))
    loss_ax.set_ylim(bottom=0)
    for ax in ([axes] if lm else axes):
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [f"{x:,}" for x in xs], fontsize=7, rotation=30)
        ax.minorticks_off()
        ax.set_xlabel("training tokens" if lm else "training examples")
        ax.legend(fontsize=8, frameon=False)
        ax.grid(alpha=0.25)
    fig.tight_layout()
    return to_png(fig)


def skew_body(r: dict) -> str:
    s = r["skew"]
    rows = []
    for part in ("group", "rest"):
        for which in ("unskewed", "skewed"):
            f = r[which][part]
            rows.append([f"{f['name']} ({f['n']:,} test examples)", which, pct(f["accuracy"]), num(f["loss"]),
                         num(f["ece"])])
    intro = (f"{s['column']}={s['value']} was cut from {pct(s['share_before'])} to {pct(s['share_after'])} of the "
             f"training split ({s['members_before']:,} → {s['members_after']:,} examples); everything else, validation "
             f"and test included, is the same for both models.")
    return (f"<p>{esc(intro)}</p>" + table(["test examples", "model", "accuracy", "loss", "ECE"], rows,
                                            numeric={2, 3, 4})
            + f"<p>{esc(capital(r['sentence']))}</p>")

"""The report's figures, drawn with matplotlib (Agg) and returned as base64 PNG text to inline.

Each function takes plain JSON data from the run folder and returns None when there is nothing
to draw, so a section can simply leave its figure out.
"""
from __future__ import annotations

import base64
import io
import math

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402

DPI = 110          # 7.5-inch figures come out about 825 px wide: sharp in an 880 px column
TRAIN, VAL, GREY, BEST = "#2a5db0", "#d9622b", "#888888", "#2d8a2d"


def to_png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def label(text, width: int = 18) -> str:
    """A user's name as a plot label: shortened, and '$' kept from starting matplotlib's maths mode."""
    text = str(text)
    text = text if len(text) <= width else text[: width - 1] + "…"
    return text.replace("$", r"\$")


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _series(metrics: list[dict], key: str) -> tuple[list, list]:
    pairs = [(m["step"], m[key]) for m in metrics if _finite(m.get(key)) and _finite(m.get("step"))]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def learning_curves(metrics: list[dict], best_step=None, chance_loss=None, majority_accuracy=None,
                    train_label: str = "training loss", val_label: str = "validation loss") -> str | None:
    """Loss against step (train, validation, chance ln K, the sweet spot) and, when logged,
    validation accuracy against step with the majority-class accuracy."""
    train_x, train_y = _series(metrics, "train_loss")
    val_x, val_y = _series(metrics, "val_loss")
    acc_x, acc_y = _series(metrics, "val_accuracy")
    if not val_x and not train_x:
        return None
    panels = 2 if acc_x else 1
    fig, axes = plt.subplots(1, panels, figsize=(7.5 if panels == 2 else 6.5, 3.4), squeeze=False)
    ax = axes[0][0]
    ax.plot(train_x, train_y, color=TRAIN, lw=1.6, label=train_label)
    ax.plot(val_x, val_y, color=VAL, lw=1.6, marker="o", ms=3, label=val_label)
    if _finite(chance_loss):
        ax.axhline(chance_loss, color=GREY, ls="--", lw=1, label=f"chance: ln K = {chance_loss:.3f}")
    if best_step is not None and best_step in val_x:
        ax.axvline(best_step, color=BEST, ls=":", lw=1.2)
        ax.plot([best_step], [val_y[val_x.index(best_step)]], marker="*", ms=13, color=BEST,
                ls="none", label=f"sweet spot (step {best_step})")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (cross-entropy)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, frameon=False)
    ax.grid(alpha=0.25)
    if panels == 2:
        ax = axes[0][1]
        ax.plot(acc_x, acc_y, color=VAL, lw=1.6, marker="o", ms=3, label="validation accuracy")
        if _finite(majority_accuracy):
            ax.axhline(majority_accuracy, color=GREY, ls="--", lw=1,
                       label=f"majority class: {majority_accuracy:.3f}")
        if best_step is not None and best_step in acc_x:
            ax.axvline(best_step, color=BEST, ls=":", lw=1.2)
        ax.set_xlabel("step")
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=8, frameon=False, loc="best")
        ax.grid(alpha=0.25)
    fig.tight_layout()
    return to_png(fig)


def confusion(matrix: list[list[int]], names: list[str]) -> str | None:
    """Rows: true class, columns: predicted class; counts written in each cell when they fit."""
    k = len(matrix)
    if k == 0 or k > 60:
        return None
    size = min(7.0, max(3.4, 0.3 * k + 1.8))
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    ax.imshow(matrix, cmap="Blues")
    ticks = list(range(k))
    ax.set_xticks(ticks, [label(n, 12) for n in names], rotation=90 if k > 6 else 0, fontsize=8)
    ax.set_yticks(ticks, [label(n, 12) for n in names], fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if k <= 20:
        top = max(max(row) for row in matrix) or 1
        for i, row in enumerate(matrix):
            for j, n in enumerate(row):
                if n or k <= 10:  # a zero says "never confused" in a small matrix; in a big one it is clutter
                    ax.text(j, i, str(n), ha="center", va="center", fontsize=8,
                            color="white" if n > top / 2 else "black" if n else "0.6")
    fig.tight_layout()
    return to_png(fig)


def reliability(before: list[dict], after: list[dict], temperature=None) -> str | None:
    """Accuracy against confidence per bin, before and after temperature scaling, with the
    diagonal of perfect calibration and, below each, how many test examples fell in each bin."""
    if not before:
        return None
    fig, axes = plt.subplots(2, 2, figsize=(7.5, 4.8), sharex=True,
                             gridspec_kw={"height_ratios": [3, 1]})
    after_title = "after temperature scaling" + (f" (T = {temperature:.2f})" if _finite(temperature) else "")
    for col, (bins, title) in enumerate([(before, "before (as trained)"), (after or [], after_title)]):
        ax, hist = axes[0][col], axes[1][col]
        ax.plot([0, 1], [0, 1], color=GREY, ls="--", lw=1, label="perfect calibration")
        full = [b for b in bins if b.get("count") and _finite(b.get("accuracy"))]
        width = [b["upper"] - b["lower"] for b in full]
        ax.bar([b["lower"] for b in full], [b["accuracy"] for b in full], width=width, align="edge",
               color=TRAIN, alpha=0.75, edgecolor="white", label="accuracy in bin")
        ax.plot([b["mean_confidence"] for b in full], [b["accuracy"] for b in full], "o", ms=3,
                color=VAL, label="(mean confidence, accuracy)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.25)
        if col == 0:
            ax.set_ylabel("accuracy")
            ax.legend(fontsize=7, frameon=False, loc="upper left")
        hist.bar([b["lower"] for b in bins], [b.get("count") or 0 for b in bins],
                 width=[b["upper"] - b["lower"] for b in bins], align="edge", color=GREY, edgecolor="white")
        for b in bins:
            if b.get("count"):
                hist.text((b["lower"] + b["upper"]) / 2, b["count"], str(b["count"]), ha="center",
                          va="bottom", fontsize=6)
        hist.set_xlabel("confidence (probability of the predicted class)")
        hist.set_ylim(0, max([b.get("count") or 0 for b in bins] + [1]) * 1.35)
        if col == 0:
            hist.set_ylabel("examples")
    fig.tight_layout()
    return to_png(fig)


def group_accuracy(column: str, report: dict) -> str | None:
    """One dot per group with its 95% interval, the overall accuracy as a line; small groups grey."""
    groups = [g for g in report.get("groups", []) if _finite(g.get("accuracy"))]
    if not groups:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 0.4 * len(groups) + 1.0))
    for y, g in enumerate(groups):
        ci = g.get("accuracy_ci") or [g["accuracy"], g["accuracy"]]
        color = GREY if g.get("too_small") else TRAIN
        ax.errorbar(g["accuracy"], y, xerr=[[g["accuracy"] - ci[0]], [ci[1] - g["accuracy"]]], fmt="o",
                    color=color, capsize=3)
    overall = (report.get("overall") or {}).get("accuracy")
    if _finite(overall):
        ax.axvline(overall, color=VAL, ls="--", lw=1, label=f"overall {overall:.3f}")
        ax.legend(fontsize=8, frameon=False, loc="best")
    ax.set_ylim(len(groups) - 0.5, -0.5)  # first group on top, half a row of room each side
    ax.set_yticks(range(len(groups)), [label(g["value"], 24) for g in groups], fontsize=8)
    ax.set_xlabel(f"test accuracy by {label(column, 30)} (95% interval; grey: too small to rank)")
    ax.grid(alpha=0.25, axis="x")
    fig.tight_layout()
    return to_png(fig)

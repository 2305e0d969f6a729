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
    """Loss against step (train, validation, chance ln K, the sweet spot) and, when logged, validation accuracy
    against step with the majority-class accuracy. When the first fall dwarfs what comes after it, a third panel
    zooms on the evaluations after it, where the sweet spot and any rise of validation loss are decided."""
    train_x, train_y = _series(metrics, "train_loss")
    val_x, val_y = _series(metrics, "val_loss")
    acc_x, acc_y = _series(metrics, "val_accuracy")
    if not val_x and not train_x:
        return None
    zoom = _zoom_start(val_x, val_y)
    rows, cols = (2 if zoom is not None else 1), (2 if acc_x else 1)
    fig = plt.figure(figsize=(7.5 if cols == 2 else 6.5, 3.4 * rows))
    grid = fig.add_gridspec(rows, cols)
    ax = fig.add_subplot(grid[0, 0])
    _loss_panel(ax, train_x, train_y, val_x, val_y, best_step, train_label, val_label, chance_loss)
    ax.set_ylim(bottom=0)
    if acc_x:
        ax = fig.add_subplot(grid[0, 1])
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
    if zoom is not None:
        ax = fig.add_subplot(grid[1, :])
        keep = lambda xs, ys: ([x for x in xs if x >= zoom], [y for x, y in zip(xs, ys) if x >= zoom])  # noqa: E731
        (tx, ty), (vx, vy) = keep(train_x, train_y), keep(val_x, val_y)
        _loss_panel(ax, tx, ty, vx, vy, best_step, train_label, val_label, None)
        low, high = min(vy[1:]), max(vy[1:])  # the validation losses after the fall set the scale
        pad = 0.3 * (high - low) or 0.05 * high
        ax.set_ylim(low - pad, high + pad)
        gap = (vx[-1] - vx[1]) / max(1, len(vx) - 2)
        ax.set_xlim(vx[1] - gap / 2, vx[-1] + gap / 2)
        ax.set_title(f"validation loss from step {vx[1]} on, zoomed (the y axis does not start at 0; training loss "
                     f"may run below it)", fontsize=9)
    fig.tight_layout()
    return to_png(fig)


def _loss_panel(ax, train_x, train_y, val_x, val_y, best_step, train_label, val_label, chance_loss) -> None:
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
    ax.legend(fontsize=8, frameon=False)
    ax.grid(alpha=0.25)


ZOOM_RATIO = 4  # zoom when the first fall of validation loss is this many times larger than all that follows it


def _zoom_start(val_x: list, val_y: list):
    """The step from which to zoom: the first evaluation after the steepest fall of validation loss, when what
    follows spans under 1/ZOOM_RATIO of the whole range (on a full-height axis it would look flat); else None."""
    if len(val_y) < 4:
        return None
    drops = [val_y[i] - val_y[i + 1] for i in range(len(val_y) - 1)]
    start = max(range(len(drops)), key=drops.__getitem__) + 1
    after = val_y[start:]
    if len(after) < 3 or max(val_y) - min(val_y) <= 0:
        return None
    return val_x[start] if (max(after) - min(after)) * ZOOM_RATIO < max(val_y) - min(val_y) else None


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


FEW = 10  # a reliability bin with fewer examples than this is drawn faint: its accuracy is mostly noise


def reliability(before: list[dict], after: list[dict], temperature=None, applied: bool = True) -> str | None:
    """Accuracy against confidence per bin, before and after temperature scaling, with the diagonal of perfect
    calibration and, below each, how many test examples fell in each bin. Bins of fewer than FEW examples are
    faint and hatched. When no example is less than 50% confident (always so with two classes), the confidence
    axis starts at 0.5."""
    return to_png(reliability_figure(before, after, temperature, applied)) if before else None


def confidence_axis_start(*bin_lists: list[dict]) -> float:
    """0.5 when no example's confidence is below one half (always so with two classes), else 0."""
    populated = [b for bins in bin_lists for b in bins if b.get("count")]
    return 0.5 if populated and min(b.get("mean_confidence", 0) for b in populated) >= 0.5 else 0.0


def reliability_figure(before: list[dict], after: list[dict], temperature=None, applied: bool = True):
    x_min = confidence_axis_start(before, after or [])
    fig, axes = plt.subplots(2, 2, figsize=(7.5, 4.8), sharex=True,
                             gridspec_kw={"height_ratios": [3, 1]})
    t = f" (T = {temperature:.2f})" if _finite(temperature) else ""
    after_title = f"after temperature scaling{t}" if applied else f"if scaled{t}: not applied, a what-if"
    for col, (bins, title) in enumerate([(before, "before (as trained)"), (after or [], after_title)]):
        ax, hist = axes[0][col], axes[1][col]
        ax.plot([x_min, 1], [x_min, 1], color=GREY, ls="--", lw=1, label="perfect calibration")
        full = [b for b in bins if b.get("count") and _finite(b.get("accuracy"))]
        for few in (False, True):
            part = [b for b in full if (b["count"] < FEW) == few]
            ax.bar([b["lower"] for b in part], [b["accuracy"] for b in part],
                   width=[b["upper"] - b["lower"] for b in part], align="edge", color=TRAIN,
                   alpha=0.2 if few else 0.75, hatch="///" if few else None, edgecolor="white",
                   label=f"fewer than {FEW} examples (mostly noise)" if few else "accuracy in bin")
        ax.plot([b["mean_confidence"] for b in full], [b["accuracy"] for b in full], "o", ms=3,
                color=VAL, label="(mean confidence, accuracy)")
        ax.set_xlim(x_min, 1)
        ax.set_ylim(0, 1)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.25)
        if col == 0:
            ax.set_ylabel("accuracy")
            ax.legend(fontsize=7, frameon=False, loc="upper left")
        hist.bar([b["lower"] for b in bins], [b.get("count") or 0 for b in bins],
                 width=[b["upper"] - b["lower"] for b in bins], align="edge", color=GREY, edgecolor="white")
        for b in bins:  # upright counts: side by side they never run into each other
            if b.get("count") and b["upper"] > x_min:
                hist.text((max(b["lower"], x_min) + b["upper"]) / 2, b["count"], f" {b['count']}", ha="center", va="bottom",
                          rotation=90, fontsize=6)
        hist.set_xlabel("confidence (probability of the predicted class)")
        hist.set_ylim(0, max([b.get("count") or 0 for b in bins] + [1]) * 1.9)
        if col == 0:
            hist.set_ylabel("examples")
    fig.tight_layout()
    return fig


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


def residual_plots(true: list[float], predicted: list[float], half_width=None) -> str | None:
    """Predicted against true (the diagonal is exact) and residual against predicted (0 is exact), with the
    prediction interval's band where it is finite."""
    if not true:
        return None
    residual = [t - p for t, p in zip(true, predicted)]
    band = half_width if _finite(half_width) else None
    fig, (left, right) = plt.subplots(1, 2, figsize=(7.5, 3.4))
    low, high = min(min(true), min(predicted)), max(max(true), max(predicted))
    left.plot([low, high], [low, high], color=GREY, ls="--", lw=1, label="exact")
    if band is not None:
        left.fill_between([low, high], [low - band, high - band], [low + band, high + band], color=GREY, alpha=0.12,
                          label="prediction interval")
    left.scatter(true, predicted, s=6, alpha=0.5, color=TRAIN)
    left.set_xlabel("true value")
    left.set_ylabel("predicted value")
    left.legend(fontsize=7, frameon=False, loc="upper left")
    right.axhline(0, color=GREY, lw=1)
    if band is not None:
        right.axhspan(-band, band, color=GREY, alpha=0.12)
    right.scatter(predicted, residual, s=6, alpha=0.5, color=VAL)
    right.set_xlabel("predicted value")
    right.set_ylabel("residual (true - predicted)")
    for ax in (left, right):
        ax.grid(alpha=0.25)
    fig.tight_layout()
    return to_png(fig)

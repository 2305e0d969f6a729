"""The report's plots show what its sentences say: the sweet spot and a rise of validation loss visible at their
scale, confidence axes that start where confidences can be, and bins too small to trust drawn as such."""
from __future__ import annotations

import base64
import io

from PIL import Image

from glassbox.report import plots

# SMS spam's real curve (glassbox train SMSSpamCollection, seed 0): a fall from 0.693 to 0.086, then a rise of
# 0.006 after the sweet spot at step 840, which a 0-0.7 axis draws flat.
SPAM = [(0, 0.6931), (140, 0.0857), (280, 0.0567), (420, 0.0468), (560, 0.0458), (700, 0.0474), (840, 0.0444),
        (980, 0.0496), (1120, 0.0473), (1260, 0.0502), (1400, 0.0485), (1540, 0.0499)]


def metrics(pairs):
    return [{"step": s, "val_loss": v, "train_loss": None if s == 0 else v * 0.5, "val_accuracy": 0.9} for s, v in pairs]


def png_size(b64: str) -> tuple[int, int]:
    return Image.open(io.BytesIO(base64.b64decode(b64))).size


def test_a_curve_whose_first_fall_dwarfs_the_rest_gets_a_zoomed_panel():
    assert plots._zoom_start([s for s, _ in SPAM], [v for _, v in SPAM]) == 140
    steady = [(s, 1.0 - 0.08 * i) for i, s in enumerate(range(0, 1200, 100))]  # a straight fall: no zoom needed
    assert plots._zoom_start([s for s, _ in steady], [v for _, v in steady]) is None
    w_zoom, h_zoom = png_size(plots.learning_curves(metrics(SPAM), best_step=840, chance_loss=0.6931))
    w_flat, h_flat = png_size(plots.learning_curves(metrics(steady), best_step=1100, chance_loss=0.6931))
    assert h_zoom / w_zoom > 1.5 * h_flat / w_flat  # a second row of panels


def bins(counts_conf_acc):
    edges = [i / 15 for i in range(16)]
    out = []
    for i in range(15):
        count, conf, acc = counts_conf_acc.get(i, (0, None, None))
        out.append({"lower": edges[i], "upper": edges[i + 1], "count": count, "mean_confidence": conf,
                    "accuracy": acc})
    return out


def test_reliability_axis_starts_at_one_half_when_no_confidence_is_below_it_and_thin_bins_are_faint():
    binary = bins({7: (2, 0.51, 0.0), 8: (2, 0.57, 1.0), 13: (12, 0.91, 1.0), 14: (536, 0.995, 1.0)})
    assert plots.confidence_axis_start(binary, binary) == 0.5
    ten_classes = bins({4: (3, 0.31, 0.33), 14: (170, 0.99, 0.99)})
    assert plots.confidence_axis_start(ten_classes) == 0.0
    fig = plots.reliability_figure(binary, binary)
    ax = fig.axes[0]
    assert ax.get_xlim() == (0.5, 1.0)
    bars = [p for p in ax.patches if p.get_height() > 0]
    faint = sorted(round(p.get_x() * 15) for p in bars if p.get_alpha() < 0.5)
    solid = sorted(round(p.get_x() * 15) for p in bars if p.get_alpha() >= 0.5)
    assert faint == [8] and solid == [13, 14]  # bins of 2 examples faint (bin 7's accuracy is 0: no bar)
    hist = fig.axes[2]
    labels = [t for t in hist.texts]
    assert [t.get_text().strip() for t in labels] == ["2", "2", "12", "536"]
    assert all(t.get_rotation() == 90 for t in labels)  # upright: 996 and 1009 side by side never merge
    assert hist.get_ylim()[1] > 536 * 1.5  # room above the tallest bar for its count


def test_a_temperature_that_was_not_kept_is_titled_as_a_what_if():
    binary = bins({13: (12, 0.91, 1.0), 14: (536, 0.995, 1.0)})
    assert plots.reliability_figure(binary, binary, 1.16).axes[1].get_title() == "after temperature scaling (T = 1.16)"
    what_if = plots.reliability_figure(binary, binary, 1.16, applied=False).axes[1].get_title()
    assert what_if == "if scaled (T = 1.16): not applied, a what-if"

"""The classification task: what a run that sorts examples into classes trains on and reports. Its loss is
cross-entropy (label smoothing trains, plain cross-entropy is reported), its chance level ln K and the majority class;
after training: loss and accuracy on each split, calibration, per-class and per-group figures, the shuffled-label
control, and the artifact's classes and temperature. classifier.py runs it; regression.py is the other task it runs."""
from __future__ import annotations

from pathlib import Path

import torch

from glassbox.config import TrainConfig
from glassbox.evaluate.temperature import manifest_record
from glassbox.run.train.after_training import classifier_figures, run_control
from glassbox.run.train.finish import RUN_FILES, folder_lines, training_record
from glassbox.train.loop import chance_level, cross_entropy, evaluate, predict_logits

PARTS = ("train", "val", "test")


class Classify:
    name = "classify"
    chance_fn = staticmethod(chance_level)  # ln K, the majority class, the untrained model's loss

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.loss_fn = cross_entropy  # reported; the loop trains on label smoothing's version where it is set
        self.fit_loss = None          # the loop's default: cross-entropy, with --label-smoothing if given

    def targets(self, split: dict) -> dict:
        """Each part's labels, class indices (N,)."""
        return {name: torch.from_numpy(part.labels) for name, part in split.items()}

    def scores(self, result, X: dict, Y: dict, split: dict, ex, arch: str, audit: dict) -> dict:
        """Loss and accuracy on each split at the sweet spot, with what the loop measured."""
        model = result.model
        device = next(model.parameters()).device
        s = {name: evaluate(model, (X[name][:5000], Y[name][:5000]) if name == "train" else (X[name], Y[name]),
                            device=device) for name in PARTS}  # training figures on (up to) 5,000 of its examples
        return {
            "task": self.name, **training_record(result, ex, arch, self.cfg, audit), "classes": ex.classes,
            "n_examples": {k: len(v) for k, v in Y.items()},
            **{f"{name}_loss": s[name][0] for name in PARTS}, **{f"{name}_accuracy": s[name][1] for name in PARTS},
            "generalisation_gap": s["train"][1] - s["val"][1],
        }

    def figures(self, model, X: dict, Y: dict, split: dict) -> dict:
        """Calibration, per-class and per-group figures on the test split."""
        device = next(model.parameters()).device
        logits = {name: predict_logits(model, X[name], device=device) for name in ("val", "test")}
        return classifier_figures(logits, Y, split["test"].groups, split["test"].classes, self.cfg.seed)

    @staticmethod
    def first_sentence(figures: dict) -> str:
        return figures["calibration"]["sentence"]

    def control(self, X: dict, Y: dict, arch: str, config: dict, run_dir: Path, result) -> dict:
        """The same model trained again on shuffled labels: what memorising noise looks like."""
        return run_control(X, Y, arch, config, self.cfg, run_dir, result)

    @staticmethod
    def artifact_record(summary: dict, ex) -> dict:
        """What the artifact keeps for this task: the classes, and the temperature decision."""
        return {"classes": ex.classes, "extra": manifest_record(summary["calibration"])}

    @staticmethod
    def closing_words(summary: dict, run_dir: Path) -> str:
        return "\n".join([
            f"test accuracy {summary['test_accuracy']:.4f} (loss {summary['test_loss']:.4f}); chance level: loss "
            f"{summary['chance_loss']:.4f}, majority-class accuracy {summary['chance']['majority_accuracy']:.3f}",
            f"generalisation gap at the sweet spot: train accuracy {summary['train_accuracy']:.4f} vs validation "
            f"{summary['val_accuracy']:.4f} ({summary['generalisation_gap']:+.4f})",
            "wall time: " + ", ".join(f"{name} {sec:.1f} s" for name, sec in summary.get("stage_seconds", {}).items()),
            *folder_lines(run_dir, RUN_FILES),
        ])

"""Inference from a frozen artifact: read-only, eval mode, no gradients, nothing can change a weight."""
from __future__ import annotations

import math
from pathlib import Path

import torch

from glassbox.data.encoders import encoder_from_dict
from glassbox.errors import UserError
from glassbox.export.artifact import load_artifact
from glassbox.runtime.threads import cpu_threads, forward_flops, threads_for_flops


class Predictor:
    """Loads RUN/model once; `predict(inputs)` returns label and probability for each input."""

    def __init__(self, artifact: str | Path):
        self.manifest, self.model = load_artifact(artifact)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.model.eval()
        self.threads = None  # CPU threads of the last predictions
        flops = self.manifest.get("inference_flops")  # one prediction's FLOPs, counted at export
        self.flops_per_example = float(flops) if isinstance(flops, (int, float)) and flops > 0 else None
        if self.manifest.get("task") != "classify":
            what = "a language model" if self.manifest.get("task") == "lm" else f"a {self.manifest.get('task')!r} model"
            raise UserError(f"{artifact} is {what}, not a classifier; use 'glassbox generate'")
        try:
            self.encoder = encoder_from_dict(self.manifest["preprocessing"])
            self.classes = [str(c) for c in self.manifest["classes"]]
            self.temperature = float(self.manifest.get("temperature", 1.0))
            n_out = int(self.manifest["model_config"]["n_classes"])
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as e:
            raise UserError(f"{artifact}/manifest.json is damaged ({type(e).__name__}: {e}); export it again from its run") from None
        if len(self.classes) != n_out:
            raise UserError(f"{artifact}/manifest.json names {len(self.classes)} classes but the model has {n_out} outputs: "
                            f"the manifest was changed; export it again from its run")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise UserError(f"{artifact}/manifest.json holds temperature {self.temperature}; it must be a positive number: "
                            f"the manifest was changed; export it again from its run")

    @property
    def calibration(self) -> dict | None:
        """The training run's record of the temperature decision; None in an artifact from before it was kept."""
        record = self.manifest.get("calibration")
        return record if isinstance(record, dict) else None

    @property
    def calibrated(self) -> bool:
        """True only when a T is applied that examples it was not fitted on showed to lower NLL. An older
        artifact's T is still applied (its predictions stay as they were) but was never checked."""
        record = self.calibration
        return "temperature" in self.manifest and record is not None and record.get("applied") is True

    def how_scaled(self) -> str:
        """What the probabilities are, in words: scaled by a checked T, an unchecked one, or not at all."""
        record, t = self.calibration, self.temperature
        if self.calibrated:
            return (f"calibrated by temperature scaling (T = {t:.3g}, fitted on the validation split and checked on "
                    f"validation examples held out from its fit)")
        if "temperature" in self.manifest:
            return (f"scaled by T = {t:.3g}, fitted on the validation split by an older glassbox that did not check "
                    f"it helps: not verified as calibrated")
        if record is not None:
            return f"as the model gives them (temperature scaling not applied: {record.get('reason', 'no reason saved')})"
        return "as the model gives them (this artifact holds no temperature: uncalibrated)"

    def parse(self, raw: list[str]):
        """Inputs as the user types them (CSV rows, image paths, texts) -> the encoder's raw form."""
        parse = getattr(self.encoder, "parse", None)  # text encoders take the texts as they are
        return parse(raw) if parse is not None else list(raw)

    @torch.inference_mode()
    def predict_proba(self, inputs, batch_size: int = 256) -> torch.Tensor:
        x = self.encoder.encode(inputs)
        # A small model answers faster on one CPU thread (one SMS message: 0.37 vs 0.89 ms); runtime/threads.py.
        if self.flops_per_example is None and len(x):  # an artifact from before the count was saved: count once
            self.flops_per_example = forward_flops(self.model, x[:1])
        self.threads = threads_for_flops((self.flops_per_example or 0) * min(len(x), batch_size))
        with cpu_threads(self.threads):
            out = [torch.softmax(self.model(x[i:i + batch_size]) / self.temperature, dim=-1)
                   for i in range(0, len(x), batch_size)]
        return torch.cat(out) if out else torch.zeros(0, len(self.classes))

    def predict(self, inputs) -> list[dict]:
        if self.manifest["task"] != "classify":
            raise UserError(f"this artifact is a {self.manifest['task']} model; use 'glassbox generate' for language models")
        probs = self.predict_proba(inputs)
        conf, idx = probs.max(dim=-1)
        return [{"label": self.classes[i], "probability": round(float(c), 6),
                 "probabilities": {name: round(float(p), 6) for name, p in zip(self.classes, row)}}
                for i, c, row in zip(idx.tolist(), conf.tolist(), probs.tolist())]

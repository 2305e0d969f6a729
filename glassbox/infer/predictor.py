"""Inference from a frozen artifact: read-only, eval mode, no gradients, nothing can change a weight."""
from __future__ import annotations

import math
from pathlib import Path

import torch

from glassbox.data.encoders import encoder_from_dict
from glassbox.data.regression import TargetScale
from glassbox.errors import UserError
from glassbox.evaluate.calibration import T_MAX, T_MIN
from glassbox.export.artifact import load_artifact
from glassbox.runtime.threads import cpu_threads, forward_flops, threads_for_flops


class Predictor:
    """Loads RUN/model once; `predict(inputs)` returns label and probability for each input (a regression: the
    value and its prediction interval)."""

    def __init__(self, artifact: str | Path):
        self.manifest, self.model = load_artifact(artifact)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.model.eval()
        self.threads = None  # CPU threads of the last predictions
        flops = self.manifest.get("inference_flops")  # one prediction's FLOPs, counted at export
        self.flops_per_example = float(flops) if isinstance(flops, (int, float)) and flops > 0 else None
        self.regression = self.manifest.get("task") == "regression"
        if not self.regression and self.manifest.get("task") != "classify":
            what = "a language model" if self.manifest.get("task") == "lm" else f"a {self.manifest.get('task')!r} model"
            raise UserError(f"{artifact} is {what}, not a classifier; use 'glassbox generate'")
        try:
            self.encoder = encoder_from_dict(self.manifest["preprocessing"])
            if self.regression:  # the target's scale and the interval's half-width, as the training run measured them
                self.scale = TargetScale(float(self.manifest["target"]["mean"]), float(self.manifest["target"]["std"]))
                half = self.manifest["interval"]["half_width"]  # None: too few validation rows for its level
                self.interval = {"level": float(self.manifest["interval"]["level"]),
                                 "half_width": None if half is None else float(half)}
            self.classes = [str(c) for c in self.manifest["classes"] or []]
            self.temperature = float(self.manifest.get("temperature", 1.0))
            n_out = int(self.manifest["model_config"]["n_classes"])
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as e:
            raise UserError(f"{artifact}/manifest.json is damaged ({type(e).__name__}: {e}); export it again from its run") from None
        damaged = check_fits(self, n_out)
        if damaged:
            raise UserError(f"{artifact}/manifest.json {damaged}: the manifest was changed; export it again from its run")

    @property
    def calibration(self) -> dict | None:
        """The training run's record of the temperature decision; None in an artifact from before it was kept."""
        record = self.manifest.get("calibration")
        return record if isinstance(record, dict) else None

    @property
    def calibrated(self) -> bool:
        """A regression: False (its intervals are split conformal, not calibrated probabilities). Else True only when a T is applied that examples it was not fitted on showed to lower NLL. An older
        artifact's T is still applied (its predictions stay as they were) but was never checked."""
        record = self.calibration
        return not self.regression and "temperature" in self.manifest and record is not None and record.get("applied") is True

    def how_scaled(self) -> str:
        """What the probabilities are, in words: scaled by a checked T, an unchecked one, or not at all."""
        record, t = self.calibration, self.temperature
        if self.regression:
            if self.interval["half_width"] is None:
                return "no prediction interval (too few validation examples in its run for one)"
            return (f"its {self.interval['level']:.0%} prediction interval, value ± {self.interval['half_width']:.4g} "
                    f"(split conformal: the training run's validation residuals set the width)")
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
    def outputs(self, inputs, batch_size: int = 256) -> torch.Tensor:
        """The model's outputs for the inputs, (N, K): logits, or a regression's standardised value."""
        x = self.encoder.encode(inputs)
        # A small model answers faster on one CPU thread (one SMS message: 0.37 vs 0.89 ms); runtime/threads.py.
        if self.flops_per_example is None and len(x):  # an artifact from before the count was saved: count once
            self.flops_per_example = forward_flops(self.model, x[:1])
        self.threads = threads_for_flops((self.flops_per_example or 0) * min(len(x), batch_size))
        with cpu_threads(self.threads):
            out = [self.model(x[i:i + batch_size]).float() for i in range(0, len(x), batch_size)]
        return torch.cat(out) if out else torch.zeros(0, 1 if self.regression else len(self.classes))

    def predict_proba(self, inputs, batch_size: int = 256) -> torch.Tensor:
        return torch.softmax(self.outputs(inputs, batch_size) / self.temperature, dim=-1)

    def predict_values(self, inputs, batch_size: int = 256):
        """A regression's predictions in the label's units, float64 (N,)."""
        return self.scale.to_units(self.outputs(inputs, batch_size))

    def predict(self, inputs) -> list[dict]:
        """Each input's answer; an input whose outputs are not finite numbers is refused (UserError naming it),
        never answered with NaN."""
        if self.regression:
            half, level = self.interval["half_width"], self.interval["level"]
            values = self.predict_values(inputs)
            refuse_non_finite(torch.as_tensor(values).reshape(len(values), -1))
            return [{"value": round(v, 6), "level": level,
                     "interval": None if half is None else [round(v - half, 6), round(v + half, 6)]}
                    for v in values.tolist()]
        probs = self.predict_proba(inputs)
        refuse_non_finite(probs)
        conf, idx = probs.max(dim=-1)
        return [{"label": self.classes[i], "probability": round(float(c), 6),
                 "probabilities": {name: round(float(p), 6) for name, p in zip(self.classes, row)}}
                for i, c, row in zip(idx.tolist(), conf.tolist(), probs.tolist())]


def refuse_non_finite(outputs: torch.Tensor) -> None:
    bad = (~torch.isfinite(outputs)).any(dim=-1).nonzero().flatten().tolist()
    if bad:
        which = ", ".join(str(i + 1) for i in bad[:5]) + (" ..." if len(bad) > 5 else "")
        raise UserError(f"input {which} drove the model's outputs beyond what 32-bit numbers hold (not a number); "
                        f"check its values against what the model was trained on")


# the model config's sizes that its encoder decides: each must be the encoder's own (config key: encoder attribute)
SIZES_FROM_ENCODER = {"vocab_size": "vocab_size", "max_len": "max_len", "n_numeric": "n_numeric",
                      "cardinalities": "cardinalities", "image_size": "size", "in_channels": "channels"}


def check_fits(p: Predictor, n_out: int) -> str | None:
    """What in a loaded manifest cannot be (the words after "manifest.json"), or None: the encoder's sizes, the class
    names and the temperature must fit the model's weights; a regression's scale and interval must be numbers."""
    config = p.manifest["model_config"]
    for key, attribute in SIZES_FROM_ENCODER.items():
        if key in config and hasattr(p.encoder, attribute) and getattr(p.encoder, attribute) != config[key]:
            return (f"gives the encoder {attribute} {getattr(p.encoder, attribute)!r} but the model {key} "
                    f"{config[key]!r}")
    if p.regression:
        if n_out != 1 or p.classes:
            return (f"describes a regression with {n_out} outputs and {len(p.classes)} classes (it has one output, "
                    f"no classes)")
        if not (math.isfinite(p.scale.mean) and math.isfinite(p.scale.std) and p.scale.std > 0
                and 0 < p.interval["level"] < 1 and (p.interval["half_width"] is None
                                                     or 0 <= p.interval["half_width"] < math.inf)):
            return "holds a target scale or prediction interval that is not a finite number in range"
    elif len(p.classes) != n_out or len(set(p.classes)) != n_out:
        return (f"names {len(p.classes)} classes ({len(set(p.classes))} distinct) but the model has {n_out} outputs: "
                f"its classes must be {n_out} distinct names")
    if not (math.isfinite(p.temperature) and (T_MIN < p.temperature < T_MAX or p.temperature == 1.0)):
        return (f"holds temperature {p.temperature}; a fitted temperature lies strictly between {T_MIN} and "
                f"{T_MAX:g}")
    return None

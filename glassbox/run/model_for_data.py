"""Which encoder and model each kind of data gets, sized from the data and the run's settings. The training run
and the audit's fold models (out_of_fold.py) both build theirs here.

    encoder = make_encoder(train_examples, cfg)           # fitted on the training split only
    arch, model_config = model_config(train_examples, encoder, cfg)
"""
from __future__ import annotations

from glassbox.config import TrainConfig
from glassbox.data.examples import Examples

# The models each kind of data can train (the first is the default).
MODELS_FOR = {"tabular": ("mlp_plr", "mlp"), "image": ("cnn",), "text": ("fasttext", "transformer")}


def make_encoder(ex: Examples, cfg: TrainConfig, **text_encoder):
    """The encoder (raw input -> tensor) for the examples' kind, fitted on them; text_encoder: HashedNgramEncoder
    arguments for the fastText model."""
    if ex.kind == "tabular":
        from glassbox.data.tabular import TabularEncoder

        return TabularEncoder().fit(ex)
    if ex.kind == "image":
        from glassbox.data.images import ImageEncoder

        return ImageEncoder().fit(ex)
    from glassbox.data.text import BPEEncoder, HashedNgramEncoder

    if cfg.model == "transformer":
        return BPEEncoder(vocab_size=cfg.vocab_size).fit(ex.inputs)
    return HashedNgramEncoder(**text_encoder).fit(ex.inputs)


def model_config(ex: Examples, encoder, cfg: TrainConfig, **overrides) -> tuple[str, dict]:
    """The architecture for the data and its config, every size taken from the settings as given (overrides: config
    fields that replace these, for the audit's quicker fold models)."""
    k = len(ex.classes) if ex.targets is None else 1  # a regression predicts one number
    arch = cfg.model if cfg.model != "auto" else MODELS_FOR[ex.kind][0]
    if ex.kind == "tabular":
        config = {"n_numeric": encoder.n_numeric, "n_classes": k, "cardinalities": encoder.cardinalities,
                  "dropout": cfg.dropout}
    elif ex.kind == "image":
        small = encoder.size <= 16  # tiny images: bf16 saves no time
        config = {"in_channels": encoder.channels, "n_classes": k, "image_size": encoder.size,
                  "width": 16 if small else 32, "stages": 2 if small else 3, "dropout": cfg.dropout,
                  "bf16": not small, "flip_tta": encoder.channels == 3}
    elif arch == "transformer":
        config = {"vocab_size": encoder.vocab_size, "n_classes": k, "max_len": encoder.max_len,
                  "n_layer": cfg.n_layer, "n_head": cfg.n_head, "n_embd": cfg.n_embd, "dropout": cfg.dropout}
    else:
        config = {"vocab_size": encoder.vocab_size, "n_classes": k, "dropout": cfg.dropout,
                  "word_vocab": encoder.word_vocab_}
    if arch == "mlp_plr":  # every field in the manifest: the artifact predicts the same if a default changes later
        from dataclasses import asdict

        from glassbox.models.mlp_plr import MLPPLRConfig

        regression = {"regression": True} if ex.targets is not None else {}
        return arch, asdict(MLPPLRConfig(**{**config, **regression, **overrides}))
    return arch, {**config, **overrides}

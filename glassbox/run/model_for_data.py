"""Which encoder and model each kind of data gets, sized from the data and the run's settings. The training run
and the audit's fold models (out_of_fold.py) both build theirs here.

    encoder = make_encoder(train_examples, cfg)           # fitted on the training split only
    arch, model_config = model_config(train_examples, encoder, cfg)
"""
from __future__ import annotations

from glassbox.config import TrainConfig
from glassbox.data.examples import Examples

from glassbox.data.kinds import KINDS
from glassbox.models.registry import MODELS, default_model


def make_encoder(ex: Examples, cfg: TrainConfig, **options):
    """The encoder (raw input -> tensor) for the examples' kind, fitted on them; options: the kind's encoder
    arguments (text: HashedNgramEncoder's, for the audit's fold models)."""
    return KINDS[ex.kind].make_encoder(ex, cfg, **options)


def model_config(ex: Examples, encoder, cfg: TrainConfig, **overrides) -> tuple[str, dict]:
    """The architecture for the data and its config, every size taken from the settings as given (overrides: config
    fields that replace these, for the audit's quicker fold models)."""
    regression = ex.targets is not None
    k = 1 if regression else len(ex.classes)  # a regression predicts one number
    arch = cfg.model if cfg.model != "auto" else default_model(ex.kind)
    return arch, {**MODELS[arch].config_for(encoder, cfg, k, regression), **overrides}

"""Build a model by name from its config dict, as stored in an artifact's manifest."""
from __future__ import annotations

import importlib

import torch.nn as nn

from glassbox.errors import UserError

# name -> (module, model class, config class); imported lazily so a model's dependencies load only when used
MODELS = {
    "mlp_plr": ("glassbox.models.mlp_plr", "MLPPLR", "MLPPLRConfig"),
    "mlp": ("glassbox.models.mlp", "MLP", "MLPConfig"),
    "cnn": ("glassbox.models.cnn", "CNN", "CNNConfig"),
    "fasttext": ("glassbox.models.fasttext", "FastText", "FastTextConfig"),
    "transformer": ("glassbox.models.text_transformer", "TextTransformer", "TextTransformerConfig"),
    "gpt": ("glassbox.models.gpt", "GPT", "GPTConfig"),
}


def build_model(name: str, config: dict) -> nn.Module:
    if name not in MODELS:
        raise UserError(f"unknown model '{name}'; known models: {', '.join(MODELS)}")
    module, model_cls, config_cls = MODELS[name]
    mod = importlib.import_module(module)
    return getattr(mod, model_cls)(getattr(mod, config_cls)(**config))

"""Every model glassbox trains, in one table: its module and classes, the kinds of data it reads, its name in words,
and how its config is sized from the data. The CLI's --model choices, the settings' checks, the report's names and
`build_model` (which rebuilds a model from an artifact's manifest) all read this table.

    entry = MODELS["cnn"]
    config = entry.config_for(encoder, cfg, n_outputs=10, regression=False)   # a dict: what the manifest keeps
    model = build_model("cnn", config)

Adding a model is one module with a `@dataclass` config and an `nn.Module`, plus one entry here."""
from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass
from typing import Callable

import torch.nn as nn

from glassbox.errors import UserError


def _mlp_plr(encoder, cfg, n_outputs: int, regression: bool) -> dict:
    from glassbox.models.mlp_plr import MLPPLRConfig

    # every field in the manifest: the artifact predicts the same if a default changes later
    return asdict(MLPPLRConfig(n_numeric=encoder.n_numeric, n_classes=n_outputs, cardinalities=encoder.cardinalities,
                               dropout=cfg.dropout, regression=regression))


def _mlp(encoder, cfg, n_outputs: int, regression: bool = False) -> dict:
    return {"n_numeric": encoder.n_numeric, "n_classes": n_outputs, "cardinalities": encoder.cardinalities,
            "dropout": cfg.dropout}


def _cnn(encoder, cfg, n_outputs: int, regression: bool = False) -> dict:
    small = encoder.size <= 16  # tiny images: bf16 saves no time
    return {"in_channels": encoder.channels, "n_classes": n_outputs, "image_size": encoder.size,
            "width": 16 if small else 32, "stages": 2 if small else 3, "dropout": cfg.dropout,
            "bf16": not small, "flip_tta": encoder.channels == 3}


def _fasttext(encoder, cfg, n_outputs: int, regression: bool = False) -> dict:
    return {"vocab_size": encoder.vocab_size, "n_classes": n_outputs, "dropout": cfg.dropout,
            "word_vocab": encoder.word_vocab_}


def _transformer(encoder, cfg, n_outputs: int, regression: bool = False) -> dict:
    return {"vocab_size": encoder.vocab_size, "n_classes": n_outputs, "max_len": encoder.max_len,
            "n_layer": cfg.n_layer, "n_head": cfg.n_head, "n_embd": cfg.n_embd, "dropout": cfg.dropout}


def _gpt(encoder, cfg, n_outputs: int, regression: bool = False) -> dict:
    from glassbox.models.gpt import GPTConfig

    # bfloat16 compute where this CPU does it natively (20% faster steps); every field in the manifest
    return asdict(GPTConfig(vocab_size=n_outputs, block_size=cfg.block_size, n_layer=cfg.n_layer, n_head=cfg.n_head,
                            n_embd=cfg.n_embd, dropout=cfg.dropout, bf16=True))


@dataclass(frozen=True)
class ModelEntry:
    name: str                 # what --model takes and the manifest records
    module: str               # imported only when the model is built, so its dependencies load only when used
    model_class: str
    config_class: str
    reads: tuple[str, ...]    # the kinds of data it trains on (glassbox/data/kinds.py); the first model listed for a
                              # kind is that kind's default
    display: str              # its name in words, for the report
    config_for: Callable      # (fitted encoder, TrainConfig, n_outputs, regression) -> the config dict the manifest keeps
    defaults: str = ""        # its row of config.KIND_DEFAULTS: the defaults a run of this model starts from
    settings: frozenset = frozenset()  # the model's own settings (--n-layer, ...): given to another model, refused


MODELS: dict[str, ModelEntry] = {e.name: e for e in (
    ModelEntry("mlp_plr", "glassbox.models.mlp_plr", "MLPPLR", "MLPPLRConfig", ("tabular",),
               "ensemble of MLPs with periodic embeddings of numbers (MLP-PLR)", _mlp_plr, defaults="tabular"),
    ModelEntry("mlp", "glassbox.models.mlp", "MLP", "MLPConfig", ("tabular",), "multilayer perceptron (MLP)", _mlp,
               defaults="mlp"),
    ModelEntry("cnn", "glassbox.models.cnn", "CNN", "CNNConfig", ("image",), "convolutional network (CNN)", _cnn,
               defaults="image"),
    ModelEntry("fasttext", "glassbox.models.fasttext", "FastText", "FastTextConfig", ("text",), "fastText model",
               _fasttext, defaults="text"),
    ModelEntry("transformer", "glassbox.models.text_transformer", "TextTransformer", "TextTransformerConfig",
               ("text",), "Transformer encoder", _transformer, defaults="transformer",
               settings=frozenset({"vocab_size", "n_layer", "n_head", "n_embd"})),
    ModelEntry("gpt", "glassbox.models.gpt", "GPT", "GPTConfig", ("corpus",), "GPT", _gpt, defaults="lm",
               settings=frozenset({"tokenizer", "block_size", "vocab_size", "n_layer", "n_head", "n_embd", "init",
                                   "init_val"})),
)}


def models_for(kind: str) -> tuple[str, ...]:
    """The models that read a kind of data, its default first."""
    return tuple(name for name, entry in MODELS.items() if kind in entry.reads)


def default_model(kind: str) -> str:
    return models_for(kind)[0]


def display_name(name) -> str:
    """A model's name in words ("convolutional network (CNN)"); an unknown name as it is."""
    entry = MODELS.get(str(name))
    return entry.display if entry else str(name)


def build_model(name: str, config: dict) -> nn.Module:
    if name not in MODELS:
        raise UserError(f"unknown model '{name}'; known models: {', '.join(MODELS)}")
    entry = MODELS[name]
    mod = importlib.import_module(entry.module)
    return getattr(mod, entry.model_class)(getattr(mod, entry.config_class)(**config))

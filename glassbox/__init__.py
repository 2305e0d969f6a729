"""glassbox: train models from examples and see, on your own run, what really happens."""

import sys
from types import ModuleType

from glassbox.runtime.version import __version__  # noqa: F401


def fit(model, train_data, val_data, loss_fn=None, config=None, **kwargs):
    """Train any nn.Module with glassbox's loop, validation, sweet spot and checkpoints.

    See glassbox.train.loop.fit; `config` is a TrainConfig or a dict of its keys."""
    from glassbox.config import TrainConfig, make_config
    from glassbox.train.loop import fit as _fit

    if isinstance(config, dict):
        config = make_config(config)
    return _fit(model, train_data, val_data, loss_fn=loss_fn, config=config or TrainConfig(), **kwargs)


class _Train:
    """glassbox.train(data, **settings): the whole pipeline: load, audit, split, train, evaluate, export. Returns the
    finished `Run` (glassbox/run/api.py). `data`: a path, a DataFrame (with label=...), a pair (X, y) of arrays or
    tensors, or a pair (texts, labels); `settings` are TrainConfig keys (label=..., epochs=..., out=...).

    `glassbox.train` is also the subpackage of the training loop (glassbox/train/): its attributes are the
    subpackage's (`glassbox.train.loop`), so both `glassbox.train(data)` and `import glassbox.train.loop` work in
    one process, in either order."""

    def __call__(self, data=None, **settings):
        from glassbox.run.api import train as _train

        return _train(data, **settings)

    def __getattr__(self, name):
        import importlib

        return getattr(importlib.import_module("glassbox.train"), name)


train = _Train()


def load(artifact):
    """A read-only Predictor for a frozen artifact folder (RUN/model)."""
    from glassbox.infer.predictor import Predictor

    return Predictor(artifact)


def __getattr__(name):
    """glassbox.Run (a finished run: glassbox.Run.open(path)), imported on first use."""
    if name == "Run":
        from glassbox.run.api import Run

        return Run
    raise AttributeError(f"module 'glassbox' has no attribute {name!r}")


class _Package(type(sys.modules[__name__])):
    """The package `glassbox`, whose `train` stays the entry above: importing the subpackage `glassbox.train` (the
    loop) would otherwise set the attribute `train` to that subpackage, and `glassbox.train(data)` would fail with
    "'module' object is not callable" in any process that had imported the loop."""

    def __setattr__(self, name, value):
        if name == "train" and isinstance(value, ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

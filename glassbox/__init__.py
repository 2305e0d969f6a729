"""glassbox: train models from examples and see, on your own run, what really happens."""

from glassbox.runtime.version import __version__  # noqa: F401


def fit(model, train_data, val_data, loss_fn=None, config=None, **kwargs):
    """Train any nn.Module with glassbox's loop, validation, sweet spot and checkpoints.

    See glassbox.train.loop.fit; `config` is a TrainConfig or a dict of its keys."""
    from glassbox.config import TrainConfig, make_config
    from glassbox.train.loop import fit as _fit

    if isinstance(config, dict):
        config = make_config(config)
    return _fit(model, train_data, val_data, loss_fn=loss_fn, config=config or TrainConfig(), **kwargs)


def train(data, **settings):
    """The whole pipeline: load, audit, split, train, evaluate, export. Returns the run summary.

    `settings` are TrainConfig keys (label=..., epochs=..., out=...)."""
    from glassbox.run.train.start import train as _train

    return _train(data, **settings)


def load(artifact):
    """A read-only Predictor for a frozen artifact folder (RUN/model)."""
    from glassbox.infer.predictor import Predictor

    return Predictor(artifact)

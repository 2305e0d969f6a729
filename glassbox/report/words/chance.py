"""A regression's chance level in words (train/regression.py mean_prediction_chance). A classifier's is said by the
training loop itself (train/loop.py chance_level), which prints it as it starts."""
from __future__ import annotations


def mean_prediction(chance: dict) -> str:
    """Always predicting the training mean, next to the untrained model's loss."""
    loss, untrained = chance["mean_prediction_loss"], chance["untrained_loss"]
    return (f"chance level: always predicting the training mean has validation loss {loss:.4f} (on the target "
            f"standardised by the training split's mean and standard deviation); the untrained model's loss is "
            f"{untrained:.4f}: random weights know nothing yet.")

"""What the loop needs to fit a number instead of a class: the loss on the standardised target, and the chance
level, which for a number is predicting the training mean (0 on the standardised scale)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from glassbox.train.loop import evaluate


def mse(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(pred.float(), y)


def huber(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared below one standard deviation of the target, linear beyond: a few wild labels pull less."""
    return F.huber_loss(pred.float(), y, delta=1.0)


LOSSES = {"mse": mse, "huber": huber}


def mean_prediction_chance(model, val, loss_fn, batch_size: int, device) -> dict:
    """What knowing nothing costs for a number: always predicting the training mean, which is 0 once the target is
    standardised with the training split's statistics. Also the untrained model's loss, as for a classifier. The
    loop prints its "sentence": the caller adds it (run/train/regression.py, from report/words/chance.py)."""
    untrained, _ = evaluate(model, val, loss_fn, batch_size, device)
    y = val[1].float()
    loss = float(loss_fn(torch.zeros_like(y), y))
    return {"loss": loss, "mean_prediction_loss": loss, "untrained_loss": untrained, "untrained_accuracy": None}

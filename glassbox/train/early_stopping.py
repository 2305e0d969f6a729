"""The overfitting detector: watch validation loss, remember the sweet spot, say when to stop."""
from __future__ import annotations


class EarlyStopping:
    """Stop when validation loss has not improved by more than min_delta for `patience` evaluations.

    `best_step` is the sweet spot: the evaluation with the lowest validation loss. It never stops before
    the best validation loss is below `must_beat` (the loop sets it to the untrained model's loss): until
    the model has beaten what random weights score there is no sweet spot to protect, and the loss of an
    early, still-unsettled model jumps about (batch-norm statistics lag fast-moving weights)."""

    def __init__(self, patience: int = 5, min_delta: float = 0.0):
        self.patience, self.min_delta = patience, min_delta
        self.best_loss, self.best_step, self.best_train_loss = float("inf"), -1, float("inf")
        self.bad_evals = 0
        self.must_beat = float("inf")

    def update(self, step: int, val_loss: float, train_loss: float) -> bool:
        """Record one evaluation; True when it is a new best."""
        if val_loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_step, self.best_train_loss = val_loss, step, train_loss
            self.bad_evals = 0
            return True
        self.bad_evals += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.bad_evals >= self.patience and self.best_loss < self.must_beat

    def state_dict(self) -> dict:
        return dict(self.__dict__)

    def load_state_dict(self, state: dict) -> None:
        self.__dict__.update(state)


def explain(history: list[dict], best_step: int, stopped_early: bool, reason: str) -> str:
    """The end of training in plain words, with the numbers."""
    evals = [h for h in history if h.get("val_loss") is not None]
    best = next(h for h in evals if h["step"] == best_step)
    last = evals[-1]
    start = evals[0] if evals[0]["step"] == 0 else None  # the untrained model's evaluation
    if start is not None and best_step > 0 and best["val_loss"] >= start["val_loss"]:
        return (f"validation loss never fell below the untrained model's ({start['val_loss']:.4f}; best "
                f"{best['val_loss']:.4f} at step {best_step}): the model learned nothing that carries over to new "
                f"examples. Train for more steps, lower the learning rate, or check that the labels match the inputs.")
    if best_step == last["step"]:
        ended = {"max_steps": "training reached its last step", "interrupted": "training was interrupted"}.get(reason, "training ended")
        return (f"{ended} at step {last['step']} with validation loss still at its lowest "
                f"({best['val_loss']:.4f}): the model had not started memorising; more steps may still help.")
    train_fell = last.get("train_loss") is not None and best.get("train_loss") is not None and last["train_loss"] < best["train_loss"]
    head = (f"validation loss stopped improving at step {best_step} ({best['val_loss']:.4f}) and was "
            f"{last['val_loss']:.4f} by step {last['step']}")
    if train_fell:
        head += f" while training loss fell to {last['train_loss']:.4f}: the model began to memorise"
    else:
        head += " and training loss stopped falling too: the model stopped learning"
    why = {"early_stop": "Stopped early", "max_steps": "Training ran to its last step",
           "interrupted": "Training was interrupted"}.get(reason, "Training ended")
    return f"{head}. {why}; restored the weights from step {best_step}."

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


# Why a rise counts only beyond twice the noise, on two evaluations or more: one evaluation's loss scatters by about
# the noise on its own, and the best is the lowest of many scattered values, so it sits low by chance.
RISE_IN_NOISE = 2.0
RISEN_EVALS = 2
STOP_WORDS = {"early_stop": "Stopped early (--patience evaluations without improvement)",
              "max_steps": "Training ran to its last step", "interrupted": "Training was interrupted"}


def val_noise(evals: list[dict]) -> float | None:
    """The scatter of one evaluation's validation loss, from the run's own later evaluations (None: too few).

    Second differences v[i+1] - 2 v[i] + v[i-1] cancel a steady trend (falling or rising), so what is left is
    noise: for independent scatter of size s they spread with s * sqrt(6); the median over 0.6745 makes it robust
    to one odd evaluation. Only the later evaluations count: early ones move with the learning itself."""
    losses = [h["val_loss"] for h in evals if h["step"] > 0]
    later = losses[-max(6, len(losses) // 2):]
    second = sorted(abs(a - 2 * b + c) for a, b, c in zip(later, later[1:], later[2:]))
    if len(second) < 3:
        return None
    median = (second[(len(second) - 1) // 2] + second[len(second) // 2]) / 2
    return median / (0.6745 * 6 ** 0.5)


def explain(history: list[dict], best_step: int, stopped_early: bool, reason: str, diverged: dict | None = None) -> str:
    """The end of training in plain words, with the numbers."""
    evals = [h for h in history if h.get("val_loss") is not None]
    if diverged is not None:
        return explain_divergence(evals, best_step, diverged)
    if not any(h["step"] > 0 for h in evals):
        return "training was interrupted before the first evaluation."
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
    return f"{after_the_best(evals, best, reason)} {STOP_WORDS.get(reason, 'Training ended')}; restored the weights from step {best_step}."


def after_the_best(evals: list[dict], best: dict, reason: str) -> str:
    """What validation loss did after its best evaluation: a rise beyond its own noise while training loss fell
    is memorising; anything less is said as what it is."""
    after, last, noise = [h for h in evals if h["step"] > best["step"]], evals[-1], val_noise(evals)
    train_fell = last.get("train_loss") is not None and best.get("train_loss") is not None and last["train_loss"] < best["train_loss"]
    line = best["val_loss"] + RISE_IN_NOISE * noise if noise is not None else None
    risen = [h for h in after if line is not None and h["val_loss"] > line]
    n_after = f"{len(after)} evaluation{'s' if len(after) != 1 else ''}"
    if not train_fell:
        return (f"validation loss stopped improving at step {best['step']} ({best['val_loss']:.4f}; "
                f"{last['val_loss']:.4f} by step {last['step']}) and training loss stopped falling too: the model "
                f"stopped learning.")
    if len(risen) >= RISEN_EVALS and risen[-1] is last:
        return (f"validation loss rose after step {best['step']} ({best['val_loss']:.4f}): {len(risen)} of the "
                f"{n_after} after it were above {line:.4f} (the best plus {RISE_IN_NOISE:g} times its scatter between "
                f"evaluations, {noise:.4f}), {last['val_loss']:.4f} by step {last['step']}, while training loss fell "
                f"from {best['train_loss']:.4f} to {last['train_loss']:.4f}: the model began to memorise.")
    if noise is None:
        within = "it did not improve (too few evaluations to tell a rise from noise)"
    elif risen:
        within = (f"it rose above {line:.4f} (the best plus {RISE_IN_NOISE:g} x its scatter between evaluations, "
                  f"{noise:.4f}) on only {len(risen)} of them{'' if risen[-1] is last else ' and fell back'}")
    else:
        within = (f"it stayed within its scatter between evaluations (all at or below {line:.4f}, the best plus "
                  f"{RISE_IN_NOISE:g} x {noise:.4f})")
    advice = "the best was near the end, so more steps may help" if reason != "early_stop" else "it levelled off"
    return (f"validation loss was lowest at step {best['step']} ({best['val_loss']:.4f}); over the {n_after} after it, "
            f"to step {last['step']} ({last['val_loss']:.4f}), {within}, while training loss fell to "
            f"{last['train_loss']:.4f}: no clear sign of memorising; {advice}.")


def explain_divergence(evals: list[dict], best_step: int, d: dict) -> str:
    """A loss or gradient that went infinite or NaN: where, at what learning rate, and what was kept."""
    what = (f"training diverged at step {d['step']}: the loss or the gradient norm became infinite or NaN (loss "
            f"{_num(d['loss'])}, gradient norm {_num(d['grad_norm'])}) at learning rate {d['lr']:.3g}; training stopped there")
    if d["restored"]:
        best = next(h for h in evals if h["step"] == best_step)
        kept = (f"restored the weights from step {best_step} (validation loss {best['val_loss']:.4f}), the best "
                f"before it diverged")
    else:
        kept = "no evaluation before it beat the untrained model, so no model is saved"
    return f"{what}; {kept}. To fix it: {d['advice']}."


def _num(x) -> str:
    """A recorded figure: a float to 4 significant digits; a non-finite one is stored as its word ('nan', 'inf')."""
    return f"{x:.4g}" if isinstance(x, float) else str(x)

"""The shuffled-label control in words (run/train/after_training.py control_verdict): something leaks, the model
memorised noise, or it barely rose above chance."""
from __future__ import annotations


def sentence(c: dict) -> str:
    """What the same model trained on shuffled labels says about the main run (c: control_verdict's figures)."""
    train, val, chance = c["train_accuracy"], c["val_accuracy"], c["chance_accuracy"]
    if c["leak_suspected"]:
        return (f"WARNING: with shuffled training labels the model still scores {val:.3f} on validation, clearly above "
                f"chance ({chance:.3f} ± {c['margin']:.3f}): something leaks the answer — duplicates across splits, or "
                f"a label hidden in a feature. Do not trust the main run's scores until you find it.")
    if c["memorised_noise"]:
        return (f"On shuffled labels the model reached training accuracy {train:.3f} (chance "
                f"{c['train_chance_accuracy']:.3f}) while validation stayed at chance ({val:.3f} vs {chance:.3f}): it "
                f"can memorise noise, so training accuracy alone proves nothing; the main run's validation score is "
                f"what counts.")
    return (f"On shuffled labels the model barely rose above chance even on its training examples ({train:.3f} vs "
            f"{c['train_chance_accuracy']:.3f}): in this many steps it memorised little of the noise, and validation "
            f"stayed at chance ({val:.3f} vs {chance:.3f}), so nothing leaks. The main run's lead over chance was "
            f"learned, not memorised.")

"""Whether a language model copies its training text, in words (evaluate/memorization.py memorization_report):
novelty of its samples against held-out text, and extraction of training continuations."""
from __future__ import annotations

from glassbox.evaluate.memorization import copies_training_text, reproduces_training_text


def summary(report: dict) -> str:
    """One clause per check that had enough text, its verdict first and its numbers after."""
    gen, ref = report["novelty"]["by_n"][-1], report["novelty_of_held_out_text"]["by_n"][-1]
    ex = report["extraction"]
    copies, reproduces = copies_training_text(report), reproduces_training_text(report)
    parts = []
    if copies is not None:
        parts.append(
            ("generated text copies long stretches of the training text" if copies
             else "generated text does not copy long stretches of the training text more than held-out text does")
            + f": {gen['share']:.1%} of its {gen['n']}-character stretches appear verbatim in it"
            + f" (held-out text: {ref['share']:.1%})"
        )
    if reproduces is not None:
        parts.append(
            ("the model reproduces training text it was shown the start of" if reproduces
             else "the model continues training text no better than unseen text")
            + f": {ex['train']['rate']:.1%} of {ex['prefix_len']}-token training prefixes continued exactly for"
            + f" {ex['suffix_len']} tokens, against {ex['val']['rate']:.1%} for validation text"
            + f" (difference {100 * ex['difference']:.1f} ± {100 * ex['difference_stderr']:.1f} points)"
        )
    if not parts:
        return "not enough text to check memorisation"
    return "; ".join(parts)[0].upper() + "; ".join(parts)[1:] + "."

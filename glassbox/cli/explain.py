"""`glassbox explain DATA`: one real training step on one real batch, taken apart with numbers."""
from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    from glassbox.cli import add_train_flags

    p = sub.add_parser("explain", help="one real training step on a batch of your data, every number shown")
    p.add_argument("data", nargs="?", help="data file or folder, or 'digits' (the same data flags as train)")
    add_train_flags(p)
    p.add_argument("--examples", type=int, default=8, help="examples in the explained batch (default 8)")
    p.add_argument("--steps", type=int, default=1, help="steps on the same batch, shown against validation (default 1)")
    p.add_argument("--every", type=int, default=None, help="show every k-th step (default: steps / 10)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from glassbox.cli import settings_from
    from glassbox.run.explain.explain import explain

    settings, sources = settings_from(args)
    for key in ("examples", "steps", "every"):
        settings.pop(key, None)
    explain(**settings, sources=sources, examples=args.examples, steps=args.steps, every=args.every)

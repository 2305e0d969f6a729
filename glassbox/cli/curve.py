"""`glassbox curve DATA`: test accuracy against the number of training examples, or a skewed training set."""
from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    from glassbox.cli import add_train_flags
    from glassbox.run.curve import REPEATS

    p = sub.add_parser("curve", help="what more (or skewed) examples buy: the same model on 1/32 ... all of the data")
    p.add_argument("data", nargs="?", help="data file or folder, or 'digits' (the same data flags as train)")
    add_train_flags(p)
    p.add_argument("--repeats", type=int, default=REPEATS,
                   help=f"trainings per size (or per side of --skew), each its own seed: subset, random start and batch "
                        f"order; a verdict needs a difference beyond their spread (default {REPEATS}; 1: a quick look "
                        f"whose verdicts allow for the test examples' noise only)")
    p.add_argument("--skew", default=None, help="COL=VALUE:SHARE: cut that group down to SHARE of the training split "
                                                "(e.g. sex=Female:0.05) and compare with the unskewed model")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from glassbox.cli import settings_from
    from glassbox.run.curve.curve import curve

    settings, sources = settings_from(args)
    for key in ("repeats", "skew"):
        settings.pop(key, None)
    curve(**settings, sources=sources, repeats=args.repeats, skew=args.skew)

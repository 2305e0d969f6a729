"""`glassbox eval ARTIFACT DATA`: score a frozen artifact on a labelled file, overall, per class (a regression: its
errors and its intervals' coverage), per group, and apart on the examples it never saw."""
from __future__ import annotations

from glassbox.runtime.files import json_text


def add_parser(sub) -> None:
    from glassbox.cli import add_flags

    p = sub.add_parser("eval", help="score a frozen artifact on a labelled file: overall, per class, per group")
    p.add_argument("artifact", help="the artifact folder, RUN/model")
    p.add_argument("data", help="a labelled file or image folder, in the training data's format")
    add_flags(p, ("--label", "--text", "--columns", "--group", "--label-from-name"), default=None)
    p.add_argument("--json", action="store_true", help="the whole result as JSON")
    p.set_defaults(func=run)


def eval_scaling(calibrated: bool, t: float) -> str:
    """eval's words for the artifact's temperature: checked, applied but never checked (older runs), or none."""
    if calibrated:
        return f"calibrated with T = {t:.2f}"
    return f"scaled by T = {t:.2f}, not checked by its run" if t != 1.0 else "uncalibrated"


def run(args) -> None:
    from glassbox.report.words.groups import group_lines
    from glassbox.run.eval.artifact import evaluate_artifact

    columns = [c.strip() for c in args.columns.split(",")] if args.columns else None
    r = evaluate_artifact(args.artifact, args.data, label=args.label, text=args.text, columns=columns,
                          group=args.group or (), label_from_name=args.label_from_name)
    if args.json:
        print(json_text(r, indent=1))
        return
    if r.get("task") == "regression":
        from glassbox.report.words.regression import eval_lines

        lines = eval_lines(r)
        print(lines[0])
        return print_seen(r, lines[1:])
    print(f"{r['n']} examples: accuracy {r['accuracy']:.4f}, NLL {r['nll']:.4f}, ECE {r['ece']:.4f}, "
          f"Brier {r['brier']:.4f} ({eval_scaling(r['calibrated'], r['temperature'])})")
    for c in r["per_class"]["classes"]:
        print(f"  class {c['name']}: precision {c['precision']:.3f} recall {c['recall']:.3f} F1 {c['f1']:.3f} (n={c['support']})")
    u = r.get("unseen")
    unseen = [f"  on the {u['n']:,} examples it never saw: accuracy {u['accuracy']:.4f}, NLL {u['nll']:.4f}, "
              f"ECE {u['ece']:.4f}"] if u else []
    print_seen(r, unseen + group_lines(r.get("groups") or {}, [c["name"] for c in r["per_class"]["classes"]]))


def print_seen(r: dict, after: list[str]) -> None:
    """Whether the file overlaps the model's training examples, then the lines `after` it (scores on the unseen
    rows and per group)."""
    seen = r.get("seen")
    if seen and seen["count"]:
        lines = ", ".join(map(str, seen["lines"][:5])) + (", ..." if seen["count"] > 5 else "")
        print(f"WARNING: {seen['count']:,} of these {r['n']:,} examples ({seen['share']:.1%}; lines {lines}) were in this "
              f"model's training or validation split: on them the scores measure memory, not how it does on new data.")
    elif seen:
        print("none of these examples were in the model's training or validation split")
    else:
        print("this artifact keeps no record of its training examples (no seen.safetensors): if this file overlaps "
              "them, the scores above flatter the model")
    for line in after:
        print(line)

"""The command line: `glassbox demo | train | predict | ...`. Bad input ends in one line and exit code 2."""
from __future__ import annotations

import argparse
import atexit
import importlib
import os
import sys
from pathlib import Path

from glassbox.errors import FromRank0, Stopped, UserError
from glassbox.runtime.files import json_text

# The flags of `train` that are not settings: they say how the command line itself is read.
CLI_ONLY = {"--help": "show this help message and exit",  # argparse's own
            "--config": "YAML or JSON file of settings (same names as the flags)"}
FLAG_TYPES = {"str": str, "int": int, "float": float, "list[str]": str}  # a list is given "a,b" or flag by flag


class Choices:
    """A flag's names, as --help lists them; `names` is a function, so --model's are read from the model registry (and
    torch imported) only when they are shown or checked. A name is checked after parsing, where a refusal is one line
    that lists the names (config.check_choice), so argparse lets every value through here."""

    def __init__(self, names):
        self.names = names

    def __iter__(self):
        return iter(self.names())

    def __contains__(self, value) -> bool:
        return True


def model_names() -> tuple[str, ...]:
    """What --model takes: auto (the default for the data's kind) or a model of the registry."""
    from glassbox.models.registry import MODELS

    return ("auto", *MODELS)


CLI_CHOICES = {"model": model_names}  # settings whose names config.py cannot see (it imports nothing above it)


def flag_of(name: str) -> str:
    return "--" + name.replace("_", "-")


def flag_options(f) -> dict:
    """add_argument's options for a setting's field: its type, choices, metavar and help (with its default)."""
    about = f.metadata
    text = (about["help"] + default_words(f.name)).replace("%", "%%")
    kind = str(f.type).split(" | ")[0]
    if kind == "bool":
        return {"action": "store_true", "help": about["help"].replace("%", "%%")}
    options = {"type": FLAG_TYPES[kind], "metavar": about["metavar"], "help": text}
    if about["flag"] == "repeat":
        options["action"] = "append"
    if f.name in CLI_CHOICES:
        options["choices"] = Choices(CLI_CHOICES[f.name])
        options["help"] = text + "; one of: %(choices)s"
    elif about["choices"]:
        options["choices"] = Choices(lambda: about["choices"])
    return options


def add_flags(p: argparse.ArgumentParser, flags=None, default=argparse.SUPPRESS) -> None:
    """Add the settings' flags (default: all of them), each made from its TrainConfig field (config.py): --name-of-it,
    the field's type, choices and help text, and its default in words."""
    from glassbox.config import setting_fields

    for f in setting_fields():
        flag = flag_of(f.name)
        if f.metadata["flag"] is not None and (flags is None or flag in flags):
            p.add_argument(flag, default=default, **flag_options(f))


def default_words(key: str) -> str:
    """' (default X)' for a setting, with the kinds of run whose default differs (config.py KIND_DEFAULTS)."""
    from glassbox.config import DERIVED, KIND_DEFAULTS, default_of

    value = default_of(key)
    kinds = [f"{kind} {d[key]}" for kind, d in KIND_DEFAULTS.items() if key in d and d[key] is not None]
    if value is None and not kinds and key not in DERIVED:
        return ""
    shown = DERIVED.get(key, "none") if value is None else value
    return f" (default {shown}" + (f"; {', '.join(kinds)}" if kinds else "") + ")"


def add_train_flags(p: argparse.ArgumentParser) -> None:
    add_flags(p)
    p.add_argument("--config", help=CLI_ONLY["--config"])


def settings_from(args: argparse.Namespace) -> tuple[dict, dict]:
    """The settings given (a config file's, then the flags on the command line on top) and where each came from."""
    from glassbox.config import check_choice, load_config_file

    settings = load_config_file(args.config) if getattr(args, "config", None) else {}
    sources = {key: f"config file {args.config}" for key in settings}
    for key, value in vars(args).items():
        if key in ("command", "config", "func") or (key == "data" and value is None):
            continue
        settings[key], sources[key] = value, "command line" if key == "data" else "flag"
    for key, names in CLI_CHOICES.items():  # the names config.py cannot check
        if isinstance(settings.get(key), str):
            check_choice(key, settings[key], names())
    return settings, sources


def cmd_train(args) -> int:
    from glassbox.run.train.start import train

    settings, sources = settings_from(args)
    summary = train(**settings, sources=sources)
    diverged = (summary or {}).get("diverged")
    if diverged:  # one line, like a UserError, and its own exit code (README: Divergence)
        print(f"glassbox: training diverged at step {diverged['step']} (learning rate {diverged['lr']:.3g}); "
              f"{diverged['advice']}", file=sys.stderr)
        return EXIT_DIVERGED
    return 0


def cmd_demo(args) -> None:
    from glassbox.config import DEMO
    from glassbox.run.train.start import train

    print("glassbox demo: a small CNN learns scikit-learn's 1,797 handwritten digits (8x8, real data, offline)")
    train("digits", out=args.out, **DEMO, sources={**{k: "glassbox demo" for k in DEMO}, "data": "glassbox demo",
                                                    "out": "flag"})


def read_inputs(args) -> list[str]:
    if args.file:
        p = Path(args.file)
        if p.is_dir():
            raise UserError(f"--file {p} is a folder; give a file with one input per line")
        if not p.exists():
            raise UserError(f"input file not found: {p}; check the path given to --file")
        if not p.is_file():
            raise UserError(f"--file {p} is not a regular file (a device or a pipe); give a file with one input per line")
        from glassbox.data.table import decode_text

        lines = [ln for ln in decode_text(p.read_bytes(), p).splitlines() if ln.strip()]
        if not lines:
            raise UserError(f"--file {p} holds no inputs (it is empty or blank); give one input per line")
        return lines
    if not args.inputs:
        raise UserError("give inputs to predict: glassbox predict ARTIFACT INPUT... (or --file F)")
    return args.inputs


def cmd_predict(args) -> None:
    from glassbox.infer.predictor import Predictor

    if args.url:
        return predict_over_http(args)
    if args.artifact is None:
        raise UserError("give the artifact folder: glassbox predict RUN/model INPUT... (or --url URL INPUT...)")
    predictor = Predictor(args.artifact)
    from glassbox.infer.inputs import kind_of

    read = kind_of(predictor).file_inputs(args.file, predictor.encoder) if args.file else None
    if read is not None:  # a table file: its rows, with their header
        raw, inputs = read
    else:
        raw = read_inputs(args)
        inputs = predictor.parse(raw)
    print_predictions(raw, predictor.predict(inputs), predictor.how_scaled(), predictor.calibrated, args.json)


def predict_over_http(args) -> None:
    """The same inputs and output as a local predict, answered by `glassbox serve` at --url."""
    from glassbox.infer.auth import read_token
    from glassbox.infer.client import Server, file_rows, wire_inputs

    if args.artifact is not None:  # with --url there is no artifact: the first argument is an input
        args.inputs = [args.artifact, *args.inputs]
    server = Server(args.url, read_token(args.token_file))
    read = file_rows(server.info, args.file) if args.file else None
    if read is not None:  # a table file: its rows, with their header
        raw, sent = read
    else:
        raw = read_inputs(args)
        sent = wire_inputs(server.info, raw)
    predictions, calibrated = server.predict(sent)
    print_predictions(raw, predictions, server.info["probabilities"], calibrated, args.json)


def print_predictions(raw: list[str], predictions: list[dict], how_scaled: str, calibrated: bool, as_json: bool):
    regression = bool(predictions) and "value" in predictions[0]
    if not as_json:  # say what the numbers are, on stderr so stdout stays one line per input
        print(f"value, low and high end of {how_scaled}, input" if regression else
              f"label, probability of that label {how_scaled}, input", file=sys.stderr)
    for text, out in zip(raw, predictions):
        if as_json:
            print(json_text({"input": text, **out, "calibrated": calibrated}))
        elif regression:
            low, high = (f"{end:.6g}" for end in out["interval"]) if out["interval"] else ("-", "-")
            print(f"{out['value']:.6g}\t{low}\t{high}\t{text}")
        else:
            print(f"{out['label']}\t{out['probability']:.4f}\t{text}")


def cmd_generate(args) -> None:
    from glassbox.infer.generator import Generator, check_settings, describe, read_lm_manifest

    if args.info and args.prompt is not None:
        raise UserError("--info describes the model and generates nothing; give --info or --prompt, not both")
    check_settings(args.max_new_tokens, args.temperature, args.top_k, args.seed)  # before the artifact is opened
    manifest = read_lm_manifest(args.artifact)  # a classifier is refused here, with or without a prompt
    if args.info:
        print(describe(manifest))
        return
    if args.prompt is None:
        raise UserError("give a prompt: glassbox generate ARTIFACT --prompt TEXT (or --info)")
    generator = Generator(args.artifact)
    print(generator.generate(args.prompt, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                             seed=args.seed))


def cmd_audit(args) -> int:
    from glassbox.run.audit.audit import audit_data

    settings, _ = settings_from(args)
    for key in ("json", "no_label_errors", "folds"):
        settings.pop(key, None)
    if not args.no_label_errors and args.folds < 2:
        raise UserError(f"--folds must be at least 2 (each example is scored by a model trained on the other folds). "
                        f"Got {args.folds}")
    report = audit_data(label_errors=not args.no_label_errors, folds=args.folds, show=not args.json, **settings)
    if args.json:
        print(json_text(report.to_dict(), indent=1))
    failed = report.has_errors or (settings.get("strict") and report.has_warnings)
    return 1 if failed else 0


def cmd_report(args) -> None:
    from glassbox.report import write_report

    print(write_report(args.run, power_watts=args.power_watts, price_per_kwh=args.price_per_kwh))


COMMANDS = ("eval", "serve", "explain", "curve", "board")  # each glassbox/cli/<name>.py has add_parser(sub), which sets func; imports stay light


class Parser(argparse.ArgumentParser):
    """argparse, but a bad command line ends with one line saying what is wrong (and exit code 2)."""

    def error(self, message: str):
        self.exit(2, f"glassbox: error: {message}; see '{self.prog} --help'\n")


def build_parser() -> argparse.ArgumentParser:
    from glassbox.runtime.version import __version__

    parser = Parser(prog="glassbox", description="Train models from examples and see what really happens.")
    parser.add_argument("--version", action="version", version=f"glassbox {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="train a small CNN on the built-in handwritten digits, end to end")
    p.add_argument("--out", default=None, help="run folder (default runs/<date>-<time>-digits)")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("train", help="train on a CSV/TSV/JSONL/Parquet file, an image folder, a text corpus, or 'digits'")
    p.add_argument("data", nargs="?", help="data file or folder, or 'digits'")
    add_train_flags(p)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("predict", help="label inputs with a frozen artifact (RUN/model)")
    p.add_argument("artifact", nargs="?", help="the artifact folder, RUN/model (none with --url)")
    p.add_argument("inputs", nargs="*", help="CSV rows of feature values, image paths, or texts")
    p.add_argument("--file", help="a file of inputs: CSV with a header (tabular), or one input per line")
    p.add_argument("--json", action="store_true", help="one JSON object per input")
    p.add_argument("--url", help="ask a running 'glassbox serve' instead, e.g. http://127.0.0.1:8000")
    p.add_argument("--token-file", help="with --url: the server's bearer token (or set $GLASSBOX_TOKEN)")
    p.set_defaults(func=cmd_predict)
    p = sub.add_parser("generate", help="continue a prompt with a frozen language model (RUN/model)")
    p.add_argument("artifact", help="the artifact folder of a --task lm run, RUN/model")
    p.add_argument("--prompt", help="the text to continue")
    p.add_argument("--max-new-tokens", type=int, default=200, help="tokens to generate")
    p.add_argument("--temperature", type=float, default=0.8, help="sampling temperature (0 = greedy)")
    p.add_argument("--top-k", type=int, default=None, help="sample only among the k likeliest tokens")
    p.add_argument("--seed", type=int, default=0, help="same seed, same text")
    p.add_argument("--info", action="store_true", help="what the model knows: corpus, size, date (its knowledge cutoff)")
    p.set_defaults(func=cmd_generate)
    p = sub.add_parser("audit", help="what is wrong with the data, before any training (exit 1 on errors)")
    p.add_argument("data", nargs="?", help="data file or folder")
    add_flags(p, ("--label", "--text", "--columns", "--group", "--test", "--label-from-name", "--image-size", "--seed",
                  "--task", "--val-fraction"))
    p.add_argument("--strict", action="store_true", default=argparse.SUPPRESS, help="warnings fail too (exit 1)")
    p.add_argument("--json", action="store_true", help="every finding and every flagged example as JSON")
    p.add_argument("--no-label-errors", action="store_true", help="skip the likely-label-errors check (it trains k models)")
    p.add_argument("--folds", type=int, default=5, help="folds for the out-of-fold label-error check")
    p.add_argument("--config", help="YAML or JSON file of settings")
    p.set_defaults(func=cmd_audit)
    p = sub.add_parser("report", help="(re)write RUN/report.html from a finished run folder")
    p.add_argument("run", help="the run folder")
    add_flags(p, ("--power-watts", "--price-per-kwh"), default=None)
    p.set_defaults(func=cmd_report)
    for name in COMMANDS:  # commands with a file of their own in glassbox/cli/
        importlib.import_module(f"glassbox.cli.{name}").add_parser(sub)
    return parser


EXIT_DIVERGED = 3  # training stopped at a non-finite loss or gradient (2: bad input, 130: interrupted)


def main(argv: list[str] | None = None) -> int:
    # Idle OpenMP threads sleep instead of spinning: on a CPU shared with other work, spinning
    # threads fight for the cores and slow training up to tenfold. Set before torch loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # inputs after an option (`glassbox predict RUN --json "a text"`) are still inputs
        if args.command != "predict" or any(e.startswith("-") for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.inputs = [*args.inputs, *extra]
    torchrun = "TORCHELASTIC_RUN_ID" in os.environ
    if torchrun and os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") != "0":
        from glassbox.runtime.distributed import earlier_refusal

        code = earlier_refusal()
        if code is not None:  # an earlier attempt of this launch ended in a user error: the same again, said once
            return code
    try:
        code = args.func(args)
    except UserError as e:
        said = f"glassbox: error: {e}"
        if torchrun:  # only rank 0 says it (or a rank whose error is its own), and torchrun does not retry it
            from glassbox.runtime.distributed import refuse_restarts

            said = refuse_restarts(2, None if isinstance(e, FromRank0) else said)
        if said:
            print(said, file=sys.stderr)
        return 2
    except Stopped as e:  # under torchrun, on request: 0, or torchrun --max-restarts would start the run again
        if e.main:
            print(f"glassbox: {e}", file=sys.stderr)
        return 0
    except KeyboardInterrupt:
        print("glassbox: interrupted", file=sys.stderr)
        return 130
    except RuntimeError as e:  # under torchrun: a peer died mid-collective; one line here, its own error says why
        from glassbox.runtime.distributed import lost_peers

        if lost_peers(e) is None:
            raise
        print(f"glassbox: error: {lost_peers(e)}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader went away (glassbox predict ... | head): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:  # the file system said no: a path too long, a full disk, no permission
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        print(f"glassbox: error: {e.strerror or e}{where}; check the path, the free space and the permissions",
              file=sys.stderr)
        return 2
    if code == EXIT_DIVERGED and torchrun:  # lowering --lr is the user's to do: torchrun does not retry it
        from glassbox.runtime.distributed import refuse_restarts

        refuse_restarts(code)
    return code or 0


def entry() -> None:
    """The `glassbox` command: main(), then a quick exit. Tearing down torch, its compiler stack and scikit-learn
    at interpreter exit takes a second or more (1.3 s after `glassbox demo`) and does nothing a user needs: every
    file glassbox writes is closed by then (atomic writes, `with` blocks), and the exit handlers still run. Under
    torchrun the normal exit is kept, so that the process group is left as torch expects."""
    code = main()
    if os.environ.get("TORCHELASTIC_RUN_ID") or os.environ.get("WORLD_SIZE"):
        if "glassbox.runtime.distributed" in sys.modules:  # a stop signal now (torchrun ending the others) is moot
            sys.modules["glassbox.runtime.distributed"].exiting()
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away, or a closed stream: nothing left to say
            pass
    atexit._run_exitfuncs()
    os._exit(code)

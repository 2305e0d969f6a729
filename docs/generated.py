"""The parts of the user guide that are made from the code, at build time (a MkDocs hook: mkdocs.yml `hooks:`).

A page asks for one with a marker line of its own, `<!-- glassbox: NAME [ARG] -->`, and the built page holds the
table in its place, so a setting or flag added, renamed or removed in the code is in the next build:

    settings        every setting of a run: glassbox/config.py's TrainConfig fields (key, flag, help, default, values)
    kind-defaults   KIND_DEFAULTS: what differs per kind of run
    derived         DERIVED: the values worked out from the data's size when not given
    demo            DEMO: glassbox demo's settings
    options CMD     one command's arguments and flags, from the parser the command line runs (glassbox/cli)
    commands        every command, a section each

An unknown marker fails the build. `python docs/generated.py PAGE.md` prints a page with its tables filled in."""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the checkout's glassbox, however mkdocs was started
    sys.path.insert(0, str(ROOT))

MARKER = re.compile(r"^<!-- glassbox: ([a-z-]+)(?: ([a-z-]+))? -->$", re.M)
REPEATS = {"group"}  # settings given once per value on the command line
STR_WORDS = {"COL": "a column name", "PATH": "a file or folder", "DIR": "a folder", "REGEX": "a regular expression",
             None: "a file or folder, or a built-in name", "DEVICE": "`auto`, `cpu`, `cuda` or `cuda:N`"}


def cell(text) -> str:
    """Text for a Markdown table cell: pipes and angle brackets escaped, one line."""
    return str(text).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def shown(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "none"
    return "none" if value is None else str(value)


# --- the settings (glassbox/config.py) ---

def value_words(f) -> str:
    """What a setting takes, from its field: its names, its range, or its type."""
    from glassbox.cli import CLI_CHOICES

    about, kind = f.metadata, str(f.type).split(" | ")[0]
    if f.name in CLI_CHOICES:
        return "one of: " + ", ".join(f"`{n}`" for n in CLI_CHOICES[f.name]())
    if about["choices"]:
        return "one of: " + ", ".join(f"`{n}`" for n in about["choices"])
    if kind == "bool":
        return "on or off: the flag alone; `true` or `false` in a file"
    if kind == "list[str]":
        return "column names" + (": the flag once per name" if f.name in REPEATS else ", comma-separated on the command line")
    if kind == "str":
        return STR_WORDS.get(about["metavar"], "a name")
    number = "a whole number" if kind == "int" else "a number"
    bounds = about["range"]
    if bounds is None:
        return number
    words = str(bounds)
    if words.startswith("a number"):  # the range says it all ("a number greater than 0")
        return number + words[len("a number"):]
    return words if words.startswith("a ") else f"{number}, {words}"


def default_cell(name: str) -> str:
    """A setting's global default (or the rule that derives it), then the kinds of run whose default differs."""
    from glassbox.config import DERIVED, KIND_DEFAULTS, default_of

    value = default_of(name)
    text = f"`{shown(value)}`" if value is not None or name not in DERIVED else f"derived: {DERIVED[name]}"
    kinds = [f"{kind} `{shown(d[name])}`" for kind, d in KIND_DEFAULTS.items() if name in d]
    return text + ("; " + ", ".join(kinds) if kinds else "")


def settings_table() -> str:
    from glassbox.cli import flag_of
    from glassbox.config import setting_fields

    rows = ["| setting (config-file key) | flag | what it sets | default | takes |", "|---|---|---|---|---|"]
    for f in setting_fields():
        flag = "the DATA argument" if f.metadata["flag"] is None else f"`{flag_of(f.name)}`"
        rows.append(f"| `{f.name}` | {flag} | {cell(f.metadata['help'])} | {cell(default_cell(f.name))} | "
                    f"{cell(value_words(f))} |")
    return "\n".join(rows)


def kind_defaults_table() -> str:
    from glassbox.config import KIND_DEFAULTS, KIND_WORDS

    rows = ["| kind of run | its defaults |", "|---|---|"]
    for kind, values in KIND_DEFAULTS.items():
        given = ", ".join(f"`{k}` {shown(v)}" for k, v in values.items())
        rows.append(f"| `{kind}`: {cell(KIND_WORDS[kind])} | {cell(given)} |")
    return "\n".join(rows)


def derived_table() -> str:
    from glassbox.config import DERIVED

    return "\n".join(["| value | when not given |", "|---|---|",
                      *(f"| `{k}` | {cell(rule)} |" for k, rule in DERIVED.items())])


def demo_table() -> str:
    from glassbox.config import DEMO

    return "\n".join(["| setting | glassbox demo |", "|---|---|", *(f"| `{k}` | `{shown(v)}` |" for k, v in DEMO.items())])


# --- the commands (glassbox/cli) ---

def commands() -> dict[str, tuple[str, argparse.ArgumentParser]]:
    """Each command's one-line help and parser, in the order `glassbox --help` lists them."""
    from glassbox.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help for a in sub._choices_actions}
    return {name: (helps[name], p) for name, p in sub.choices.items()}


def setting_flags() -> set[str]:
    from glassbox.cli import flag_of
    from glassbox.config import setting_fields

    return {flag_of(f.name) for f in setting_fields()}


def options_table(name: str) -> str:
    """A command's arguments and flags as its parser declares them; train, explain and curve take every setting as a
    flag (the Configuration page), so only their own flags are listed."""
    parser = commands()[name][1]
    every_setting = "--lr" in {o for a in parser._actions for o in a.option_strings} and name != "audit"
    expand = parser._get_formatter()._expand_help
    rows = ["| argument or flag | what it does |", "|---|---|"]
    for a in parser._actions:
        if isinstance(a, argparse._HelpAction) or (every_setting and a.option_strings[-1:] and
                                                   a.option_strings[-1] in setting_flags()):
            continue
        if a.option_strings:
            takes = "" if a.nargs == 0 else " " + (a.metavar or a.dest.upper())
            what = f"`{a.option_strings[-1]}{takes}`" + (" (once per value)" if isinstance(a, argparse._AppendAction) else "")
        else:
            what = f"`{(a.metavar or a.dest).upper()}`" + (" (optional)" if a.nargs in ("?", "*") else "")
        text = expand(a) if a.help else ""
        if a.default not in (None, False, argparse.SUPPRESS) and "(default" not in text:
            text += f" (default {shown(a.default)})"
        rows.append(f"| {what} | {cell(text)} |")
    if every_setting:
        rows.append("| every setting | each setting of a run is a flag: see [Configuration](configuration.md#settings) |")
    return "\n".join(rows)


def commands_section() -> str:
    parts = []
    for name, (help_text, _) in commands().items():
        parts += [f"## glassbox {name}", "", cell(help_text[0].upper() + help_text[1:]) + ".", "", options_table(name), ""]
    return "\n".join(parts)


MAKERS = {"settings": settings_table, "kind-defaults": kind_defaults_table, "derived": derived_table,
          "demo": demo_table, "options": options_table, "commands": commands_section}


def fill(markdown: str, where: str = "page") -> str:
    """The page with each marker replaced by what it names."""
    def made(m: re.Match) -> str:
        name, arg = m.group(1), m.group(2)
        if name not in MAKERS or (name == "options") != (arg is not None):
            raise ValueError(f"{where}: unknown marker {m.group(0)!r}; markers are: {', '.join(MAKERS)} (options CMD)")
        if arg is not None and arg not in commands():
            raise ValueError(f"{where}: {m.group(0)!r} names no command; commands are: {', '.join(commands())}")
        return MAKERS[name](arg) if arg is not None else MAKERS[name]()

    return MARKER.sub(made, markdown)


def on_page_markdown(markdown: str, page, config, files) -> str:  # the MkDocs hook
    return fill(markdown, page.file.src_path)


if __name__ == "__main__":
    for path in sys.argv[1:]:
        print(fill(Path(path).read_text(encoding="utf-8"), path))

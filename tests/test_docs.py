"""The user guide cannot go stale: it builds with `mkdocs build --strict`, and every command it shows is checked.

The fence of a code block in README.md and docs/*.md says what is done with it (DEVELOPERS.md, "The user guide"):

- ```console: run, in page order, in a scratch folder beside the real data (`../shared/data`). A `$ ` line is a
  command (glassbox in this process, anything else in a shell); the lines after it are output it must print, in
  order (spacing ignored, `...` standing for anything). It must exit 0, or the code its
  trailing `# exit N` names. A command several pages show runs once.
- ```bash: checked, not run (a long training, a server, torchrun): each glassbox command is read by glassbox's own
  parser and its settings checked as a run would (names, types, ranges, combinations), and each `../shared/data`
  path it names must exist; any other program must be one this file knows.
- ```python is compiled, ```yaml is read as a config file (its keys and values checked), ```json is parsed, and
  ```text is shown as it is."""
from __future__ import annotations

import argparse
import io
import json
import os
import re
import shlex
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field, fields
from pathlib import Path

import pytest
import yaml

from glassbox.cli import build_parser, main, settings_from
from tests.conftest import ROOT, subprocess_env

DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
FENCES = {"console", "bash", "python", "yaml", "json", "text"}
OTHER_PROGRAMS = {"pip", "tensorboard", "curl", "tar", "kill", "mkdocs"}  # may appear in a checked (bash) block
# flags of other programs that a page may name (torchrun's, tensorboard's, pip's)
OTHER_FLAGS = {"--nproc_per_node", "--nnodes", "--rdzv-backend", "--rdzv-endpoint", "--rdzv-id", "--max-restarts",
               "--logdir", "--index-url"}
EXIT = re.compile(r"\s+#\s*exit\s+(\d+)\s*$")


@dataclass
class Command:
    line: str
    exit_code: int = 0
    output: list[str] = field(default_factory=list)


def name(page: Path) -> str:
    return str(page.relative_to(ROOT))


def code_blocks(text: str) -> list[tuple[str, str]]:
    """Each fenced block as (its fence's language, its body)."""
    return re.findall(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", text, flags=re.M | re.S)


def joined_lines(body: str) -> list[str]:
    """The block's lines with `\\` continuations joined."""
    return body.replace("\\\n", " ").splitlines()


def console_commands(body: str) -> list[Command]:
    commands = []
    for line in joined_lines(body):
        if line.startswith("$ "):
            code = EXIT.search(line)
            commands.append(Command(EXIT.sub("", line[2:]).strip(), int(code.group(1)) if code else 0))
        elif line.strip():
            assert commands, f"output before any command: {line!r}"
            commands[-1].output.append(line)
    return commands


def blocks_of(page: Path, fence: str) -> list[str]:
    return [body for lang, body in code_blocks(page.read_text(encoding="utf-8")) if lang.strip() == fence]


# --- the guide builds, strictly, with the tables made from the code ---

@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    pytest.importorskip("mkdocs", reason="mkdocs is not installed: pip install -e '.[docs]' (it is in '.[test]' too)")
    pytest.importorskip("material", reason="mkdocs-material is not installed: pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp("site")
    p = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=300, env=subprocess_env())
    assert p.returncode == 0, p.stdout + p.stderr
    return out


def built(site: Path, page: str) -> str:
    return (site / page / "index.html").read_text(encoding="utf-8")


def subcommand(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]


def test_the_guide_builds_strictly_with_every_setting_and_flag_from_the_code(site):
    from glassbox.config import setting_fields

    for page in ("tables", "text", "images", "language-models", "training", "audit", "report", "explain-curve",
                 "serving", "board", "distributed", "python-api", "configuration", "commands", "troubleshooting",
                 "benchmarks"):
        assert (site / page / "index.html").is_file(), page
    configuration, serving, commands = built(site, "configuration"), built(site, "serving"), built(site, "commands")
    for f in setting_fields():
        assert f"<code>{f.name}</code>" in configuration, f.name
        if f.metadata["flag"] is not None:
            assert f"<code>--{f.name.replace('_', '-')}</code>" in configuration, f.name
    assert "<!-- glassbox:" not in configuration + serving + commands  # no marker left unfilled
    parser = build_parser()
    serve = [a.option_strings[-1] for a in subcommand(parser, "serve")._actions if a.option_strings]
    assert len(serve) > 10
    for flag in serve:  # a flag the serving engineer adds is on the page at the next build
        if flag != "--help":
            assert f"<code>{flag} " in serving or f"<code>{flag}</code>" in serving, flag
    for sub in next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices:
        assert f'id="glassbox-{sub}"' in commands, sub


def test_an_unknown_marker_fails_the_build():
    sys.path.insert(0, str(DOCS))
    try:
        import generated
    finally:
        sys.path.remove(str(DOCS))
    with pytest.raises(ValueError, match="unknown marker"):
        generated.fill("<!-- glassbox: setings -->")
    with pytest.raises(ValueError, match="names no command"):
        generated.fill("<!-- glassbox: options serv -->")
    assert "`--max-batch-size MAX_BATCH_SIZE`" in generated.fill("<!-- glassbox: options serve -->")


def test_the_readmes_links_reach_pages_and_anchors_that_exist(site):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)\s]+)\)", readme)
    assert any(link.startswith("docs/benchmarks.md#") for link in links)
    for link in links:
        if link.startswith(("http://", "https://")):
            continue
        path, _, anchor = link.partition("#")
        assert (ROOT / path).exists(), link
        if path.startswith("docs/") and path.endswith(".md") and anchor:
            page = path[len("docs/"):-len(".md")]
            assert f'id="{anchor}"' in built(site, "" if page == "index" else page), link


# --- the README is a short door ---

def prose(text: str, inline_code: bool = False) -> str:
    """Markdown without its code blocks and HTML comments, and without its inline code unless asked."""
    text = re.sub(r"^```.*?^```[ \t]*$", "", text, flags=re.M | re.S)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    return text if inline_code else re.sub(r"`[^`\n]*`", "", text)


def test_the_readme_is_short_and_its_test_command_is_ci_s():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.split()) <= 1500
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = "pip install torch==2.13.0 -e '.[test]' && python -m pytest"
    shown = [line.strip() for body in blocks_of(ROOT / "README.md", "bash") for line in body.splitlines()]
    ran = ci.split("# README test command:\n")[1].splitlines()[0]
    assert command in shown and ran.replace("pip install -q ", "pip install ") == command
    picture = re.search(r"!\[[^\]]+\]\((docs/img/[^)]+\.png)\)", readme)
    assert picture and 10_000 < (ROOT / picture.group(1)).stat().st_size < 300_000


def test_every_number_in_the_readme_is_a_link_to_its_measurement():
    text = prose((ROOT / "README.md").read_text(encoding="utf-8"))
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", text)  # the picture
    text = re.sub(r"\[[^\]]*\]\(docs/benchmarks\.md#[^)]+\)", "", text)  # a number's link to its measured row
    text = re.sub(r"\]\([^)]*\)", "]", text)  # other links keep their words, not their addresses
    assert re.findall(r"[^\s]*\d[^\s]*", text) == []


# --- every flag a page names exists ---

def glassbox_flags() -> set[str]:
    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices.values()
    return {o for p in (parser, *subs) for a in p._actions for o in a.option_strings}


@pytest.mark.parametrize("page", [p for p in PAGES if p.name != "benchmarks.md"], ids=name)
def test_every_flag_a_page_names_is_a_flag_of_glassbox(page):
    text = prose(page.read_text(encoding="utf-8"), inline_code=True)
    named = set(re.findall(r"(?<![\w/-])--[a-z][a-z0-9_-]*[a-z0-9]", text))
    assert named - glassbox_flags() - OTHER_FLAGS == set()


# --- every code block is checked as its fence says ---

@pytest.mark.parametrize("page", PAGES, ids=name)
def test_every_code_block_has_a_known_fence(page):
    langs = [lang.strip() for lang, _ in code_blocks(page.read_text(encoding="utf-8"))]
    if page.name != "benchmarks.md":  # its results are printed output, shown as it was
        assert set(langs) <= FENCES, set(langs) - FENCES


@pytest.mark.parametrize("page", PAGES, ids=name)
def test_python_yaml_and_json_blocks_are_valid(page):
    from glassbox.config import make_config

    for i, body in enumerate(blocks_of(page, "python")):
        compile(body, f"{name(page)} python block {i + 1}", "exec")
    for body in blocks_of(page, "yaml"):  # a config file: its keys and values are a run's settings
        make_config(yaml.safe_load(body))
    for body in blocks_of(page, "json"):
        json.loads(body)


def check_glassbox(argv: list[str]) -> None:
    """Read a command line as `glassbox` would, and its settings as a run would, without running it."""
    from glassbox.config import SETTINGS, make_config

    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        try:
            args, extra = build_parser().parse_known_args(argv)
        except SystemExit as e:
            raise AssertionError(f"glassbox {shlex.join(argv)}: {err.getvalue().strip()}") from e
    if extra and (args.command != "predict" or any(e.startswith("-") for e in extra)):  # as glassbox.cli.main
        raise AssertionError(f"glassbox {shlex.join(argv)}: unrecognized arguments: {' '.join(extra)}")
    for path in (a for a in argv if a.startswith("../shared/")):
        assert (ROOT / path).exists(), f"{path} does not exist"
    if args.command in ("train", "audit", "explain", "curve"):
        if getattr(args, "config", None) and not Path(args.config).exists():
            args.config = None  # a file the page makes (or a run writes) first: its flags are checked
        settings, _ = settings_from(args)
        make_config({k: v for k, v in settings.items() if k in SETTINGS})
    elif args.command == "serve":
        from glassbox.infer.limits import Limits
        from glassbox.runtime.ports import check_port

        check_port(args.port)
        Limits(**{f.name: getattr(args, f.name) for f in fields(Limits)})
    elif args.command == "generate":
        from glassbox.infer.generator import check_settings

        check_settings(args.max_new_tokens, args.temperature, args.top_k, args.seed)


def check_shell(line: str) -> int:
    """Check each command of a line in a bash block (commands joined by &&); return how many were glassbox's."""
    commands, command = [], []
    for word in shlex.split(line, comments=True) + ["&&"]:
        if word != "&&":
            command.append(word)
        elif command:
            commands.append(command)
            command = []
    checked = 0
    for words in commands:
        while re.match(r"^[A-Z_]+=", words[0]):  # VAR=value before the command
            words = words[1:]
        if words[0] == "glassbox":
            check_glassbox(words[1:])
        elif words[0] in ("python", "torchrun") and "-m" in words and words[words.index("-m") + 1] == "glassbox":
            check_glassbox(words[words.index("-m") + 2:])
        elif words[:3] == ["python", "-m", "pytest"] or words[0] in OTHER_PROGRAMS:
            continue
        elif words[0] == "python":
            assert (ROOT / words[1]).is_file(), shlex.join(words)
            continue
        else:
            raise AssertionError(f"a checked block runs {words[0]!r}: make it a glassbox command, or add the program "
                                 f"to OTHER_PROGRAMS in tests/test_docs.py")
        checked += 1
    return checked


@pytest.mark.parametrize("page", [p for p in PAGES if blocks_of(p, "bash")], ids=name)
def test_bash_blocks_are_commands_glassbox_accepts(page):
    assert sum(check_shell(line) for body in blocks_of(page, "bash") for line in joined_lines(body)) > 0


def test_the_checker_refuses_what_glassbox_would():
    with pytest.raises(AssertionError, match="unrecognized arguments: --lable"):
        check_shell("glassbox train data.csv --lable income")
    with pytest.raises(AssertionError, match="does not exist"):
        check_shell("glassbox train ../shared/data/uci_adult/adult.csv --label income")
    with pytest.raises(Exception, match="'lr' setting must be a number greater than 0"):
        check_shell("torchrun --nproc_per_node 2 -m glassbox train data.csv --label y --lr -1")
    with pytest.raises(Exception, match="--max-inputs"):
        check_shell("glassbox serve runs/a/model --max-inputs 5000")
    with pytest.raises(AssertionError, match="a checked block runs 'rm'"):
        check_shell("rm -rf runs")
    assert check_shell("pip install -e . && glassbox demo  # a comment") == 1


# --- console blocks: run, their output checked ---

@pytest.fixture(scope="session")
def scratch(tmp_path_factory) -> Path:
    """A folder beside the real data, as a checkout is: ../shared/data reaches it."""
    root = tmp_path_factory.mktemp("guide")
    (root / "shared").symlink_to(ROOT.parent / "shared", target_is_directory=True)
    (root / "work").mkdir()
    return root / "work"


RAN: dict[str, tuple[int, str]] = {}  # a command's exit code and output, the first time a page ran it


def run(command: str, cwd: Path) -> tuple[int, str]:
    words = shlex.split(command)
    if words[0] != "glassbox":
        p = subprocess.run(command, shell=True, cwd=cwd, capture_output=True, text=True, timeout=300,
                           env=subprocess_env())
        return p.returncode, p.stdout + p.stderr
    out = io.StringIO()
    old = Path.cwd()
    os.chdir(cwd)
    try:
        with redirect_stdout(out), redirect_stderr(out):
            try:
                code = main(words[1:])
            except SystemExit as e:  # argparse: --help, or a bad command line
                code = e.code if isinstance(e.code, int) else 2
    finally:
        os.chdir(old)
    return code, out.getvalue()


def printed(expected: list[str], output: str) -> str | None:
    """None if the page's lines are in the output in their order (spacing ignored, `...` standing for anything),
    else the first line that is not."""
    flat, at = " ".join(output.split()), 0
    for line in (line for line in expected if line.strip() != "..."):
        pattern = ".*?".join(re.escape(" ".join(part.split())) for part in line.split("..."))
        found = re.compile(pattern).search(flat, at)
        if found is None:
            return line
        at = found.end()
    return None


def test_the_output_check_is_strict_where_it_should_be():
    output = "label, probability\nspam\t1.0000\tURGENT! call now\nham\t0.9000\thello\n"
    assert printed(["spam 1.0000 URGENT! call now", "...", "ham ... hello"], output) is None
    assert printed(["spam ... call now"], output) is None
    assert printed(["ham ... call now"], output) == "ham ... call now"
    assert printed(["spam 0.9000 URGENT! call now"], output) == "spam 0.9000 URGENT! call now"
    assert printed(["ham ... hello", "spam ... call now"], output) == "spam ... call now"  # out of order


@pytest.mark.parametrize("page", [p for p in PAGES if blocks_of(p, "console")], ids=name)
def test_console_blocks_run_and_print_what_the_page_shows(page, scratch):
    commands = console_commands("\n".join(blocks_of(page, "console")))
    for path in (w for c in commands for w in shlex.split(c.line) if w.startswith("../shared/")):
        if not (scratch / path).exists():
            pytest.skip(f"real data not found: {path}")
    for command in commands:
        if command.line not in RAN:
            RAN[command.line] = run(command.line, scratch)
        code, output = RAN[command.line]
        assert code == command.exit_code, f"{name(page)}: $ {command.line}\nexit {code}\n{output[-3000:]}"
        missing = printed(command.output, output)
        assert missing is None, f"{name(page)}: $ {command.line}\nnot printed: {missing}\n{output[-3000:]}"

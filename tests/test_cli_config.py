"""The command line and the config held to each other: every setting (config.py's TrainConfig) is a `train` flag with
its field's type, choices, default and help text; every `train` flag is a setting or one of the CLI's own; the commands
that reuse settings take them as train does; and each declared constraint is what a bad value meets."""
import argparse
import inspect
import re

import pytest

from glassbox.cli import CLI_ONLY, build_parser, main, model_names, settings_from
from glassbox.config import DEMO, DERIVED, KIND_DEFAULTS, TrainConfig, default_of, make_config, setting_fields
from glassbox.errors import UserError

TYPES = {"str": str, "int": int, "float": float, "list[str]": str}  # a list is given "a,b" (--columns) or flag by flag


def command(name: str) -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def options(name: str) -> dict[str, argparse.Action]:
    return {a.option_strings[-1]: a for a in command(name)._actions if a.option_strings}


def flag(key: str) -> str:
    return "--" + key.replace("_", "-")


@pytest.mark.parametrize("f", [f for f in setting_fields() if f.name != "data"], ids=lambda f: f.name)
def test_every_setting_is_a_train_flag_with_its_fields_type_choices_default_and_help(f):
    action = options("train")[flag(f.name)]
    kind = str(f.type).split(" | ")[0]
    if kind == "bool":
        assert isinstance(action, argparse._StoreTrueAction) and default_of(f.name) is False
    else:
        assert action.type is TYPES[kind]
        assert isinstance(action, argparse._AppendAction) == (kind == "list[str]" and f.name == "group")
    names = model_names() if f.name == "model" else f.metadata["choices"]
    assert (None if action.choices is None else tuple(action.choices)) == names
    # a flag left out is no setting given: the run takes the default of its kind of data, else the field's
    assert action.default is argparse.SUPPRESS
    text = action.help % {"choices": ", ".join(names or ())}
    assert text.startswith(f.metadata["help"])
    shown, default = text[len(f.metadata["help"]):], default_of(f.name)  # what the CLI adds: the default in words
    if kind != "bool" and default is not None:
        assert shown.startswith(f" (default {default}")
    elif default is None and f.name in DERIVED:
        assert shown.startswith(f" (default {DERIVED[f.name]}")
    elif any(d.get(f.name) is not None for d in KIND_DEFAULTS.values()):
        assert shown.startswith(" (default none; ")  # and the kinds of run that set one
    else:  # the run resolves it (the field's help says how, where it matters)
        assert "(default" not in shown


def test_the_data_setting_is_trains_argument():
    assert [a.dest for a in command("train")._actions if not a.option_strings] == ["data"]
    assert next(f for f in setting_fields() if f.name == "data").metadata["flag"] is None


def test_every_train_flag_is_a_setting_or_the_clis_own():
    settings = {flag(f.name) for f in setting_fields()}
    others = set(options("train")) - settings
    assert others == set(CLI_ONLY)
    assert all(CLI_ONLY[o] == options("train")[o].help for o in others)


def test_model_names_are_the_registrys():
    from glassbox.models.registry import MODELS

    assert model_names() == ("auto", *MODELS)
    assert "--model MODEL" in command("train").format_help()


def test_flags_become_settings_of_the_fields_types(tmp_path):
    args = build_parser().parse_args(["train", "data.csv", "--lr", "0.5", "--epochs", "2", "--group", "a", "--group", "b",
                                      "--columns", "a, b", "--quiet", "--model", "mlp", "--control", "shuffled-labels"])
    settings, sources = settings_from(args)
    cfg = make_config(settings)
    assert (cfg.lr, cfg.epochs, cfg.group, cfg.columns, cfg.quiet) == (0.5, 2.0, ["a", "b"], ["a", "b"], True)
    assert (cfg.model, cfg.control, cfg.data) == ("mlp", "shuffled-labels", "data.csv")
    assert sources["lr"] == "flag" and "batch_size" not in settings  # a flag left out is not given


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("glassbox: error:"), err
    return lines[0]


def test_an_unknown_model_is_refused_in_one_line_listing_the_registrys(capsys, tmp_path, digits_csv):
    names = ", ".join(model_names())
    out = tmp_path / "r"
    assert main(["train", str(digits_csv), "--label", "digit", "--model", "resnet", "--out", str(out)]) == 2
    assert f"unknown model 'resnet'; choose one of: {names}" in one_line(capsys.readouterr().err)
    (tmp_path / "c.yaml").write_text("model: resnet\n")  # a config file's model is checked the same way
    assert main(["curve", str(digits_csv), "--label", "digit", "--config", str(tmp_path / "c.yaml"),
                 "--out", str(out)]) == 2
    assert f"unknown model 'resnet'; choose one of: {names}" in one_line(capsys.readouterr().err)
    assert not out.exists()


def test_a_name_a_setting_does_not_take_is_refused_in_one_line(capsys, tmp_path, digits_csv):
    assert main(["explain", str(digits_csv), "--label", "digit", "--loss", "l1", "--out", str(tmp_path / "r")]) == 2
    assert "unknown loss 'l1'; choose one of: mse, huber" in one_line(capsys.readouterr().err)


@pytest.mark.parametrize("name", ["audit", "eval", "report", "curve", "explain"])
def test_commands_that_reuse_settings_take_them_as_train_does(name):
    train = options("train")
    reused = {o: a for o, a in options(name).items() if o in train and o not in ("--help", "--strict", "--config")}
    assert reused, name
    for o, a in reused.items():
        assert (a.type, a.help, type(a)) == (train[o].type, train[o].help, type(train[o])), (name, o)
        if name in ("eval", "report"):  # they read the flags themselves: a flag left out is None
            assert a.default is None
        else:
            assert a.default is argparse.SUPPRESS


def test_the_demo_trains_the_configs_demo_settings(monkeypatch, capsys):
    import glassbox.run.train.start

    calls = []
    monkeypatch.setattr(glassbox.run.train.start, "train", lambda *a, **kw: calls.append((a, kw)))
    assert main(["demo", "--out", "somewhere"]) == 0
    (data,), kw = calls[0]
    assert data == "digits" and kw.pop("out") == "somewhere"
    sources = kw.pop("sources")
    assert kw == DEMO and all(sources[k] == "glassbox demo" for k in DEMO)
    assert "digits" in capsys.readouterr().out


def test_the_cost_ledgers_price_is_the_settings():
    from glassbox.evaluate.cost import cost_ledger

    assert inspect.signature(cost_ledger).parameters["price_per_kwh"].default == TrainConfig().price_per_kwh


def outside(bounds, integer: bool) -> list:
    """Values just outside a Range: at an open bound, or one step past a closed one."""
    step = 1 if integer else 0.5
    values = []
    if bounds.lo is not None:
        values.append(bounds.lo if bounds.open else bounds.lo - step)
    if bounds.hi is not None:
        values.append(bounds.hi if bounds.open else bounds.hi + step)
    return values


RANGED = [(f.name, v) for f in setting_fields() if f.metadata["range"] is not None
          for v in outside(f.metadata["range"], str(f.type).startswith("int"))]


@pytest.mark.parametrize("key, value", RANGED, ids=[f"{k}={v}" for k, v in RANGED])
def test_each_declared_range_refuses_a_value_just_outside(key, value):
    bounds = next(f for f in setting_fields() if f.name == key).metadata["range"]
    with pytest.raises(UserError, match=f"^The '{key}' setting must be {re.escape(str(bounds))}"):
        make_config({key: value})


def test_checks_across_settings_read_the_fields_defaults():
    lr, n_embd, val = default_of("lr"), default_of("n_embd"), default_of("val_fraction")
    with pytest.raises(UserError, match=f"above lr \\({lr:g}\\)"):
        make_config({"min_lr": lr * 2})
    make_config({"min_lr": lr})
    with pytest.raises(UserError, match=f"n_embd \\({n_embd}\\) must be a multiple of n_head \\(3\\)"):
        make_config({"n_head": 3})
    with pytest.raises(UserError, match="at least 10% of the examples"):
        make_config({"test_fraction": 0.9 - val})
    make_config({"test_fraction": 0.89 - val})

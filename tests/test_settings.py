"""Settings: a value the user gave is trained exactly as given (or refused in one line), every other value is the
kind's default or the global one, and RUN/config.json says which for each."""
from __future__ import annotations

import json

import pytest
from safetensors import safe_open

from glassbox.cli import main
from glassbox.config import KIND_DEFAULTS, TrainConfig, resolve, schedule
from glassbox.errors import UserError
from tests.conftest import shared

SMALL = ["--max-steps", "3", "--quiet"]


@pytest.fixture(scope="module")
def sms(tmp_path_factory):
    """The first 1,500 real SMS messages: enough text for a BPE vocabulary of well over 1,024 subwords."""
    lines = shared("sms_spam_collection", "SMSSpamCollection").read_text(encoding="utf-8").splitlines(keepends=True)
    path = tmp_path_factory.mktemp("sms") / "sms1500.tsv"
    path.write_text("".join(lines[:1500]), encoding="utf-8")
    return path


TEXT = ["--columns", "label,text", "--text", "text", "--label", "label"]


def manifest(run):
    return json.loads((run / "model" / "manifest.json").read_text())


def saved(run):
    return json.loads((run / "config.json").read_text())


def weight_names(run) -> set[str]:
    with safe_open(str(run / "model" / "model.safetensors"), "pt") as f:
        return set(f.keys())


# --- the three settings that used to be replaced ------------------------------------------------------------

def test_dropout_0_on_a_table_trains_without_dropout(tmp_path, digits_csv):
    run = tmp_path / "r"
    assert main(["train", str(digits_csv), "--label", "digit", "--dropout", "0", *SMALL, "--out", str(run)]) == 0
    assert manifest(run)["model_config"]["dropout"] == 0.0
    assert saved(run)["dropout"] == 0.0 and saved(run)["sources"]["dropout"] == "flag"
    default = tmp_path / "d"  # and left out, the table's own default, named as such
    assert main(["train", str(digits_csv), "--label", "digit", *SMALL, "--out", str(default)]) == 0
    assert manifest(default)["model_config"]["dropout"] == 0.1
    assert saved(default)["sources"]["dropout"] == "default for tabular data"


def test_transformer_depth_and_dropout_are_trained_as_given(tmp_path, sms):
    run = tmp_path / "r"
    assert main(["train", str(sms), *TEXT, "--model", "transformer", "--n-layer", "3", "--dropout", "0",
                 "--vocab-size", "300", *SMALL, "--out", str(run)]) == 0
    config = manifest(run)["model_config"]
    assert config["n_layer"] == 3 and config["dropout"] == 0.0
    layers = {name.split(".")[2] for name in weight_names(run) if name.startswith("encoder.layers.")}
    assert layers == {"0", "1", "2"}, sorted(weight_names(run))  # three blocks of weights, not two


def test_transformer_vocabulary_size_is_trained_as_given(tmp_path, sms):
    run = tmp_path / "r"
    assert main(["train", str(sms), *TEXT, "--model", "transformer", "--vocab-size", "1024", *SMALL,
                 "--out", str(run)]) == 0
    assert manifest(run)["model_config"]["vocab_size"] == 1024
    with safe_open(str(run / "model" / "model.safetensors"), "pt") as f:
        assert f.get_slice("tok_emb.weight").get_shape()[0] == 1024
    default = tmp_path / "d"  # left out: the Transformer's default of 8,000, more than 1,500 messages fill
    assert main(["train", str(sms), *TEXT, "--model", "transformer", *SMALL, "--out", str(default)]) == 0
    assert 1024 < manifest(default)["model_config"]["vocab_size"] <= 8000
    assert saved(default)["sources"]["vocab_size"] == "default for a Transformer text model"


# --- where each value came from ------------------------------------------------------------------------------

def test_config_json_names_the_source_of_every_value(tmp_path, sms):
    (tmp_path / "c.yaml").write_text("batch_size: 16\n")
    run = tmp_path / "r"
    assert main(["train", str(sms), *TEXT, "--config", str(tmp_path / "c.yaml"), "--max-steps", "40", "--quiet",
                 "--out", str(run)]) == 0
    record = saved(run)
    src = record["sources"]
    assert set(src) == set(TrainConfig().to_dict())
    assert src["data"] == "command line" and src["label"] == "flag" and src["max_steps"] == "flag"
    assert src["batch_size"] == f"config file {tmp_path / 'c.yaml'}" and record["batch_size"] == 16
    assert src["optimizer"] == src["lr"] == "default for a fastText text model" and record["optimizer"] == "sgd"
    assert src["patience"] == "default" and record["patience"] == 5
    assert src["epochs"] == "not used: max_steps is given" and record["epochs"] is None
    derived = record["derived"]  # what no setting fixed, with the rule that derived it
    assert derived["steps"]["value"] == 40
    assert derived["warmup_steps"]["value"] == 1 and "2%" in derived["warmup_steps"]["rule"]
    assert derived["min_lr"]["value"] == pytest.approx(record["lr"] / 10)
    n_val = len(json.loads((run / "split.json").read_text())["val"])
    assert derived["eval_every"]["value"] == max(1, 40 // 20, -(-n_val // 16))
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics][1:3] == [derived["eval_every"]["value"], 2 * derived["eval_every"]["value"]]


def test_a_runs_config_json_repeats_what_the_user_chose(tmp_path, digits_csv):
    first = tmp_path / "first"
    assert main(["train", str(digits_csv), "--label", "digit", "--lr", "0.01", *SMALL, "--out", str(first)]) == 0
    again = tmp_path / "again"
    assert main(["train", "--config", str(first / "config.json"), "--out", str(again)]) == 0
    record = saved(again)
    source = f"config file {first / 'config.json'}"
    assert record["lr"] == 0.01 and record["sources"]["lr"] == source and record["max_steps"] == 3
    assert record["sources"]["dropout"] == "default for tabular data"  # a default stays a default
    assert json.loads((again / "summary.json").read_text())["steps"] == 3


def test_epochs_and_max_steps_together_are_refused(tmp_path, digits_csv, capsys):
    assert main(["train", str(digits_csv), "--label", "digit", "--epochs", "2", "--max-steps", "5",
                 "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "both epochs (2) and max_steps (5)" in err[0]
    assert not (tmp_path / "r").exists()


def test_a_language_model_given_epochs_trains_epochs_not_its_default_steps():
    cfg = resolve({"data": "x", "task": "lm", "epochs": 1}, "lm")
    assert cfg.max_steps is None and cfg.sources["max_steps"] == "not used: epochs is given"
    assert schedule(cfg, n_train=12_000, n_val=256)["steps"] == 1000  # 12,000 windows / 12 per batch
    assert resolve({"data": "x", "task": "lm"}, "lm").max_steps == KIND_DEFAULTS["lm"]["max_steps"]


@pytest.mark.parametrize("kind", sorted(KIND_DEFAULTS))
def test_each_kind_takes_its_defaults_and_the_user_wins(kind):
    cfg = resolve({"data": "x"}, kind)
    for key, value in KIND_DEFAULTS[kind].items():
        assert getattr(cfg, key) == value and cfg.sources[key].startswith("default for ")
    for key in set(TrainConfig().to_dict()) - set(KIND_DEFAULTS[kind]) - {"data"}:
        assert getattr(cfg, key) == getattr(TrainConfig(), key) and cfg.sources[key] == "default", key
    given = resolve({"data": "x", "lr": 0.123, "dropout": 0.0, "n_layer": 7}, kind, {"lr": "flag"})
    assert (given.lr, given.dropout, given.n_layer) == (0.123, 0.0, 7)
    assert given.sources["lr"] == "flag" and given.sources["dropout"] == "given"


def test_unknown_and_bad_settings_are_refused_in_one_line():
    with pytest.raises(UserError, match="unknown config key.*learning_rate.*known keys"):
        resolve({"learning_rate": 1}, "tabular")
    with pytest.raises(UserError, match="n_embd \\(100\\) must be a multiple of n_head \\(3\\)"):
        resolve({"n_embd": 100, "n_head": 3}, "transformer")


def test_resume_keeps_the_sources_and_a_changed_setting_is_refused(tmp_path, digits_csv, capsys):
    run = tmp_path / "r"
    assert main(["train", str(digits_csv), "--label", "digit", "--dropout", "0.2", *SMALL, "--out", str(run)]) == 0
    before = saved(run)
    (run / "summary.json").unlink()
    assert main(["train", "--out", str(run), "--resume", "--quiet"]) == 0
    assert saved(run) == before  # resuming never rewrites how the run started
    assert json.loads((run / "summary.json").read_text())["steps"] == 3
    assert main(["train", "--out", str(run), "--resume", "--dropout", "0.3"]) == 2
    assert "dropout (0.2 there, 0.3 now)" in capsys.readouterr().err


def test_a_run_from_before_config_json_kept_sources_still_resumes(tmp_path, digits_csv):
    run = tmp_path / "r"
    assert main(["train", str(digits_csv), "--label", "digit", "--epochs", "1", "--quiet", "--out", str(run)]) == 0
    steps = json.loads((run / "summary.json").read_text())["steps"]
    old = {k: v for k, v in saved(run).items() if k not in ("sources", "derived")}
    old.update(max_steps=None, dropout=0.0)  # as older versions wrote it: the table's dropout was chosen in the code
    (run / "config.json").write_text(json.dumps(old))
    (run / "summary.json").unlink()
    assert main(["train", "--out", str(run), "--resume", "--quiet"]) == 0
    assert json.loads((run / "summary.json").read_text())["steps"] == steps
    assert manifest(run)["model_config"]["dropout"] == 0.1  # the checkpoint's model, as it was built


def test_a_tables_plain_mlp_takes_its_own_defaults(digits_csv):
    from glassbox.run.settings import settings_for_new_run

    plr = settings_for_new_run({"data": str(digits_csv), "label": "digit"})
    mlp = settings_for_new_run({"data": str(digits_csv), "label": "digit", "model": "mlp"})
    assert (plr.lr, plr.batch_size, plr.epochs) == (KIND_DEFAULTS["tabular"]["lr"], KIND_DEFAULTS["tabular"]["batch_size"],
                                                    KIND_DEFAULTS["tabular"]["epochs"])
    assert (mlp.lr, mlp.batch_size, mlp.epochs, mlp.dropout) == (TrainConfig().lr, TrainConfig().batch_size,
                                                                 TrainConfig().epochs, 0.1)
    assert mlp.sources["dropout"] == "default for the plain MLP on a table (--model mlp)"
    with pytest.raises(UserError, match="--tokenizer does not apply to the plain MLP on a table"):
        settings_for_new_run({"data": str(digits_csv), "label": "digit", "model": "mlp", "tokenizer": "bpe"})

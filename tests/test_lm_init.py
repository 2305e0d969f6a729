"""--init RUN/model for language models: a model trained on tinyshakespeare continues on the SMS Spam Collection's
messages (casual text), with its own tokenizer and sizes; the run reports its loss on the new text and on its own
held-out text before and after (adapting and forgetting), each figure the one an independent evaluation gives; text
its tokenizer cannot read is left out and counted, or refused when it is most of the corpus; and every misuse is
refused in one line."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from glassbox.cli import main
from glassbox.config import make_config
from glassbox.data.corpus import open_tokens, tokenizer_from_dict, val_windows
from glassbox.export.artifact import load_artifact, read_manifest
from glassbox.infer.generator import Generator
from glassbox.run.train.lm_init import original_held_out
from glassbox.train.loop import cross_entropy, evaluate
from tests.conftest import shared

SMALL = ["--n-layer", "1", "--n-head", "2", "--n-embd", "64", "--block-size", "32", "--batch-size", "32", "--lr", "3e-3"]


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """60,000 characters of tinyshakespeare, and the first 150,000 characters of the SMS messages (their text column)."""
    folder = tmp_path_factory.mktemp("corpora")
    plays = folder / "shakespeare.txt"
    plays.write_text(shared("tinyshakespeare", "input.txt").read_text(encoding="utf-8")[:60_000], encoding="utf-8")
    lines = shared("sms_spam_collection", "SMSSpamCollection").read_text(encoding="utf-8").splitlines()
    messages, size = [], 0
    for line in lines:
        messages.append(line.split("\t", 1)[1])
        size += len(messages[-1]) + 1
        if size > 150_000:
            break
    sms = folder / "sms.txt"
    sms.write_text("\n".join(messages) + "\n", encoding="utf-8")
    return plays, sms


@pytest.fixture(scope="module")
def continued(corpora, tmp_path_factory):
    """A small model trained 300 steps on the plays, then 150 more on the messages with --init."""
    plays, sms = corpora
    folder = tmp_path_factory.mktemp("init")
    assert main(["train", str(plays), "--task", "lm", *SMALL, "--max-steps", "300", "--seed", "5", "--quiet",
                 "--out", str(folder / "plays")]) == 0
    assert main(["train", str(sms), "--task", "lm", "--init", str(folder / "plays" / "model"), "--max-steps", "150",
                 "--lr", "3e-3", "--batch-size", "32", "--seed", "1", "--quiet", "--force", "--out",
                 str(folder / "sms")]) == 0
    return folder / "plays", folder / "sms"


def loss(model, ids, block_size: int) -> float:
    return evaluate(model, val_windows(ids, block_size), cross_entropy)[0]


def test_a_saved_model_continues_and_reports_adapting_and_forgetting(continued, corpora):
    parent_run, run = continued
    summary = json.loads((run / "summary.json").read_text())
    init = summary["init"]
    _, parent = load_artifact(parent_run / "model")
    manifest, child = load_artifact(run / "model")
    block = manifest["model_config"]["block_size"]
    new = open_tokens(run / "data" / "val.bin", manifest["model_config"]["vocab_size"])
    old = open_tokens(parent_run / "data" / "val.bin", manifest["model_config"]["vocab_size"])
    # each figure is what evaluating the saved model and the new one on that text gives
    assert init["new_text"]["before"] == pytest.approx(loss(parent, new, block), rel=1e-5)
    assert init["new_text"]["after"] == pytest.approx(loss(child, new, block), rel=1e-5)
    assert init["original_text"]["before"] == pytest.approx(loss(parent, old, block), rel=1e-5)
    assert init["original_text"]["after"] == pytest.approx(loss(child, old, block), rel=1e-5)
    assert init["new_text"]["after"] == pytest.approx(summary["val_loss"], rel=1e-5)
    assert "validation split its run kept" in init["original_text"]["source"]
    # adapting: the messages' loss falls a lot; forgetting: the plays' held-out loss rises
    assert init["new_text"]["before"] - init["new_text"]["after"] > 0.3
    assert init["original_text"]["after"] > init["original_text"]["before"] + 0.1
    # the saved model's tokenizer and sizes, recorded as coming from it
    config = json.loads((run / "config.json").read_text())
    parent_manifest = read_manifest(parent_run / "model")
    assert manifest["preprocessing"] == parent_manifest["preprocessing"]
    assert {k: config[k] for k in ("n_layer", "n_embd", "block_size")} == {"n_layer": 1, "n_embd": 64, "block_size": 32}
    assert config["sources"]["n_embd"].startswith("the model of --init")
    assert manifest["continued_from"]["weights_sha256"] == parent_manifest["weights_sha256"]
    assert "It continued training a model trained on" in Generator(run / "model").info
    report = (run / "report.html").read_text()
    assert "Continued from a saved model" in report and f"{init['original_text']['after']:.4f}" in report


def test_characters_the_tokenizer_cannot_read_are_left_out_and_counted(continued, corpora):
    parent_run, run = continued
    _, sms = corpora
    text = sms.read_text(encoding="utf-8")
    known = set(tokenizer_from_dict(read_manifest(parent_run / "model")["preprocessing"]).chars)
    unknown = json.loads((run / "summary.json").read_text())["init"]["unknown_characters"]
    assert unknown["characters"] == "".join(sorted(set(text) - known)) and "0" in unknown["characters"]
    assert unknown["count"] == sum(c not in known for c in text)
    assert unknown["share"] == pytest.approx(unknown["count"] / len(text))
    corpus = json.loads((run / "data" / "corpus.json").read_text())
    assert corpus["tokens"]["train"] + corpus["tokens"]["val"] == len(text) - unknown["count"]


def test_a_corpus_mostly_in_other_characters_is_refused(tiny_lm_run, tmp_path, capsys):
    table = shared("uci_adult", "adult.data")  # numbers and commas: characters a model of a play mostly lacks
    assert main(["train", str(table), "--task", "lm", "--init", str(tiny_lm_run / "model"), "--max-steps", "2",
                 "--quiet", "--force", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "of the corpus's characters are not among the" in err[0]


def test_the_held_out_text_is_found_where_it_still_is_and_said_missing_where_not(continued, tmp_path):
    parent_run, _ = continued
    manifest = read_manifest(parent_run / "model")
    tok = tokenizer_from_dict(manifest["preprocessing"])
    cfg = make_config({"init": str(parent_run / "model")})
    kept, source = original_held_out(cfg, manifest, tok)
    assert "val.bin" in source
    # the artifact copied away from its run folder: the recorded corpus, split as its run split it, gives the same ids
    shutil.copytree(parent_run / "model", tmp_path / "model")
    from_corpus, source = original_held_out(make_config({"init": str(tmp_path / "model")}), manifest, tok)
    assert "its sha256 is the one the manifest records" in source and np.array_equal(from_corpus, np.asarray(kept))
    # neither there: said in one line, with what to do
    gone = {**manifest, "knowledge_cutoff": {**manifest["knowledge_cutoff"], "corpus_source": str(tmp_path / "gone.txt")}}
    ids, why = original_held_out(make_config({"init": str(tmp_path / "model")}), gone, tok)
    assert ids is None and "\n" not in why and why.endswith("give that text with --init-val FILE")
    # --init-val with the very corpus it trained on: its held-out part, not the text it trained on
    given = make_config({"init": str(tmp_path / "model"), "init_val": manifest["knowledge_cutoff"]["corpus_source"]})
    val, source = original_held_out(given, gone, tok)
    assert np.array_equal(val, np.asarray(kept)) and "--init-val, the corpus it trained on" in source


@pytest.mark.parametrize("extra, needle", [
    (["--n-layer", "2"], "--n-layer 2 differs from --init's model (n_layer 1)"),
    (["--tokenizer", "bpe"], "--tokenizer bpe differs from --init's model (tokenizer char)"),
    (["--init-val", "nowhere.txt"], "--init-val nowhere.txt is not a file"),
])
def test_settings_that_contradict_the_saved_model_are_refused(tiny_lm_run, corpora, extra, needle, capsys):
    _, sms = corpora
    assert main(["train", str(sms), "--task", "lm", "--init", str(tiny_lm_run / "model"), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err


def test_init_where_it_cannot_work_is_refused_in_one_line(tiny_lm_run, digits_csv, corpora, tmp_path, capsys):
    """(A classifier's artifact is refused by the Generator's read_lm_manifest, as tests/test_generator.py checks.)"""
    _, sms = corpora
    cases = [
        (["train", str(digits_csv), "--label", "digit", "--init", str(tiny_lm_run / "model")],
         "--init does not apply to tabular data"),
        (["train", str(sms), "--task", "lm", "--init", str(tmp_path)], "is not a glassbox artifact (no manifest.json)"),
        (["train", str(sms), "--task", "lm", "--init-val", str(sms)], "--init-val is the held-out text of --init's model"),
    ]
    for argv, needle in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], (argv, err)

"""Text classification end to end through the CLI, on 1,500 real SMS messages (a header-less TSV):
train -> predict (inputs before and after options, --json) -> eval reading the file as training did,
for the fastText-style model and for a small Transformer whose BPE tokenizer travels in the artifact."""
import json
import math
import shutil

import pytest
import torch

from glassbox.cli import main
from glassbox.report.html import si
from tests.conftest import shared

READ_AS_SMS = ["--columns", "label,text", "--text", "text", "--label", "label"]


@pytest.fixture(scope="module")
def sms_lines() -> list[str]:
    lines = shared("sms_spam_collection", "SMSSpamCollection").read_text(encoding="utf-8").splitlines()[:1500]
    assert all(line.count("\t") == 1 for line in lines)  # label<TAB>text, no header
    return lines


@pytest.fixture(scope="module")
def sms_file(sms_lines, tmp_path_factory):
    path = tmp_path_factory.mktemp("sms") / "SMSSpam1500"
    path.write_text("\n".join(sms_lines) + "\n", encoding="utf-8")
    return path


def train(data, out, *flags) -> dict:
    assert main(["train", str(data), *READ_AS_SMS, "--out", str(out), "--quiet", *flags]) == 0
    return json.loads((out / "summary.json").read_text())


@pytest.fixture(scope="module")
def fasttext_run(sms_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("sms_fasttext") / "run"
    train(sms_file, out, "--epochs", "5")
    return out


@pytest.fixture(scope="module")
def transformer_run(sms_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("sms_transformer") / "run"
    train(sms_file, out, "--model", "transformer", "--max-steps", "40", "--lr", "1e-2", "--vocab-size", "600",
          "--n-layer", "1", "--n-embd", "32", "--n-head", "2", "--batch-size", "32")
    return out


def split_rows(run, sms_lines, name: str) -> list[tuple[str, str]]:
    """(label, text) of each row of one split of the run, from its split.json (row i is file line i + 1)."""
    rows = json.loads((run / "split.json").read_text())[name]
    return [tuple(sms_lines[i].split("\t", 1)) for i in rows]


def spam_f1(summary: dict) -> float:
    spam = next(c for c in summary["per_class"]["classes"] if c["name"] == "spam")
    return spam["f1"]


def test_fasttext_through_the_cli_is_far_above_always_spam(fasttext_run, sms_lines):
    s = json.loads((fasttext_run / "summary.json").read_text())
    assert s["model"] == "fasttext" and s["classes"] == ["ham", "spam"]
    test = split_rows(fasttext_run, sms_lines, "test")
    assert len(test) == s["n_examples"]["test"] and s["n_examples"]["train"] + s["n_examples"]["val"] + len(test) == 1500
    # recompute spam F1 from the confusion matrix (rows: truth, columns: prediction; ham = 0, spam = 1)
    (_, fp), (fn, tp) = s["per_class"]["confusion_matrix"]
    assert tp + fn == sum(label == "spam" for label, _ in test)
    f1 = 2 * tp / (2 * tp + fp + fn)
    assert f1 == pytest.approx(spam_f1(s))
    share = (tp + fn) / len(test)
    always_spam = 2 * share / (1 + share)  # precision = share of spam, recall = 1
    assert always_spam < 0.3 and f1 > 0.85, (f1, always_spam)


def test_predict_labels_a_spam_line_from_the_test_split(fasttext_run, sms_lines, capsys):
    spam = [text for label, text in split_rows(fasttext_run, sms_lines, "test") if label == "spam"]
    line = next(t for t in spam if any(w.isdigit() and len(w) >= 10 for w in t.split()))  # a prize phone number
    assert main(["predict", str(fasttext_run / "model"), line]) == 0
    out, err = capsys.readouterr()
    label, probability, text = out.rstrip("\n").split("\t")
    assert label == "spam" and float(probability) > 0.9 and text == line
    c = json.loads((fasttext_run / "model" / "manifest.json").read_text())["calibration"]
    assert ("calibrated by temperature scaling" if c["applied"] else f"temperature scaling not applied: {c['reason']}") in err
    # every spam message of the test split, in one call: as many found as the run's own test recall says
    assert main(["predict", str(fasttext_run / "model"), *spam]) == 0
    labels = [row.split("\t")[0] for row in capsys.readouterr().out.splitlines()]
    recall = next(c for c in json.loads((fasttext_run / "summary.json").read_text())["per_class"]["classes"]
                  if c["name"] == "spam")["recall"]
    assert len(labels) == len(spam) and labels.count("spam") == round(recall * len(spam))


def test_predict_json_takes_inputs_after_the_option(fasttext_run, capsys):
    model = str(fasttext_run / "model")
    texts = ["WINNER!! Call 09061701461 to claim your £900 prize now", "Ok, see you at 7 then"]
    assert main(["predict", model, "--json", *texts]) == 0
    out, err = capsys.readouterr()
    assert err == ""  # --json: nothing but one object per input
    rows = [json.loads(line) for line in out.splitlines()]
    applied = json.loads((fasttext_run / "model" / "manifest.json").read_text())["calibration"]["applied"]
    assert [r["input"] for r in rows] == texts and all(r["calibrated"] is applied for r in rows)
    for r in rows:
        assert sum(r["probabilities"].values()) == pytest.approx(1, abs=1e-5)
        assert r["label"] == max(r["probabilities"], key=r["probabilities"].get)
        assert r["probability"] == r["probabilities"][r["label"]]
    assert [r["label"] for r in rows] == ["spam", "ham"]
    assert main(["predict", model, texts[0], "--json", texts[1]]) == 0  # inputs on both sides of the option
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == rows


def test_eval_reads_the_file_as_training_did_and_knows_what_it_saw(fasttext_run, sms_file, capsys):
    s = json.loads((fasttext_run / "summary.json").read_text())
    manifest = json.loads((fasttext_run / "model" / "manifest.json").read_text())
    assert manifest["data_format"] == {"label": "label", "text": "text", "columns": ["label", "text"],
                                       "label_from_name": None}
    # no --text, --label or --columns: the header-less file is read with the training run's format
    assert main(["eval", str(fasttext_run / "model"), str(sms_file), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["n"] == 1500
    # the split keeps copies together, so exactly the training and validation rows were seen, and the
    # unseen ones are the test split: scored as the run scored it
    assert r["seen"]["count"] == s["n_examples"]["train"] + s["n_examples"]["val"]
    assert r["unseen"]["n"] == s["n_examples"]["test"]
    assert r["unseen"]["accuracy"] == pytest.approx(s["test_accuracy"], abs=1e-12)
    assert main(["eval", str(fasttext_run / "model"), str(sms_file)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1500 examples: accuracy") and f"WARNING: {r['seen']['count']:,} of these 1,500" in out


def test_transformer_trains_through_the_cli_and_predicts_from_its_artifact_alone(transformer_run, sms_lines,
                                                                                  tmp_path, capsys):
    s = json.loads((transformer_run / "summary.json").read_text())
    assert s["model"] == "transformer" and s["steps"] == 40
    assert s["test_accuracy"] >= s["chance"]["majority_accuracy"] + 0.05  # it learned something in 40 steps
    artifact = tmp_path / "artifact"
    shutil.copytree(transformer_run / "model", artifact)  # nothing but the artifact
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["architecture"] == "transformer" and manifest["preprocessing"]["type"] == "bpe"
    test = split_rows(transformer_run, sms_lines, "test")
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(text for _, text in test) + "\n", encoding="utf-8")
    assert main(["predict", str(artifact), "--json", "--file", str(texts)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["input"] for r in rows] == [text for _, text in test]
    # the artifact's tokenizer and weights give the run's own test figures: accuracy, and the calibrated NLL
    accuracy = sum(r["label"] == label for r, (label, _) in zip(rows, test)) / len(test)
    assert accuracy == pytest.approx(s["test_accuracy"], abs=1e-12)
    nll = -sum(math.log(r["probabilities"][label]) for r, (label, _) in zip(rows, test)) / len(test)
    saved = s["calibration"]["after" if s["calibration"]["applied"] else "before"]  # T = 1 when scaling was not kept
    assert nll == pytest.approx(saved["nll"], abs=1e-3)


@pytest.mark.parametrize("name", ["fasttext_run", "transformer_run"])
def test_one_predictions_cost_is_a_distribution_over_the_test_texts(name, sms_lines, request):
    """A text's prediction costs more the longer it is: the ledger gives the median, least and most over the test
    texts, and training's FLOPs in predictions at the median. Each test text encoded alone, as `glassbox serve` takes
    one: for the fastText model its FLOPs by hand (one add per element of each n-gram vector pooled, then the same
    head for every text), for the Transformer the shortest, median and longest text counted again."""
    from glassbox.evaluate.cost import count_inference_flops
    from glassbox.infer.predictor import Predictor

    run = request.getfixturevalue(name)
    c = json.loads((run / "summary.json").read_text())["cost"]
    p = Predictor(run / "model")
    encoded = [p.encoder.encode([text]) for _, text in split_rows(run, sms_lines, "test")]
    sizes = [int((x != 0).sum()) for x in encoded]
    order = sorted(range(len(sizes)), key=lambda i: sizes[i])
    ends = [order[0], order[(len(order) - 1) // 2], order[-1]]  # the shortest, the median and the longest text
    if name == "fasttext_run":
        head = count_inference_flops(p.model, torch.zeros(1, 1, dtype=torch.long))  # no n-gram: the head alone
        each = sorted(head + n * p.model.config.dim for n in sizes)
        expected = [each[0], each[(len(each) - 1) // 2], each[-1]]
    else:
        expected = [count_inference_flops(p.model, encoded[i]) for i in ends]
    spread = c["inference"]["flops_spread"]
    assert spread["n"] == len(sizes) and [spread["min"], spread["median"], spread["max"]] == expected
    assert [spread["min_size"], spread["median_size"], spread["max_size"]] == [sizes[i] for i in ends]
    assert c["inference"]["flops"] == spread["median"] and spread["min"] < spread["median"] < spread["max"]
    assert c["training_equals_predictions"]["by_flops"] == pytest.approx(c["train"]["flops"] / spread["median"])
    assert (f"on the median of the {len(sizes)} test inputs ({spread['median_size']} ids; from "
            f"{si(spread['min'], 'FLOP')} at {spread['min_size']} ids to {si(spread['max'], 'FLOP')} at "
            f"{spread['max_size']}") in c["sentence"] and "each prediction the median test input's" in c["sentence"]

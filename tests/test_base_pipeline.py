"""End to end on real data: the loop learns, the run folder holds what it promises, predict works."""
import json

import numpy as np
import pytest
import torch

from glassbox.cli import main
from glassbox.run.train.start import train as run


def test_digits_cnn_learns_and_writes_the_run_folder(tmp_path):
    out = tmp_path / "run"
    s = run("digits", out=str(out), quiet=True)  # `glassbox train digits`: the image defaults, label smoothing 0.2
    assert s["test_accuracy"] >= 0.95
    # label smoothing leaves the model under-confident; the temperature that undoes it ships, and says so truly
    c = s["calibration"]
    assert c["applied"] and c["temperature"] < 0.6 and c["before"]["verdict"] == "under-confident"
    assert c["after"]["ece"] <= 0.05 and c["before"]["ece"] > 0.1 and c["test_check"]["agrees"] is True
    o = c["after"]["overall"]
    assert o["range"][0] <= o["right"] <= o["range"][1] and c["after"]["verdict"] in (
        "well calibrated", "no miscalibration beyond chance on this many examples")
    assert c["sentence"].startswith("Temperature scaling applied: ") and "Test agrees" in c["sentence"]
    assert manifest_temperature(out) == c["temperature"]
    assert s["chance_loss"] == pytest.approx(np.log(10))
    assert s["chance"]["untrained_loss"] > 2.0  # random weights know nothing
    for key in ("task", "model", "n_params", "steps", "best_step", "stopped_early", "chance_loss", "train_loss",
                "val_loss", "test_loss", "train_accuracy", "val_accuracy", "test_accuracy", "wall_seconds"):
        assert key in s
    saved = json.loads((out / "summary.json").read_text())
    assert saved["best_step"] == s["best_step"]
    records = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert records[0]["step"] == 0 and records[-1]["step"] == s["steps"]
    for key in ("step", "epoch", "train_loss", "val_loss", "val_accuracy", "lr", "grad_norm", "examples_per_s"):
        assert key in records[-1]
    best = min(r["val_loss"] for r in records[1:])
    assert s["val_loss"] == pytest.approx(best, abs=1e-6)  # the restored weights are the sweet spot's
    split = json.loads((out / "split.json").read_text())
    assert sorted(split["train"] + split["val"] + split["test"]) == list(range(1797))
    manifest = json.loads((out / "model" / "manifest.json").read_text())
    assert manifest["classes"] == [str(i) for i in range(10)] and len(manifest["weights_sha256"]) == 64


def manifest_temperature(out) -> float | None:
    return json.loads((out / "model" / "manifest.json").read_text()).get("temperature")


def test_tabular_train_and_predict_rows(tmp_path, digits_csv, capsys):
    out = tmp_path / "tab"
    # the plain MLP (--model mlp): the table model of earlier versions, whose artifacts still load and predict
    assert main(["train", str(digits_csv), "--label", "digit", "--model", "mlp", "--lr", "3e-3", "--batch-size", "64",
                 "--out", str(out), "--epochs", "8", "--quiet"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["model"] == "mlp" and s["test_accuracy"] > 0.9
    rows = digits_csv.read_text().splitlines()[1:4]
    features = [r.rsplit(",", 1)[0] for r in rows]
    labels = [r.rsplit(",", 1)[1] for r in rows]
    capsys.readouterr()
    assert main(["predict", str(out / "model"), *features, "--json"]) == 0
    outs = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert [o["label"] for o in outs] == labels
    for o in outs:  # the probability is that of the predicted label, the largest of a distribution
        assert o["probability"] == o["probabilities"][o["label"]] == max(o["probabilities"].values())
        assert sorted(o["probabilities"]) == [str(i) for i in range(10)]
        assert sum(o["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    # --file takes a CSV with a header (the label column is ignored)
    assert main(["predict", str(out / "model"), "--file", str(digits_csv)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 1797
    manifest = json.loads((out / "model" / "manifest.json").read_text())
    c = manifest["calibration"]  # it says what the numbers are: scaled by a checked T, or why not
    assert (f"calibrated by temperature scaling (T = {manifest['temperature']:.3g}" if c["applied"]
            else f"(temperature scaling not applied: {c['reason']})") in captured.err
    assert main(["predict", str(out / "model"), ",".join(["abc"] + features[0].split(",")[1:])]) == 2  # not a pixel value
    assert "takes numbers, but an input has 'abc'" in capsys.readouterr().err
    # eval on the training file itself: it knows which rows it trained or was tuned on
    assert main(["eval", str(out / "model"), str(digits_csv), "--label", "digit", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    split = json.loads((out / "split.json").read_text())
    assert r["seen"]["count"] == len(split["train"]) + len(split["val"]) == len(r["seen"]["lines"])
    assert r["unseen"]["n"] == len(split["test"]) and r["unseen"]["accuracy"] == pytest.approx(s["test_accuracy"])
    assert r["seen"]["lines"][:3] == [i + 2 for i in sorted(split["train"] + split["val"])[:3]]  # header is line 1
    acc = np.mean([l.split("\t")[0] == r.rsplit(",", 1)[1] for l, r in zip(lines, digits_csv.read_text().splitlines()[1:])])
    assert acc > 0.9


def test_image_folder_from_file_names_and_predict_paths(tmp_path, cats_dogs_64, capsys):
    import re

    out = tmp_path / "cd"
    # --patience 0: all 200 steps (early stopping on the 100 validation photos stopped some seeds after 30);
    # --threads 1: the result does not depend on the machine's core count, and a busy second core cannot slow it
    assert main(["train", str(cats_dogs_64 / "1000"), "--label-from-name", "cat|dog", "--test", str(cats_dogs_64 / "test"),
                 "--image-size", "32", "--out", str(out), "--max-steps", "200", "--batch-size", "32", "--patience", "0",
                 "--threads", "1", "--quiet"]) == 0
    s = json.loads((out / "summary.json").read_text())
    n = s["n_examples"]["test"]
    assert n == 1000 and s["classes"] == ["cat", "dog"]
    # 200 steps on 900 photos: above chance (0.5) by three binomial standard errors, far from done.
    # Seeds 0-4 reach 0.661-0.720; the bound is 0.547.
    above_chance = 0.5 + 3 * np.sqrt(0.25 / n)
    assert s["test_accuracy"] > above_chance
    photos = sorted((cats_dogs_64 / "test").glob("*.jpg"))
    capsys.readouterr()
    assert main(["predict", str(out / "model"), *map(str, photos), "--json"]) == 0
    outs = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert [o["input"] for o in outs] == [str(p) for p in photos]
    truth = [re.search("cat|dog", p.name).group() for p in photos]
    agree = np.mean([o["label"] == t for o, t in zip(outs, truth)])
    # predicting the photos by path labels them as the run's own test evaluation did
    assert agree == pytest.approx(s["test_accuracy"], abs=1e-9) and agree > above_chance


def test_mnist_idx_files_train(tmp_path):
    from tests.conftest import shared

    s = run(str(shared("mnist_test10k")), out=str(tmp_path / "mnist"), max_steps=40, batch_size=32, quiet=True)
    assert s["classes"] == [str(i) for i in range(10)] and abs(s["n_examples"]["test"] - 1000) <= 10
    assert s["test_accuracy"] > 0.5  # chance is 0.1; 40 small steps already learn a lot


def test_predictor_cannot_change_weights(tmp_path, digits_csv):
    import copy

    import glassbox

    run(str(digits_csv), label="digit", out=str(tmp_path / "r"), max_steps=20, quiet=True)
    p = glassbox.load(tmp_path / "r" / "model")
    before = {k: v.clone() for k, v in p.model.state_dict().items()}
    lines = digits_csv.read_text().splitlines()[1:9]
    rows = p.parse([l.rsplit(",", 1)[0] for l in lines])
    target = torch.tensor([int(l.rsplit(",", 1)[1]) for l in lines])
    probs = p.predict_proba(rows)
    assert probs.shape == (8, 10) and not probs.requires_grad and probs.grad_fn is None
    with pytest.raises(RuntimeError):  # what the Predictor returns carries no graph to learn through
        torch.nn.functional.nll_loss(probs.log(), target).backward()
    # outside inference mode, a training step on the Predictor's own model changes nothing
    assert not p.model.training
    opt = torch.optim.SGD(p.model.parameters(), lr=1.0)
    loss = torch.nn.functional.cross_entropy(p.model(p.encoder.encode(rows)), target)
    assert not loss.requires_grad  # frozen weights: the forward builds no graph
    with pytest.raises(RuntimeError):
        loss.backward()
    opt.step()
    assert all(q.grad is None for q in p.model.parameters())
    assert all(torch.equal(before[k], v) for k, v in p.model.state_dict().items())
    # control: the same step on an unfrozen copy of the model does move its weights
    free = copy.deepcopy(p.model).requires_grad_(True)
    opt = torch.optim.SGD(free.parameters(), lr=1.0)
    torch.nn.functional.cross_entropy(free(p.encoder.encode(rows)), target).backward()
    opt.step()
    assert not all(torch.equal(before[k], v) for k, v in free.state_dict().items())
    assert all(torch.equal(before[k], v) for k, v in p.model.state_dict().items())  # the copy shares nothing

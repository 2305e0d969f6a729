"""End to end on real data: the loop learns, the run folder holds what it promises, predict works."""
import json

import numpy as np
import pytest
import torch

from glassbox.cli import main
from glassbox.pipeline import run


def test_digits_cnn_learns_and_writes_the_run_folder(tmp_path):
    out = tmp_path / "run"
    s = run("digits", out=str(out), epochs=12, batch_size=64, lr=3e-3, quiet=True)
    assert s["test_accuracy"] >= 0.95
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


def test_tabular_train_and_predict_rows(tmp_path, digits_csv, capsys):
    out = tmp_path / "tab"
    assert main(["train", str(digits_csv), "--label", "digit", "--out", str(out), "--epochs", "8", "--quiet"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["model"] == "mlp" and s["test_accuracy"] > 0.9
    rows = digits_csv.read_text().splitlines()[1:4]
    features = [r.rsplit(",", 1)[0] for r in rows]
    labels = [r.rsplit(",", 1)[1] for r in rows]
    capsys.readouterr()
    assert main(["predict", str(out / "model"), *features, "--json"]) == 0
    outs = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert [o["label"] for o in outs] == labels
    assert all(0 < o["probability"] <= 1 for o in outs)
    # --file takes a CSV with a header (the label column is ignored)
    assert main(["predict", str(out / "model"), "--file", str(digits_csv)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 1797
    t = json.loads((out / "model" / "manifest.json").read_text())["temperature"]
    assert f"calibrated by temperature scaling (T = {t:.3g}" in captured.err  # it says what the numbers are
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
    out = tmp_path / "cd"
    assert main(["train", str(cats_dogs_64 / "1000"), "--label-from-name", "cat|dog", "--test", str(cats_dogs_64 / "test"),
                 "--image-size", "32", "--out", str(out), "--max-steps", "100", "--batch-size", "32", "--quiet"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["n_examples"]["test"] == 1000 and s["classes"] == ["cat", "dog"]
    assert s["test_accuracy"] > 0.6  # 100 steps on 900 photos: above chance, far from done
    photos = sorted((cats_dogs_64 / "test").glob("*.jpg"))[:3] + sorted((cats_dogs_64 / "test").glob("dog*.jpg"))[:3]
    capsys.readouterr()
    assert main(["predict", str(out / "model"), *map(str, photos), "--json"]) == 0
    outs = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert len(outs) == 6 and {o["label"] for o in outs} <= {"cat", "dog"}


def test_mnist_idx_files_train(tmp_path):
    from tests.conftest import shared

    s = run(str(shared("mnist_test10k")), out=str(tmp_path / "mnist"), max_steps=40, batch_size=32, quiet=True)
    assert s["classes"] == [str(i) for i in range(10)] and abs(s["n_examples"]["test"] - 1000) <= 10
    assert s["test_accuracy"] > 0.5  # chance is 0.1; 40 small steps already learn a lot


def test_predictor_cannot_change_weights(tmp_path, digits_csv):
    import glassbox

    run(str(digits_csv), label="digit", out=str(tmp_path / "r"), max_steps=20, quiet=True)
    p = glassbox.load(tmp_path / "r" / "model")
    before = {k: v.clone() for k, v in p.model.state_dict().items()}
    assert not any(q.requires_grad for q in p.model.parameters()) and not p.model.training
    rows = p.parse([",".join(["0"] * 64)] * 4)
    p.predict(rows)
    with pytest.raises(RuntimeError):  # inference tensors cannot be used to learn
        with torch.inference_mode():
            out = p.model(p.encoder.encode(rows))
        out.sum().backward()
    assert all(torch.equal(before[k], v) for k, v in p.model.state_dict().items())

"""TSV and JSONL files load the same examples as the equivalent CSV (tables and texts), a text model trained
from JSONL scores the same on all three, a test file with labels training never saw is refused in one line,
and `glassbox predict --file` reads texts one per line, refusing a file that is not UTF-8."""
import csv
import io
import json

import numpy as np
import pandas as pd
import pytest
import torch

from glassbox.cli import main
from glassbox.data.tabular import TabularEncoder, load_tabular
from glassbox.data.text import load_text
from tests.conftest import shared


def write_formats(folder, header: list[str], rows: list[list], name: str) -> dict:
    """The same rows as a CSV (quoted where needed), a TSV with a header, and a JSONL file (numbers as JSON
    numbers); returns format -> path."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *rows])
    paths = {"csv": folder / f"{name}.csv", "tsv": folder / f"{name}.tsv", "jsonl": folder / f"{name}.jsonl"}
    paths["csv"].write_text(buffer.getvalue(), encoding="utf-8")
    paths["tsv"].write_text("\n".join("\t".join(map(str, r)) for r in [header, *rows]) + "\n", encoding="utf-8")
    paths["jsonl"].write_text("".join(json.dumps(dict(zip(header, r)), ensure_ascii=False) + "\n" for r in rows),
                              encoding="utf-8")
    return paths


@pytest.fixture(scope="module")
def sms_rows():
    """The first 200 SMS messages as [text, label] (commas, quotes, '&' and '£' among them)."""
    lines = shared("sms_spam_collection", "SMSSpamCollection").read_text(encoding="utf-8").splitlines()[:200]
    rows = [line.split("\t", 1)[::-1] for line in lines]
    assert sum("," in t for t, _ in rows) > 30 and sum('"' in t for t, _ in rows) > 3
    return rows


def test_tsv_and_jsonl_tables_load_as_the_csv_does(tmp_path):
    rng = np.random.default_rng(0)
    cities = ["São Paulo, BR", 'the "Big Apple"', "Lima", "Oslo"]
    rows = [[round(float(rng.normal()), 3), int(rng.integers(0, 50)), cities[i % 4], "yes" if i % 3 else "no"]
            for i in range(60)]
    paths = write_formats(tmp_path, ["x", "n", "city", "answer"], rows, "table")
    loaded = {fmt: load_tabular(p, "answer") for fmt, p in paths.items()}
    base = loaded["csv"]
    assert base.inputs["city"].tolist()[:2] == cities[:2]              # quoted commas and quotes read back
    assert base.classes == ["no", "yes"] and len(base) == 60
    for fmt in ("tsv", "jsonl"):
        ex = loaded[fmt]
        pd.testing.assert_frame_equal(ex.inputs, base.inputs)
        assert np.array_equal(ex.labels, base.labels) and ex.classes == base.classes and ex.keys == base.keys
        assert ex.fingerprint() == base.fingerprint()
    assert loaded["tsv"].lines == base.lines == list(range(2, 62))     # line 1 is the header
    assert loaded["jsonl"].lines == list(range(1, 61))                 # JSONL has none
    encoder = TabularEncoder().fit(base)
    codes = encoder.encode(base.inputs)
    assert encoder.numeric and encoder.categorical                     # numbers standardised, cities embedded
    for fmt in ("tsv", "jsonl"):
        assert torch.equal(TabularEncoder().fit(loaded[fmt]).encode(loaded[fmt].inputs), codes)


def test_tsv_and_jsonl_texts_load_as_the_csv_does(sms_rows, tmp_path):
    paths = write_formats(tmp_path, ["text", "label"], sms_rows, "sms")
    loaded = {fmt: load_text(p, text_col="text", label_col="label") for fmt, p in paths.items()}
    assert loaded["csv"].inputs == [t for t, _ in sms_rows]            # every text exactly as written
    for fmt in ("tsv", "jsonl"):
        ex = loaded[fmt]
        assert ex.inputs == loaded["csv"].inputs and ex.keys == loaded["csv"].keys
        assert np.array_equal(ex.labels, loaded["csv"].labels) and ex.classes == ["ham", "spam"]


@pytest.fixture(scope="module")
def jsonl_text_run(sms_rows, tmp_path_factory):
    """A fastText model trained through the CLI from a JSONL file of 49 messages (under 50: no fold models)."""
    folder = tmp_path_factory.mktemp("formats_run")
    paths = write_formats(folder, ["text", "label"], sms_rows[:49], "sms49")
    out = folder / "run"
    assert main(["train", str(paths["jsonl"]), "--text", "text", "--label", "label", "--out", str(out), "--quiet"]) == 0
    return out, paths


def test_a_model_trained_from_jsonl_scores_the_same_on_csv_and_tsv(jsonl_text_run, capsys):
    out, paths = jsonl_text_run
    results = {}
    for fmt, path in paths.items():
        assert main(["eval", str(out / "model"), str(path), "--json"]) == 0
        results[fmt] = json.loads(capsys.readouterr().out)
    assert results["csv"]["n"] == 49 and results["csv"]["seen"]["count"] > 0
    for fmt in ("tsv", "jsonl"):
        for key in ("n", "accuracy", "nll", "ece"):
            assert results[fmt][key] == results["csv"][key], (fmt, key)
        assert results[fmt]["seen"]["count"] == results["csv"]["seen"]["count"]
    assert results["jsonl"]["seen"]["lines"] == [line - 1 for line in results["csv"]["seen"]["lines"]]


def test_predict_file_reads_one_text_per_line(jsonl_text_run, sms_rows, tmp_path, capsys):
    out, _ = jsonl_text_run
    texts = [t for t, _ in sms_rows[100:110]]
    inputs = tmp_path / "inputs.txt"
    inputs.write_text("\n".join(texts[:5]) + "\n\n   \n" + "\n".join(texts[5:]) + "\n", encoding="utf-8")
    assert main(["predict", str(out / "model"), "--file", str(inputs), "--json"]) == 0
    from_file = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["input"] for r in from_file] == texts                    # blank lines are skipped
    assert main(["predict", str(out / "model"), "--json", *texts]) == 0
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == from_file


def one_line_error(capsys, *needles) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("glassbox: error:"), lines
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_predict_file_that_is_not_utf8_or_missing_is_one_line(jsonl_text_run, tmp_path, capsys):
    out, _ = jsonl_text_run
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("Free entry!\nCafé at 7?\n".encode("latin-1"))
    assert main(["predict", str(out / "model"), "--file", str(latin)]) == 2
    one_line_error(capsys, str(latin), "is not UTF-8 text", "byte 0xe9", "iconv")  # the é of latin-1
    assert main(["predict", str(out / "model"), "--file", str(tmp_path / "nope.txt")]) == 2
    one_line_error(capsys, "input file not found", "--file")


def test_labels_never_seen_in_training_are_refused(tmp_path, capsys):
    rng = np.random.default_rng(0)
    rows = [[round(float(rng.normal()), 3), ["low", "high"][i % 2]] for i in range(80)]
    train = write_formats(tmp_path, ["x", "level"], rows, "train")["csv"]
    test_rows = rows[:10] + [[0.5, "medium"], [1.5, "very high"]]
    test = write_formats(tmp_path, ["x", "level"], test_rows, "test")["tsv"]
    out = tmp_path / "run"
    assert main(["train", str(train), "--label", "level", "--test", str(test), "--out", str(out), "--quiet"]) == 2
    one_line_error(capsys, "the test file has labels never seen in training: medium, very high",
                   "training labels are: high, low")
    assert not (out / "model").exists()


def test_eval_refuses_labels_the_model_never_learned(jsonl_text_run, sms_rows, tmp_path, capsys):
    out, _ = jsonl_text_run
    rows = [list(r) for r in sms_rows[60:70]] + [["Your parcel is waiting, track it at www.example.com", "promo"]]
    path = write_formats(tmp_path, ["text", "label"], rows, "with_promo")["csv"]
    assert main(["eval", str(out / "model"), str(path)]) == 2
    one_line_error(capsys, "labels never seen in training: promo", "training labels are: ham, spam")


def test_jsonl_numbers_and_booleans_read_as_a_csv_would_hold_them(tmp_path):
    """1 and 1.0 are one label, as they would be in a CSV; true is 'true'; a list stays JSON."""
    from glassbox.data.table import read_table

    path = tmp_path / "mixed.jsonl"
    path.write_text('{"x": 1.5, "y": 1}\n{"x": 2, "y": 1.0}\n{"x": null, "y": true}\n{"x": [1, 2], "y": "ok"}\n')
    df, lines = read_table(path)
    assert df["y"].tolist() == ["1", "1", "true", "ok"]
    assert df["x"].tolist() == ["1.5", "2", "", "[1, 2]"] and lines == [1, 2, 3, 4]


def test_the_builtin_digits_are_scikit_learns_without_importing_it():
    import subprocess
    import sys

    import numpy as np
    from sklearn.datasets import load_digits

    from glassbox.data.builtin import digits_arrays

    images, target = digits_arrays()
    d = load_digits()
    assert np.array_equal(images, d.images) and np.array_equal(target, d.target) and images.shape == (1797, 8, 8)
    probe = ("import sys; from glassbox.data.builtin import load_builtin; ex = load_builtin('digits'); "
             "print(len(ex), 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["1797", "False"]

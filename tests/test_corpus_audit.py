"""The corpus audit on real tinyshakespeare: clean as it is, and planted copies are found where they were put."""
import json

import pytest

from glassbox.audit.corpus import audit_corpus, scan
from glassbox.cli import main
from glassbox.data.corpus import corpus_files, read_corpus, split_text
from tests.conftest import shared


@pytest.fixture(scope="module")
def lines():
    return shared("tinyshakespeare", "input.txt").read_text(encoding="utf-8").split("\n")


def test_real_shakespeare_has_nothing_to_fix():
    report = audit_corpus(corpus_files(shared("tinyshakespeare", "input.txt")), 0.1)
    found = {f.name: f for f in report.findings}
    assert report.n_examples == 32_778 and not report.has_warnings      # non-blank lines
    assert found["exact_duplicates"].count == 10                          # e.g. "A horse! a horse! my kingdom for a horse!"
    assert found["exact_duplicates"].stats["share_of_training_text"] < 0.001
    assert found["leakage"].count == 0 and found["near_duplicates"].count == 0


def test_lines_are_split_exactly_where_training_splits_the_text(tmp_path, lines):
    (tmp_path / "a.txt").write_text("\n".join(lines[:3000]), encoding="utf-8")
    (tmp_path / "b.txt").write_text("\n".join(lines[3000:4000]), encoding="utf-8")
    files = corpus_files(tmp_path)
    train_text, val_text = split_text(read_corpus(tmp_path), 0.1)
    got, _ = scan(files, 0.1)
    for part, is_val in ((train_text, False), (val_text, True)):
        kept = [l for l in part.split("\n") if l.strip()]
        assert got.val.sum() == len(kept) if is_val else (~got.val).sum() == len(kept)
        assert got.size[got.val == is_val].sum() == sum(map(len, kept))
    in_b = got.number[got.file == 1]                                     # 1-based line numbers within each file
    assert in_b.max() == max(i for i, l in enumerate(lines[3000:4000], 1) if l.strip())


def test_planted_copied_file_and_validation_leak_are_found(tmp_path, lines):
    (tmp_path / "a.txt").write_text("\n".join(lines[:20_000]), encoding="utf-8")
    (tmp_path / "a_copy.txt").write_text("\n".join(lines[5_000:7_000]), encoding="utf-8")  # a file copied in
    # the end of b.txt is validation text; plant 200 training lines there
    (tmp_path / "b.txt").write_text("\n".join(lines[20_000:] + lines[100:300]), encoding="utf-8")
    report = audit_corpus(corpus_files(tmp_path), 0.1)
    found = {f.name: f for f in report.findings}

    rep = found["exact_duplicates"]
    assert rep.severity == "warning" and rep.stats["share_of_training_text"] > 0.03
    copied = rep.flagged[rep.flagged.file == "a_copy.txt"]
    long_lines = sum(len(" ".join(l.lower().split())) >= 30 for l in lines[5_000:7_000])
    assert len(copied) >= long_lines - 5                               # nearly every long line of the copy
    row = copied[copied.line == copied.line.min()].iloc[0]             # a_copy.txt line k is a.txt line 5000 + k
    assert row.first_copy_at == f"a.txt:{5_000 + row.line}"

    leak = found["leakage"]
    assert leak.severity == "warning" and set(leak.flagged.file) == {"b.txt"}
    planted = {l for l in lines[100:300] if len(" ".join(l.lower().split())) >= 30}
    assert set(leak.flagged.input) >= planted                          # every planted long line, named in b.txt
    assert found["near_duplicates"].severity == "warning"               # whole speeches of the copied file


def test_lm_train_audits_first_and_strict_stops_on_warnings(tmp_path, lines, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(lines[:3000] + lines[:3000]), encoding="utf-8")  # the text twice over
    out = tmp_path / "run"
    assert main(["train", str(corpus), "--task", "lm", "--strict", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "corpus audit found warnings" in err[0]
    audit = json.loads((out / "audit.json").read_text())
    names = {f["name"]: f["severity"] for f in audit["findings"]}
    assert names == {"exact_duplicates": "warning", "near_duplicates": "warning", "leakage": "warning"}
    assert not (out / "data").exists()                                 # stopped before tokenising

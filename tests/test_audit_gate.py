"""The audit as a gate, on real SMS messages: its errors stop `glassbox train` (exit 2, audit.json kept, no
model) unless --force, --strict stops on warnings too; `glassbox audit` exits 1 on errors (and on warnings
with --strict), 0 otherwise; without --test it checks leakage across the split `train` would make."""
import json

import pytest

from glassbox.cli import main
from tests.conftest import shared

READ_AS_SMS = ["--columns", "label,text", "--text", "text", "--label", "label"]


def key(text: str) -> str:
    return " ".join(text.split()).lower()


@pytest.fixture(scope="module")
def sms_lines() -> list[str]:
    return shared("sms_spam_collection", "SMSSpamCollection").read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def small(sms_lines, tmp_path_factory):
    """49 messages (one repeated: an exact-duplicate warning; under 50, so no fold models are trained) and a
    --test file of 20 other messages plus 3 copied from the training file: leakage, an error."""
    folder = tmp_path_factory.mktemp("gate")
    train = sms_lines[:48] + [sms_lines[2]]
    test = sms_lines[100:120] + [sms_lines[4], sms_lines[9], sms_lines[19]]
    (folder / "train").write_text("\n".join(train) + "\n", encoding="utf-8")
    (folder / "test").write_text("\n".join(test) + "\n", encoding="utf-8")
    seen = {key(line.split("\t", 1)[1]) for line in train}
    leaked = [i + 1 for i, line in enumerate(test) if key(line.split("\t", 1)[1]) in seen]
    assert leaked[-3:] == [21, 22, 23]  # the planted copies (the real file may repeat a message too)
    return folder / "train", folder / "test", leaked


def one_line_error(err: str, *needles) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("glassbox: error:"), err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def findings(path) -> dict:
    return {f["name"]: f for f in json.loads(path.read_text())["findings"]}


def test_leakage_into_the_test_file_stops_training_and_force_overrides(small, tmp_path, capsys):
    train, test, leaked = small
    out = tmp_path / "run"
    assert main(["train", str(train), *READ_AS_SMS, "--test", str(test), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    one_line_error(captured.err, "the data audit found errors", str(out / "audit.json"), "--force")
    assert "Leakage: same example in two splits" in captured.out  # the audit table was shown first
    leak = findings(out / "audit.json")["leakage"]
    assert leak["severity"] == "error" and leak["count"] == len(leaked) and len(leaked) > 0.01 * 23
    assert sorted(leak["flagged"][i]["line"] for i in range(leak["count"])) == leaked
    assert not (out / "model").exists() and not (out / "summary.json").exists()
    # the stopped run left only its set-up and the audit: the same folder takes the forced run
    assert {p.name for p in out.iterdir()} == {"config.json", "split.json", "audit.json"}
    assert main(["train", str(train), *READ_AS_SMS, "--test", str(test), "--out", str(out), "--force", "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert (out / "model" / "model.safetensors").is_file()
    assert summary["audit"]["errors"] == 1 and "Leakage: same example in two splits" in summary["audit"]["findings"]
    assert summary["n_examples"]["test"] == 23  # the user's file is the test split, copies and all


def test_strict_stops_training_on_warnings(small, tmp_path, capsys):
    train, _, _ = small
    out = tmp_path / "run"
    assert main(["train", str(train), *READ_AS_SMS, "--out", str(out), "--strict", "--quiet"]) == 2
    one_line_error(capsys.readouterr().err, "warnings and --strict is on", str(out / "audit.json"))
    report = json.loads((out / "audit.json").read_text())
    assert report["errors"] == 0 and report["warnings"] >= 1
    assert findings(out / "audit.json")["exact_duplicates"]["count"] == 1
    assert not (out / "model").exists()


def test_audit_exit_codes(small, tmp_path, capsys):
    train, test, leaked = small
    args = ["audit", str(train), *READ_AS_SMS, "--json"]
    assert main([*args, "--test", str(test)]) == 1                      # an error: leakage
    report = json.loads(capsys.readouterr().out)
    assert report["errors"] == 1 and findings_of(report)["leakage"]["count"] == len(leaked)
    assert main(args) == 0                                              # warnings only
    report = json.loads(capsys.readouterr().out)
    assert report["errors"] == 0 and report["warnings"] >= 1
    assert main([*args, "--strict"]) == 1                               # warnings fail with --strict


def findings_of(report: dict) -> dict:
    return {f["name"]: f for f in report["findings"]}


def test_a_strict_audit_passes_once_the_flagged_lines_are_removed(sms_lines, tmp_path, capsys):
    data = tmp_path / "sms300"
    data.write_text("\n".join(sms_lines[:300]) + "\n", encoding="utf-8")
    args = ["audit", str(data), *READ_AS_SMS, "--json", "--strict", "--no-label-errors"]
    assert main(args) == 1
    report = json.loads(capsys.readouterr().out)
    warned = [f for f in report["findings"] if f["severity"] != "info"]
    assert report["errors"] == 0 and {f["name"] for f in warned} == {"exact_duplicates", "near_duplicates"}
    drop = {row["line"] for f in warned for row in f["flagged"]}      # every later copy and near copy
    kept = [line for number, line in enumerate(sms_lines[:300], start=1) if number not in drop]
    assert 0 < len(drop) < 30
    data.write_text("\n".join(kept) + "\n", encoding="utf-8")
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_examples"] == 300 - len(drop) and report["warnings"] == report["errors"] == 0


def test_audit_without_a_test_file_checks_the_split_train_would_make(sms_lines, capsys):
    sms = shared("sms_spam_collection", "SMSSpamCollection")
    assert main(["audit", str(sms), *READ_AS_SMS, "--json", "--no-label-errors"]) == 0
    found = findings_of(json.loads(capsys.readouterr().out))
    # the file holds 415 later copies and 107 near copies, yet none crosses the split: it keeps both together
    assert found["exact_duplicates"]["count"] == 415 and found["near_duplicates"]["count"] > 100
    for name in ("leakage", "near_leakage"):
        assert found[name]["count"] == 0 and found[name]["stats"]["by_split"] == {}
        assert "(train, val, test)" in found[name]["message"]

"""Parquet and Arrow IPC (Feather) files read as the same table in CSV or JSONL does (typed values as the text a CSV
holds), only the columns a text run uses are read, `glassbox audit` finds the same in both, and a damaged file is
one line with exit code 2. (Training from Parquet, --test and eval: tests/test_python_api.py.)"""
import datetime as dt
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from glassbox.cli import main
from glassbox.data.table import read_table
from glassbox.data.tabular import load_tabular
from glassbox.data.text import load_text
from tests.conftest import shared
from tests.test_bad_input import assert_one_line_error, run_cli


@pytest.fixture(scope="module")
def sms(tmp_path_factory):
    """The first 300 SMS messages as a CSV (quoted by pandas) and as Parquet, written from one DataFrame."""
    folder = tmp_path_factory.mktemp("sms")
    lines = shared("sms_spam_collection", "SMSSpamCollection").read_text(encoding="utf-8").splitlines()[:300]
    frame = pd.DataFrame([line.split("\t", 1) for line in lines], columns=["label", "text"])
    frame.to_csv(folder / "sms.csv", index=False)
    frame.to_parquet(folder / "sms.parquet")
    return folder


def test_typed_values_read_as_the_jsonl_and_csv_of_the_same_rows(tmp_path):
    """Every Arrow type a DataFrame writes becomes the text the JSONL reader gives the same values (1.0 as "1",
    true as "true", null as ""), a float32 its shortest form, a date its ISO form."""
    frame = pd.DataFrame({
        "x": [1.0, 0.5, np.nan, -2.25],
        "f32": np.array([0.1, 3.0, 2.5, 1e-3], dtype=np.float32),
        "n": pd.array([3, None, 7, 0], dtype="Int64"),
        "flag": [True, False, True, None],
        "day": [dt.date(2024, 3, 1), dt.date(2023, 12, 31), None, dt.date(2024, 2, 29)],
        "city": pd.Categorical(["Oslo", "Lima", "Oslo", None]),
        "y": ["a", "b", "a", "b"],
    })
    frame.to_parquet(tmp_path / "t.parquet")
    feather.write_feather(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "t.feather")
    rows = [{"x": 1, "f32": 0.1, "n": 3, "flag": True, "day": "2024-03-01", "city": "Oslo", "y": "a"},
            {"x": 0.5, "f32": 3, "n": None, "flag": False, "day": "2023-12-31", "city": "Lima", "y": "b"},
            {"x": None, "f32": 2.5, "n": 7, "flag": True, "day": None, "city": "Oslo", "y": "a"},
            {"x": -2.25, "f32": 0.001, "n": 0, "flag": None, "day": "2024-02-29", "city": None, "y": "b"}]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    jsonl, _ = read_table(tmp_path / "t.jsonl")
    for name in ("t.parquet", "t.feather"):
        table, lines = read_table(tmp_path / name)
        pd.testing.assert_frame_equal(table, jsonl)
        assert lines == [1, 2, 3, 4]  # row numbers: a message names the row
    assert jsonl["x"].tolist() == ["1", "0.5", "", "-2.25"] and jsonl["f32"].tolist() == ["0.1", "3", "2.5", "0.001"]


def test_a_parquet_text_file_loads_as_its_csv_reading_only_the_columns_used(sms, tmp_path):
    base = load_text(sms / "sms.csv", "text", "label")
    ex = load_text(sms / "sms.parquet", "text", "label")
    assert ex.inputs == base.inputs and ex.classes == base.classes == ["ham", "spam"]
    assert np.array_equal(ex.labels, base.labels) and ex.fingerprint() == base.fingerprint()
    assert sum(ex.labels) == 44  # 44 spam among the first 300 messages
    # A column the run does not use is not read: bytes there (which no reader turns into text) are never touched.
    table = pq.read_table(sms / "sms.parquet").append_column("blob", pa.array([b"\x00\xff"] * 300))
    pq.write_table(table, tmp_path / "blob.parquet")
    assert load_text(tmp_path / "blob.parquet", "text", "label").inputs == base.inputs
    with pytest.raises(Exception, match="column 'blob' of .* holds bytes, not text or numbers"):
        load_tabular(tmp_path / "blob.parquet", "label")  # a table reads every column


def test_audit_finds_the_same_in_parquet_as_in_csv(sms, capsys):
    found = {}
    for name in ("sms.csv", "sms.parquet"):
        assert main(["audit", str(sms / name), "--text", "text", "--label", "label", "--no-label-errors",
                     "--json"]) in (0, 1)
        found[name] = json.loads(capsys.readouterr().out)
    for report in found.values():
        report.pop("source", None)
    counts = {name: {f["name"]: f["count"] for f in r["findings"]} for name, r in found.items()}
    assert counts["sms.csv"] == counts["sms.parquet"] and counts["sms.csv"]["exact_duplicates"] >= 1


def test_a_damaged_parquet_file_is_one_line_and_exit_2(sms, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where train's default run folder, runs/..., would go
    whole = (sms / "sms.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(whole[: len(whole) // 2])      # cut short
    (tmp_path / "named.parquet").write_text("label,text\nham,hello\n")   # a CSV under a Parquet name
    (tmp_path / "cut.feather").write_bytes(b"ARROW1\x00\x00" + b"\x01" * 40)
    for name, fmt in (("cut.parquet", "Parquet"), ("named.parquet", "Parquet"), ("cut.feather", "Arrow")):
        for command in ("train", "audit"):
            code, err = run_cli(capsys, command, str(tmp_path / name), "--text", "text", "--label", "label")
            assert_one_line_error(code, err, f"cannot be read as {fmt}", "write it again")
    assert not (tmp_path / "runs").exists()  # a run that never started leaves no folder behind

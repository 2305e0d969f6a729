"""Every kind of bad input ends in one clear line on stderr and exit code 2, never a traceback."""
import subprocess
import sys

import pytest

from glassbox.cli import main
from tests.conftest import subprocess_env


def run_cli(capsys, *args):
    code = main(list(args))
    err = capsys.readouterr().err
    return code, err


def assert_one_line_error(code, err, *needles):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("glassbox: error:"), err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_missing_file(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default run folder, runs/<date>-<time>-nope, would go here
    assert_one_line_error(*run_cli(capsys, "train", str(tmp_path / "nope.csv"), "--label", "y"), "not found")
    assert not (tmp_path / "runs").exists()  # a run that never started leaves no folder behind


def test_a_run_that_failed_on_bad_input_can_be_run_again_in_the_same_folder(capsys, tmp_path, digits_csv):
    out = str(tmp_path / "r")
    assert_one_line_error(*run_cli(capsys, "train", str(digits_csv), "--label", "digits", "--out", out), "not found")
    assert main(["train", str(digits_csv), "--label", "digit", "--out", out, "--max-steps", "5", "--quiet"]) == 0
    assert_one_line_error(*run_cli(capsys, "train", str(digits_csv), "--label", "digit", "--out", out),
                          "already holds files")  # a finished run is never overwritten


def test_empty_file(capsys, tmp_path):
    (tmp_path / "e.csv").write_text("")
    assert_one_line_error(*run_cli(capsys, "train", str(tmp_path / "e.csv"), "--label", "y", "--out", str(tmp_path / "r")), "empty")


def test_unknown_label_column_lists_columns(capsys, tmp_path, digits_csv):
    code, err = run_cli(capsys, "train", str(digits_csv), "--label", "target", "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, "'target' not found", "p0, p1", "digit")


def test_single_class(capsys, tmp_path):
    (tmp_path / "one.csv").write_text("a,b,y\n" + "".join(f"{i},{i * 2},yes\n" for i in range(20)))
    assert_one_line_error(*run_cli(capsys, "train", str(tmp_path / "one.csv"), "--label", "y", "--out", str(tmp_path / "r")),
                          "single class")


def test_too_few_examples_to_split(capsys, tmp_path):
    rows = "".join(f"{i},{i % 3},{'PQ'[i % 2]}\n" for i in range(15))  # 15 rows: 10% rounds to no test example
    (tmp_path / "few.csv").write_text("a,b,y\n" + rows)
    assert_one_line_error(*run_cli(capsys, "train", str(tmp_path / "few.csv"), "--label", "y", "--out", str(tmp_path / "r")),
                          "15 examples are too few to split", "test split would be empty", "--test FILE")
    # the audit still runs; the label-error check says why it did not
    assert main(["audit", str(tmp_path / "few.csv"), "--label", "y", "--json"]) == 0
    import json

    found = {f["name"]: f for f in json.loads(capsys.readouterr().out)["findings"]}
    assert not found["label_errors"]["checked"] and "too few for 5-fold checking" in found["label_errors"]["message"]


def test_ragged_rows_name_the_line(capsys, tmp_path):
    (tmp_path / "r.csv").write_text("a,b,y\n1,2,x\n3,4,y\n5,y\n6,7,x\n")
    assert_one_line_error(*run_cli(capsys, "train", str(tmp_path / "r.csv"), "--label", "y", "--out", str(tmp_path / "r")),
                          "line 4", "2 fields", "header has 3")


def test_non_utf8(capsys, tmp_path):
    (tmp_path / "l.csv").write_bytes("a,y\ncafé,1\nthé,2\n".encode("latin-1"))
    assert_one_line_error(*run_cli(capsys, "train", str(tmp_path / "l.csv"), "--label", "y", "--out", str(tmp_path / "r")),
                          "not UTF-8", "line 2")


def test_text_in_numeric_column(capsys, tmp_path):
    rows = "".join(f"{i * 1.5},{i % 2}\n" for i in range(200))
    (tmp_path / "n.csv").write_text("x,y\n" + rows + "abc,1\n")
    assert_one_line_error(*run_cli(capsys, "train", str(tmp_path / "n.csv"), "--label", "y", "--out", str(tmp_path / "r")),
                          "column 'x' is numeric", "'abc'", "line 202")


def test_few_distinct_values_with_text_become_categorical(tmp_path):
    from glassbox.data.tabular import TabularEncoder, load_tabular

    (tmp_path / "c.csv").write_text("size,y\n" + "".join(f"{['1', '2', 'XL'][i % 3]},{i % 2}\n" for i in range(60)))
    enc = TabularEncoder().fit(load_tabular(tmp_path / "c.csv", "y"))
    assert enc.categorical == {"size": ["1", "2", "XL"]}


def test_corrupt_image(capsys, tmp_path):
    for cls in ("a", "b"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        from PIL import Image

        for i in range(4):
            Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(tmp_path / "imgs" / cls / f"{i}.png")
    (tmp_path / "imgs" / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    assert_one_line_error(*run_cli(capsys, "train", str(tmp_path / "imgs"), "--out", str(tmp_path / "r")),
                          "broken.jpg", "corrupt")


def test_unknown_config_key_lists_known(capsys, tmp_path, digits_csv):
    (tmp_path / "c.yaml").write_text("label: digit\nlearning_rate: 0.1\n")
    assert_one_line_error(*run_cli(capsys, "train", str(digits_csv), "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "r")),
                          "learning_rate", "known keys are", "lr")


def test_config_file_sets_flags(tmp_path, digits_csv):
    import json

    (tmp_path / "c.yaml").write_text(f"# glassbox train --config c.yaml\ndata: {digits_csv}\nlabel: digit\nmax_steps: 5\nlr: 0.01\nquiet: true\n")
    assert main(["train", "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "r"), "--lr", "0.02"]) == 0
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert saved["max_steps"] == 5 and saved["lr"] == 0.02  # the flag wins over the file


def test_existing_run_folder_is_not_overwritten(capsys, tmp_path, digits_csv):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "keep.txt").write_text("precious")
    assert_one_line_error(*run_cli(capsys, "train", str(digits_csv), "--label", "digit", "--out", str(tmp_path / "r")),
                          "already holds files", "--resume")
    assert (tmp_path / "r" / "keep.txt").read_text() == "precious"


def test_tampered_artifact_is_refused(capsys, tmp_path, digits_csv):
    assert main(["train", str(digits_csv), "--label", "digit", "--out", str(tmp_path / "r"), "--max-steps", "5", "--quiet"]) == 0
    weights = tmp_path / "r" / "model" / "model.safetensors"
    original = weights.read_bytes()
    data = bytearray(original)
    data[-5] ^= 0x01  # flip one bit of one weight
    weights.write_bytes(bytes(data))
    assert_one_line_error(*run_cli(capsys, "predict", str(tmp_path / "r" / "model"), ",".join(["0"] * 64)),
                          "sha256", "refusing")
    weights.write_bytes(original)
    seen = tmp_path / "r" / "model" / "seen.safetensors"
    data = bytearray(seen.read_bytes())
    data[-3] ^= 0x01  # the record of which examples it trained on, changed
    seen.write_bytes(bytes(data))
    assert_one_line_error(*run_cli(capsys, "eval", str(tmp_path / "r" / "model"), str(digits_csv), "--label", "digit"),
                          "seen.safetensors", "changed after export")


def test_error_in_a_real_process_has_no_traceback(tmp_path):
    p = subprocess.run([sys.executable, "-m", "glassbox", "train", str(tmp_path / "missing.csv"), "--label", "y"],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path, env=subprocess_env())
    assert p.returncode == 2
    assert not (tmp_path / "runs").exists()  # no default run folder for a run that never started
    assert "Traceback" not in p.stderr and p.stderr.count("\n") == 1


def test_a_bad_command_line_is_one_line_too(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["train", "x.csv", "--power-watts", "abc"])
    assert stop.value.code == 2
    assert_one_line_error(2, capsys.readouterr().err, "--power-watts: invalid float value: 'abc'", "glassbox train --help")


@pytest.mark.parametrize("flags, needle", [(["--val-fraction", "1.5"], "'val_fraction' setting must be a share"),
                                           (["--val-fraction", "0.5", "--test-fraction", "0.45"], "at least 10%"),
                                           (["--price-per-kwh", "-1"], "'price_per_kwh' setting"),
                                           (["--threads", "0"], "'threads' setting")])
def test_impossible_settings_are_refused(capsys, tmp_path, digits_csv, flags, needle):
    assert_one_line_error(*run_cli(capsys, "train", str(digits_csv), "--label", "digit", "--out", str(tmp_path / "r"),
                                   *flags), needle)


@pytest.mark.parametrize("flags, needle", [(["--optimizer", "adam"], "unknown optimizer 'adam'; choose one of: adamw, sgd"),
                                           (["--task", "lmm"], "unknown task 'lmm'"),
                                           (["--control", "shuffled"], "choose one of: shuffled-labels"),
                                           (["--device", "tpu"], "unknown device 'tpu'"),
                                           (["--model", "fasttext"], "--model fasttext cannot read tabular data"),
                                           (["--model", "gpt"], "gpt trains on a text corpus: --task lm"),
                                           (["--momentum", "0.5"], "--momentum applies to --optimizer sgd, and this run uses adamw"),
                                           (["--optimizer", "sgd", "--momentum", "1"], "'momentum' setting")])
def test_settings_that_cannot_work_are_refused_before_any_work(capsys, tmp_path, digits_csv, flags, needle):
    assert_one_line_error(*run_cli(capsys, "train", str(digits_csv), "--label", "digit", "--out", str(tmp_path / "r"),
                                   *flags), needle)


def test_classifier_settings_on_a_language_model_are_refused(capsys, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("some text\n" * 100)
    assert_one_line_error(*run_cli(capsys, "train", str(corpus), "--task", "lm", "--group", "x",
                                   "--out", str(tmp_path / "r")), "--group does not apply to a language model")
    assert not (tmp_path / "r").exists()


def test_a_file_without_a_header_row_says_so(capsys, tmp_path):
    from tests.conftest import shared

    assert_one_line_error(*run_cli(capsys, "train", str(shared("uci_adult", "adult.data")), "--label", "income",
                                   "--out", str(tmp_path / "r")), "seems to have no header row", "--columns")


def test_resume_refuses_flags_that_would_change_the_run(capsys, tmp_path, digits_csv):
    out = str(tmp_path / "r")
    assert main(["train", str(digits_csv), "--label", "digit", "--out", out, "--max-steps", "5", "--quiet"]) == 0
    assert_one_line_error(*run_cli(capsys, "train", str(digits_csv), "--label", "digit", "--out", out, "--max-steps", "10",
                                   "--resume"), "these settings differ: max-steps (5 there, 10 now)")
    # how it talks and what the ledger assumes may change
    assert main(["train", str(digits_csv), "--label", "digit", "--out", out, "--max-steps", "5", "--resume",
                 "--quiet", "--power-watts", "100"]) == 0


@pytest.mark.parametrize("extra, needle", [(["--test", "nope.csv"], "--test nope.csv not found"),
                                           (["--group", "digit"], "--group digit is the label itself")])
def test_test_file_and_group_mistakes(capsys, tmp_path, digits_csv, extra, needle):
    assert_one_line_error(*run_cli(capsys, "train", str(digits_csv), "--label", "digit", "--out", str(tmp_path / "r"),
                                   *extra), needle)


def test_builtin_data_takes_no_test_file(capsys, tmp_path, digits_csv):
    assert_one_line_error(*run_cli(capsys, "train", "digits", "--test", str(digits_csv), "--out", str(tmp_path / "r")),
                          "carves its own test split")


def test_tiny_images_ask_for_a_larger_size(capsys, tmp_path):
    from PIL import Image

    for cls in ("cat", "dog"):
        (tmp_path / "img" / cls).mkdir(parents=True)
        for i in range(12):
            Image.new("RGB", (1, 1), (i * 20, 0, 0)).save(tmp_path / "img" / cls / f"{i}.png")
    assert_one_line_error(*run_cli(capsys, "train", str(tmp_path / "img"), "--out", str(tmp_path / "r")),
                          "1x1 pixels", "--image-size 8")


@pytest.mark.parametrize("args, needle", [(["--label", "digit", "--tokenizer", "bpe"], "--tokenizer does not apply to tabular data"),
                                          (["--label", "digit", "--image-size", "16"], "--image-size does not apply to tabular"),
                                          (["--task", "lm", "--test", "x.csv"], "--test does not apply to a language model")])
def test_settings_that_would_be_ignored_are_refused(capsys, tmp_path, digits_csv, args, needle):
    assert_one_line_error(*run_cli(capsys, "train", str(digits_csv), *args, "--out", str(tmp_path / "r")), needle)
    assert not (tmp_path / "r").exists()


def test_version_is_the_packages(capsys):
    import glassbox

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"glassbox {glassbox.__version__}"

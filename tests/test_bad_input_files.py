"""Bad files and values found by fuzzing the CLI: each ends in one line on stderr and exit code 2."""
import math

import pytest
import torch

from glassbox.cli import main
from tests.test_bad_input import assert_one_line_error, run_cli


@pytest.fixture
def sms_tsv(tmp_path):
    lines = [f"{'spam' if i % 5 == 0 else 'ham'}\t{'WIN a prize call 0906' + str(i) if i % 5 == 0 else 'see you at ' + str(i)}"
             for i in range(60)]
    path = tmp_path / "sms.tsv"
    path.write_text("\n".join(lines) + "\n")
    return path


def text_flags(*extra):
    return ["--columns", "label,text", "--text", "text", "--label", "label", *extra]


def test_utf16_files_are_named_as_utf16(capsys, tmp_path):
    data = "y,x\n" + "".join(f"{'ab'[i % 2]},{i}\n" for i in range(30))
    (tmp_path / "bom.csv").write_bytes(data.encode("utf-16"))            # with a byte-order mark
    (tmp_path / "nobom.csv").write_bytes(data.encode("utf-16-le"))       # without one
    (tmp_path / "corpus.txt").write_bytes(("to be or not to be\n" * 50).encode("utf-16"))
    for name in ("bom.csv", "nobom.csv"):
        assert_one_line_error(*run_cli(capsys, "audit", str(tmp_path / name), "--label", "y"), "UTF-16", "UTF-8")
    assert_one_line_error(*run_cli(capsys, "train", str(tmp_path / "corpus.txt"), "--task", "lm",
                                   "--out", str(tmp_path / "r")), "UTF-16", "re-save it as UTF-8")
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").glob("model"))


def test_devices_are_refused_not_read_forever(capsys, tmp_path):
    assert_one_line_error(*run_cli(capsys, "audit", "/dev/zero", "--label", "y"), "not a regular file")
    assert_one_line_error(*run_cli(capsys, "train", "/dev/zero", "--task", "lm", "--out", str(tmp_path / "r")),
                          "not a regular file")


def test_wrong_number_of_column_names(capsys, tmp_path, sms_tsv):
    code, err = run_cli(capsys, "train", str(sms_tsv), "--columns", "a,b,c", "--text", "b", "--label", "a",
                        "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, "has 2 fields but --columns names 3 (a,b,c)")


def test_text_and_label_in_one_column(capsys, tmp_path, sms_tsv):
    code, err = run_cli(capsys, "train", str(sms_tsv), "--columns", "label,text", "--text", "text", "--label", "text",
                        "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, "--text and --label both name the column 'text'")


def test_a_continuous_label_is_called_continuous(capsys, tmp_path):
    rows = "".join(f"{i % 7},{i * 1.37:.2f}\n" for i in range(200))    # 200 distinct numbers as the label
    (tmp_path / "reg.csv").write_text("x,price\n" + rows)
    code, err = run_cli(capsys, "train", str(tmp_path / "reg.csv"), "--label", "price", "--task", "classify",
                        "--out", str(tmp_path / "r"))  # auto would train it as a regression (tests/test_regression.py)
    assert_one_line_error(code, err, "the label looks continuous: 200 distinct numbers", "--task regression",
                          "bin the values")
    assert len(err) < 400


def test_a_test_file_of_another_kind(capsys, tmp_path, sms_tsv, cats_dogs_64):
    code, err = run_cli(capsys, "train", str(sms_tsv), *text_flags("--test", str(cats_dogs_64 / "100"),
                                                                    "--out", str(tmp_path / "r")))
    assert_one_line_error(code, err, "holds images but the training data holds texts")


def test_an_idx_folder_missing_its_labels(capsys, tmp_path):
    (tmp_path / "idx").mkdir()
    (tmp_path / "idx" / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 12)
    code, err = run_cli(capsys, "train", str(tmp_path / "idx"), "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, "no *labels-idx1-ubyte* file")


def test_audit_refuses_what_training_refuses(capsys, tmp_path):
    rows = [f"{i % 10},{i * 0.5},{'ab'[i % 2]}" for i in range(100)]
    rows[4] = "3,inf,a"
    (tmp_path / "inf.csv").write_text("x1,x2,y\n" + "\n".join(rows) + "\n")
    code, err = run_cli(capsys, "audit", str(tmp_path / "inf.csv"), "--label", "y", "--no-label-errors")
    assert_one_line_error(code, err, "column 'x2' is numeric but line 6 holds 'inf'")
    (tmp_path / "blank.txt").write_text("\n  \n\n")
    assert_one_line_error(*run_cli(capsys, "audit", str(tmp_path / "blank.txt"), "--task", "lm"), "is empty")


@pytest.fixture(scope="module")
def sms_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sms_model")
    lines = [f"{'spam' if i % 5 == 0 else 'ham'}\t{'WIN a prize call 0906' + str(i) if i % 5 == 0 else 'see you at ' + str(i)}"
             for i in range(60)]
    (folder / "sms.tsv").write_text("\n".join(lines) + "\n")
    assert main(["train", str(folder / "sms.tsv"), *text_flags("--max-steps", "20", "--quiet",
                                                                "--out", str(folder / "run"))]) == 0
    return folder / "run" / "model"


def test_predict_file_that_holds_no_inputs(capsys, tmp_path, sms_model):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "blank.txt").write_text("\n \n\n")
    for name in ("empty.txt", "blank.txt"):
        assert_one_line_error(*run_cli(capsys, "predict", str(sms_model), "--file", str(tmp_path / name)), "holds no inputs")
    assert_one_line_error(*run_cli(capsys, "predict", str(sms_model), "--file", str(tmp_path)), "is a folder")
    assert_one_line_error(*run_cli(capsys, "predict", str(sms_model), "--file", "/dev/zero"), "not a regular file")


def test_predict_inputs_may_follow_options_but_unknown_options_fail(capsys, sms_model):
    assert main(["predict", str(sms_model), "--json", "see you at 3", "WIN a prize call 09061"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 2 and '"input": "see you at 3"' in out[0]
    with pytest.raises(SystemExit) as exit_:                  # argparse's own exit
        main(["predict", str(sms_model), "hi", "--jsn", "x"])
    assert_one_line_error(exit_.value.code, capsys.readouterr().err, "unrecognized arguments: --jsn x")


def test_generate_temperatures_too_small_for_float32_are_greedy(tmp_path):
    """A temperature that underflows float32 (1e-39) or divides the scores into inf used to end in NaN
    probabilities; sampling at such a temperature is picking the likeliest token."""
    from glassbox.models.gpt import GPT, GPTConfig

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=16))
    prompt = torch.tensor([[1, 2, 3]])
    greedy = model.generate(prompt, 10, temperature=0.0)
    for t in (1e-39, 1e-320, 1e-30):
        out = model.generate(prompt, 10, temperature=t, generator=torch.Generator().manual_seed(1))
        assert torch.equal(out, greedy), t
    warm = model.generate(prompt, 10, temperature=math.inf, generator=torch.Generator().manual_seed(1))
    assert warm.shape == greedy.shape and (warm < 20).all()   # inf: uniform sampling, still valid tokens


def test_generate_seed_range(capsys, tmp_path):
    for seed in ("-1", str(2**63)):
        assert_one_line_error(*run_cli(capsys, "generate", str(tmp_path), "--prompt", "a", "--seed", seed),
                              "--seed must be between 0 and 4,294,967,295")

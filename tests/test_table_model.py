"""The default table model (MLP-PLR ensemble): its maths against plain references, and a real UCI Adult run through
train, the frozen artifact and predict, its figures checked with scikit-learn."""
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.special import log_softmax, logsumexp
from sklearn.metrics import accuracy_score, log_loss

from glassbox.cli import main
from glassbox.infer.predictor import Predictor
from glassbox.models.mlp_plr import MLPPLR, MLPPLRConfig, PeriodicEmbeddings

ADULT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "uci_adult"
COLUMNS = "age,workclass,fnlwgt,education,education_num,marital,occupation,relationship,race,sex,gain,loss,hours,country,income"


def test_periodic_embeddings_equal_the_formula():
    torch.manual_seed(0)
    emb = PeriodicEmbeddings(n_features=3, n_frequencies=4, sigma=10.0, d=5)
    x = torch.randn(7, 3)
    c, w, b = (p.detach().numpy().astype(np.float64) for p in (emb.frequencies, emb.weight, emb.bias))
    out = np.zeros((7, 3, 5))
    for n in range(7):
        for f in range(3):
            angle = 2 * math.pi * c[f] * float(x[n, f])
            out[n, f] = np.maximum(0.0, np.concatenate([np.sin(angle), np.cos(angle)]) @ w[f] + b[f])
    assert emb(x).detach().numpy() == pytest.approx(out.reshape(7, 15), abs=1e-4)


def test_each_training_row_trains_one_member_and_prediction_averages_probabilities():
    torch.manual_seed(0)
    model = MLPPLR(MLPPLRConfig(n_numeric=2, n_classes=3, cardinalities=[4], members=3, dropout=0.0))
    x = torch.cat([torch.randn(9, 2), torch.randint(0, 4, (9, 1)).float()], dim=1)
    model.train()
    logits = model(x)
    logits[1].sum().backward()  # row 1 belongs to member 1 (rows 1, 4, 7)
    touched = [any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters()) for m in model.members]
    assert touched == [False, True, False]
    for i, member in enumerate(model.members):
        assert torch.allclose(logits[i::3], member(x[i::3]))
    model.eval()
    with torch.no_grad():
        each = np.stack([log_softmax(m(x).double().numpy(), axis=1) for m in model.members])
        expected = logsumexp(each, axis=0) - math.log(3)  # log of the mean probability
        assert model(x).double().numpy() == pytest.approx(expected, abs=1e-5)


def as_users_write_it(lines: list[str], first_id: int) -> pd.DataFrame:
    """Real Adult rows as a spreadsheet export holds them: a row ID, thousands separators, a currency sign, a boolean
    and a date (the birth year from age, in the census year 1994) in place of plain numbers and categories."""
    rows = pd.DataFrame([[v.strip() for v in line.split(",")] for line in lines], columns=COLUMNS.split(","))
    rows.insert(0, "row_id", [f"P{first_id + i:06d}" for i in range(len(rows))])
    rows["fnlwgt"] = [f"{int(v):,}" for v in rows["fnlwgt"]]
    rows["gain"] = [f"${int(v):,}" for v in rows["gain"]]
    rows["male"] = np.where(rows.pop("sex") == "Male", "yes", "no")
    rows["born"] = [f"{1994 - int(a)}-07-01" for a in rows["age"]]
    return rows


@pytest.fixture(scope="module")
def adult_run(tmp_path_factory):
    """The plain command on 3,000 training rows of UCI Adult, tested on 2,000 rows of adult.test."""
    if not (ADULT / "adult.data").exists():
        pytest.skip("UCI Adult not in ../shared/data")
    folder = tmp_path_factory.mktemp("adult")
    train_lines = (ADULT / "adult.data").read_text().splitlines()[:3000]
    test_lines = (ADULT / "adult.test").read_text().splitlines()[1:2001]
    as_users_write_it(train_lines, 1).to_csv(folder / "train.csv", index=False)
    as_users_write_it(test_lines, 5001).to_csv(folder / "test.csv", index=False)
    out = folder / "run"
    assert main(["train", str(folder / "train.csv"), "--label", "income", "--test", str(folder / "test.csv"),
                 "--out", str(out), "--quiet"]) == 0
    return folder, out


def test_adult_run_beats_the_majority_and_predict_gives_the_runs_figures(adult_run, capsys):
    folder, out = adult_run
    s = json.loads((out / "summary.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert s["model"] == "mlp_plr" and config["sources"]["epochs"] == "default for tabular data"
    manifest = json.loads((out / "model" / "manifest.json").read_text())
    assert manifest["model_config"]["members"] == 4 and manifest["model_config"]["sigma"] == 10.0  # all saved
    predictor = Predictor(out / "model")
    test = pd.read_csv(folder / "test.csv", dtype=str, skipinitialspace=True, keep_default_na=False)
    truth = (test.pop("income").str.rstrip(".") == ">50K").to_numpy(int)
    probs = predictor.predict_proba(predictor.encoder.frame(test)).numpy()
    assert predictor.classes == ["<=50K", ">50K"]
    # the artifact reproduces the run's own test figures, as scikit-learn computes them
    assert accuracy_score(truth, probs.argmax(1)) == pytest.approx(s["test_accuracy"], abs=1e-9)
    assert log_loss(truth, probs) == pytest.approx(s["test_loss"], abs=1e-4)
    majority = max(truth.mean(), 1 - truth.mean())
    assert s["test_accuracy"] > majority + 0.05  # 3,000 rows are enough to learn well beyond the commonest class
    capsys.readouterr()
    assert main(["predict", str(out / "model"), train_row(folder), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    one = predictor.predict_proba(predictor.encoder.parse([train_row(folder)])).numpy()[0]
    assert answer["probabilities"][">50K"] == pytest.approx(float(one[1]), abs=1e-6)


def train_row(folder: Path) -> str:
    """The first training row's features, as a user types them (quoted where a value holds a comma)."""
    first = pd.read_csv(folder / "train.csv", dtype=str, nrows=1).drop(columns="income")
    return first.to_csv(index=False, header=False).strip()


def test_numbers_dates_booleans_are_read_and_the_id_is_left_out(adult_run):
    folder, out = adult_run
    enc = Predictor(out / "model").encoder
    raw = pd.read_csv(ADULT / "adult.data", names=COLUMNS.split(","), skipinitialspace=True, nrows=3000)
    train_rows = json.loads((out / "split.json").read_text())["train"]  # statistics come from the training split
    raw = raw.iloc[train_rows]
    assert list(enc.ignored) == ["row_id"] and "row_id" not in enc.numeric and "row_id" not in enc.categorical
    for name in ("fnlwgt", "gain"):  # "77,516" and "$2,174" read as the numbers they are
        assert enc.numeric[name]["mean"] == pytest.approx(raw[name].mean())
        assert enc.numeric[name]["std"] == pytest.approx(raw[name].std(ddof=0))
    assert enc.numeric["male"]["mean"] == pytest.approx((raw["sex"] == "Male").mean())
    days = [(pd.Timestamp(f"{1994 - a}-07-01") - pd.Timestamp("1970-01-01")).days for a in raw["age"]]
    assert enc.numeric["born"]["parse"] == "date" and enc.numeric["born"]["mean"] == pytest.approx(np.mean(days))
    # the audit reads the whole file, before it is split
    finding = next(f for f in json.loads((out / "audit.json").read_text())["findings"] if f["name"] == "id_columns")
    assert finding["severity"] == "warning" and finding["count"] == 1
    assert "column 'row_id' looks like an ID (3,000 distinct values in 3,000 rows)" in finding["message"]

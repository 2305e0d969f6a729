"""The shuffled-label control on the real digits: training accuracy climbs, validation stays at chance."""
import json

import pytest

from glassbox.cli import main


def test_shuffled_labels_memorise_noise_but_stay_at_chance(tmp_path, digits_csv):
    out = tmp_path / "run"
    assert main(["train", str(digits_csv), "--label", "digit", "--out", str(out), "--epochs", "15",
                 "--control", "shuffled-labels", "--quiet"]) == 0
    s = json.loads((out / "summary.json").read_text())
    c = s["control"]
    assert s["test_accuracy"] > 0.9                           # the real labels are learnable
    assert c["train_accuracy"] > 0.3                          # noise is memorised: far above 0.1
    assert abs(c["val_accuracy"] - c["chance_accuracy"]) < 0.08  # but nothing generalises
    assert c["leak_suspected"] is False and c["memorised_noise"] is True and "memorise noise" in c["sentence"]
    assert c["steps"] >= 2 * s["steps"] and c["main_run_steps"] == s["steps"]  # twice the planned steps, no early stop
    stages = s["stage_seconds"]  # every stage timed, and together they are the whole run
    assert list(stages) == ["data", "audit", "training", "evaluation", "control", "export", "report"]
    assert sum(stages.values()) == pytest.approx(s["wall_seconds"], rel=0.01) and stages["control"] > 0


def test_control_verdict_tells_leak_memorisation_and_neither_apart():
    from glassbox.report.words.control import sentence
    from glassbox.run.train.after_training import control_verdict

    # validation 0.20 on 10 balanced classes, 300 examples: 3 sigma is 0.052 above 0.10, so a leak
    leak = control_verdict(0.9, 0.20, 0.10, 300, 0.10, 1000)
    assert leak["leak_suspected"] and leak["margin"] == pytest.approx(3 * (0.09 / 300) ** 0.5)
    assert sentence(leak).startswith("WARNING: with shuffled training labels the model still scores 0.200 on "
                                     "validation, clearly above chance (0.100 ± 0.052)")
    noise = control_verdict(0.9, 0.11, 0.10, 300, 0.10, 1000)
    assert not noise["leak_suspected"] and noise["memorised_noise"] and "memorise noise" in sentence(noise)
    # training accuracy 0.765 vs chance 0.759 on 5,000 examples: within noise, nothing memorised
    little = control_verdict(0.765, 0.74, 0.759, 3000, 0.759, 5000)
    assert not little["leak_suspected"] and not little["memorised_noise"] and "memorised little" in sentence(little)
    assert "(0.765 vs 0.759)" in sentence(little) and "(0.740 vs 0.759), so nothing leaks" in sentence(little)


def test_adult_groups_with_a_users_own_test_file(tmp_path):
    from tests.conftest import shared

    cols = ("age,workclass,fnlwgt,education,education_num,marital_status,occupation,relationship,race,sex,"
            "capital_gain,capital_loss,hours_per_week,native_country,income")
    out = tmp_path / "adult"
    assert main(["train", str(shared("uci_adult", "adult.data")), "--columns", cols, "--label", "income",
                 "--test", str(shared("uci_adult", "adult.test")), "--group", "sex", "--group", "race",
                 "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["n_examples"]["test"] == 16281 and s["classes"] == ["<=50K", ">50K"]
    assert s["test_accuracy"] > 0.8
    groups = s["groups"]["columns"]
    assert {g["value"] for g in groups["sex"]["groups"]} == {"Male", "Female"}
    assert {g["value"] for g in groups["race"]["groups"]} == {"White", "Black", "Asian-Pac-Islander",
                                                               "Amer-Indian-Eskimo", "Other"}
    html = (out / "report.html").read_text()
    for name in ("Female", "Amer-Indian-Eskimo", "model says &#x27;&gt;50K&#x27;"):  # positive-prediction rate column
        assert name in html
    audit = json.loads((out / "audit.json").read_text())
    leak = next(f for f in audit["findings"] if f["name"] == "leakage")
    # 26 census rows of the test file equal a training row, 24 of them a row seen once in training: as many as
    # independent records give (about 23), so shared values, not leakage (tests/test_audit_leakage.py)
    assert (leak["severity"], leak["count"], leak["stats"]["rare_matched"]) == ("info", 26, 24)
    assert leak["stats"]["rare_matched"] < leak["stats"]["rare_upper"]


def test_eval_scores_an_artifact_per_group(tmp_path, capsys):
    from tests.conftest import shared

    cols = ("age,workclass,fnlwgt,education,education_num,marital_status,occupation,relationship,race,sex,"
            "capital_gain,capital_loss,hours_per_week,native_country,income")
    out = tmp_path / "adult"
    assert main(["train", str(shared("uci_adult", "adult.data")), "--columns", cols, "--label", "income",
                 "--max-steps", "150", "--out", str(out), "--quiet", "--force"]) == 0
    test_file = str(shared("uci_adult", "adult.test"))
    capsys.readouterr()
    assert main(["eval", str(out / "model"), test_file, "--columns", cols, "--label", "income",
                 "--group", "sex", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    applied = json.loads((out / "model" / "manifest.json").read_text())["calibration"]["applied"]
    assert r["n"] == 16281 and r["calibrated"] is applied and 0.75 < r["accuracy"] < 1
    sex = {g["value"]: g for g in r["groups"]["columns"]["sex"]["groups"]}
    n = sex["Male"]["size"] + sex["Female"]["size"]
    overall = (sex["Male"]["accuracy"] * sex["Male"]["size"] + sex["Female"]["accuracy"] * sex["Female"]["size"]) / n
    assert n == 16281 and abs(overall - r["accuracy"]) < 1e-9  # the groups add up to the whole

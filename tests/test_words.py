"""The words a user reads, built from numbers (glassbox/report/words/): each wording decision checked against the
numbers that drive it, and the run's stored records keep their keys where summary.json has always held them."""
import numpy as np
import pytest

from glassbox.evaluate import calibration as cal
from glassbox.evaluate import temperature as tm
from glassbox.report.words import calibration, chance, cost, groups, regression


def bins(*bands):
    """Reliability bins holding (mean confidence, accuracy, count) in the bands given; the rest empty."""
    out = [{"lower": b / 15, "upper": (b + 1) / 15, "count": 0, "mean_confidence": None, "accuracy": None}
           for b in range(15)]
    for conf, acc, count in bands:
        out[min(int(conf * 15), 14)].update(count=count, mean_confidence=conf, accuracy=acc)
    return out


def figures(ece, gap, noise, accuracy=0.9, tolerance=0.02):
    """Calibration figures as evaluate/calibration.py `figures` gives them, the verdict from its own rule."""
    return {"ece": ece, "accuracy": accuracy, "mean_confidence": accuracy + gap, "ece_noise": noise,
            "verdict": cal.verdict(ece, gap, tolerance, noise)}


def report(before, after=None, t=1.0, applied=False, reason="no temperature lowers validation NLL below T = 1",
           check=None, n_test=176, before_bins=((0.97, 0.95, 150), (0.6, 0.5, 26))):
    return {"applied": applied, "fitted_temperature": t, "reason": reason, "tolerance": 0.02, "n_test": n_test,
            "before": before, "after": after or before, "reliability_before": bins(*before_bins),
            "reliability_after": bins((0.9, 0.9, 176)), "test_check": check}


def test_the_calibration_sentence_says_beyond_or_within_noise_from_the_ece_and_its_floor():
    # 176 test examples: an ECE of 0.031 is above the tolerance, yet a calibrated model shows up to 0.045 by chance
    within = calibration.sentence(report(figures(0.031, 0.03, 0.045)))
    assert ("(no miscalibration beyond chance on this many examples: ECE 0.031, tolerance 0.02; a perfectly "
            "calibrated model would show up to 0.045 here by chance)") in within
    assert "of the 176 test examples" in within
    # the same ECE on 4,000 examples, where chance alone reaches 0.012: over-confident
    beyond = calibration.sentence(report(figures(0.031, 0.03, 0.012), n_test=4000))
    assert "(over-confident: ECE 0.031, tolerance 0.02; a perfectly calibrated model would show up to 0.012" in beyond
    under = calibration.sentence(report(figures(0.031, -0.03, 0.012)))
    assert "(under-confident: ECE 0.031" in under
    assert "(well calibrated: ECE 0.015" in calibration.sentence(report(figures(0.015, 0.01, 0.045)))
    # a run from before the noise floor: its figures have none, and the words claim none
    old = {k: v for k, v in figures(0.031, 0.03, 0.045).items() if k != "ece_noise"}
    assert "by chance" not in calibration.sentence(report(old))


def test_the_calibration_sentence_speaks_of_the_busiest_band_and_never_rounds_to_100_percent():
    said = calibration.sentence(report(figures(0.02, 0.0, 0.05), before_bins=((0.996, 0.98, 150), (0.6, 0.5, 26))))
    assert "As saved, when this model says 99.6% it is right 98% of the time" in said
    # on a tie the higher band: what a confident model meets most
    said = calibration.sentence(report(figures(0.02, 0.0, 0.05), before_bins=((0.55, 0.5, 88), (0.9, 0.85, 88))))
    assert "when this model says 90% it is right 85% of the time" in said
    assert "Accuracy is 90.0% either way" in said


def test_the_calibration_sentence_says_whether_test_agrees_with_the_kept_or_refused_temperature():
    check = {"nll_before": 0.3, "nll_after": 0.25, "change": -0.05, "change_ci": [-0.08, -0.02], "agrees": True}
    applied = calibration.sentence(report(figures(0.06, 0.05, 0.02), figures(0.01, 0.0, 0.02), t=1.8, applied=True,
                                          reason="...: a clear gain", check=check))
    assert applied.startswith("Temperature scaling applied: ...: a clear gain. As trained, when this model says")
    assert "; with T = 1.80, when it says 90% it is right 90% of the time (well calibrated: ECE 0.010; a " in applied
    assert applied.endswith(" Test agrees: T = 1.80 changed test NLL 0.3000 -> 0.2500 (change -0.0500, 95% interval "
                            "-0.0800 to -0.0200).")
    refused = calibration.sentence(report(figures(0.06, 0.05, 0.02), t=0.45, check={**check, "agrees": False}))
    assert refused.startswith("Temperature scaling not applied (the saved model keeps T = 1): ")
    assert refused.endswith(" Test disagrees with keeping T = 1: T = 0.45 would have changed test NLL 0.3000 -> 0.2500 "
                            "(change -0.0500, 95% interval -0.0800 to -0.0200), a gain the evidence on validation did not "
                            "establish beyond noise.")
    hurt = {**check, "nll_after": 0.35, "change": 0.05, "change_ci": [0.02, 0.08], "agrees": False}
    kept = calibration.sentence(report(figures(0.06, 0.05, 0.02), t=0.45, applied=True, reason="...", check=hurt))
    assert " Test disagrees with validation: T = 0.45 changed test NLL 0.3000 -> 0.3500" in kept
    noise = calibration.sentence(report(figures(0.06, 0.05, 0.02), t=0.45, check={**check, "agrees": None}))
    assert " On test the change is within noise: T = 0.45 would have changed" in noise
    assert "test NLL" not in calibration.sentence(report(figures(0.06, 0.05, 0.02)))  # T = 1 fitted: nothing to check


def test_each_temperature_decision_code_is_said_with_its_numbers():
    d = {"fitted_temperature": 0.05, "n_val": 60, "val_errors": 3, "min_val": 100, "folds": 5, "crossfit": None}
    assert calibration.reason({**d, "reason": "too_few_examples"}) == (
        "the validation split holds 60 examples, fewer than the 100 needed to check a temperature")
    assert calibration.reason({**d, "reason": "at_bound"}) == (
        "the fitted T stopped at the search bound 0.05: the 60 validation examples (3 wrong) cannot pin it down")
    cf = {"nll_before": 0.25, "nll_after": 0.2, "change": -0.05, "change_ci": [-0.07, -0.03],
          "change_ci_errors": [-0.08, 0.01]}
    d = {**d, "fitted_temperature": 0.451, "n_val": 303, "crossfit": cf}
    few = calibration.reason({**d, "reason": "few_errors"})
    assert few == ("T = 0.45 was fitted on the 303 validation examples; scoring each of 5 parts of them with a T fitted "
                   "on the other parts changed NLL 0.2500 -> 0.2000 (change -0.0500, 95% interval -0.0700 to -0.0300), "
                   "which looks like a gain, but only 3 of the 303 validation examples are wrong and how sure the model "
                   "is when wrong decides T: allowing for as many wrong ones as that count allows, the interval is "
                   "-0.0800 to +0.0100, which reaches 0")
    old = {k: v for k, v in cf.items() if k != "change_ci_errors"}  # a run from before: its count rule's code
    assert calibration.reason({**d, "crossfit": old, "reason": "too_few_errors"}).endswith(
        "but only 3 of the 303 validation examples are wrong, too few to trust it")
    assert calibration.reason({**d, "reason": "worse"}).endswith("-0.0300): worse")
    kept = {**cf, "change_ci_errors": [-0.068, -0.021]}
    assert calibration.reason({**d, "crossfit": kept, "reason": "clear_gain"}).endswith(
        "-0.0300): a clear gain, also allowing for as many wrong examples as 3 of 303 allows (-0.0680 to -0.0210)")
    assert calibration.reason({**d, "crossfit": old, "reason": "clear_gain"}).endswith("-0.0300): a clear gain")


def test_worded_puts_the_reason_where_its_code_was_and_the_sentence_last():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(600, 3)) * 4
    labels = np.array([rng.choice(3, p=p) for p in cal.softmax(logits / 3)])  # over-confident by a factor of 3
    raw = tm.calibration_report(logits[:300], labels[:300], logits[300:], labels[300:])
    assert raw["reason"] == raw["decision"]["reason"] == "clear_gain" and raw["applied"]
    said = calibration.worded(raw)
    assert list(said) == [*raw, "sentence"] and list(said["decision"]) == list(raw["decision"])
    assert said["reason"] == said["decision"]["reason"] == calibration.reason(raw["decision"])
    assert ": a clear gain, also allowing for as many wrong examples as" in said["reason"]
    assert said["sentence"].startswith("Temperature scaling applied: T = ")
    assert raw["reason"] == "clear_gain"  # the record it was given is left as it was
    assert tm.manifest_record(said)["calibration"]["reason"] == said["reason"]  # the artifact keeps the words


def test_small_groups_are_listed_five_at_most_and_counted():
    rows = [{"value": v, "size": n, "too_small": True} for v, n in zip("abcdefg", (3, 5, 1, 2, 9, 4, 7))]
    r = {"column": "race", "min_size": 30, "groups": rows, "ranked": []}
    assert groups.column_sentence(r) == ("No race group has 30 or more examples to rank. 7 groups with fewer than 30 "
                                         "examples are not ranked: a (3), b (5), c (1), d (2), e (9) and 2 more.")
    r["groups"] = rows[:1]
    assert groups.column_sentence(r).endswith(" 1 group with fewer than 30 examples is not ranked: a (3).")


def test_a_regressions_interval_and_group_words_follow_the_numbers():
    interval = {"level": 0.9, "half_width": 114.93, "n_val": 44, "rank": 41, "guaranteed_at_most": 0.9222}
    assert regression.interval_sentence({**interval, "level": 0.75, "half_width": None, "n_val": 2}, None) == (
        "prediction intervals: none, as 2 validation examples are too few for a 75% interval (it needs at least 3)")
    cover = {"n": 40, "coverage": 0.7, "ci": [0.535, 0.834], "verdict": "below"}
    said = regression.interval_sentence(interval, cover)
    assert said.startswith("prediction intervals: each prediction ± 114.9 (the absolute validation residual ranked 41 "
                           "of 44, smallest first) for a nominal 90% coverage; on 40 test examples 70.0% fell inside")
    assert said.endswith(": below the nominal 90% beyond noise: test examples differ from validation ones.")
    above = regression.interval_sentence(interval, {**cover, "coverage": 1.0, "ci": [0.93, 1.0], "verdict": "above"})
    assert "above what the method promises (92.2%) beyond noise" in above
    # the residual is truth minus prediction: a positive mean residual means the model predicts too low there
    r = {"groups": {"1.0": {"mean_residual": 20.0, "n": 120, "rmse": 61.0}, "2.0": {"mean_residual": -3.0}},
         "worst": "1.0", "z": 3.1, "z_cut": 2.24, "beyond_noise": True}
    assert regression.group_sentence("sex", r) == ("group 'sex': for sex=1.0 the model predicts too low by 20 on average "
                                                   "(120 test rows, 3.1 standard errors from 0, beyond noise); RMSE there 61")
    r["groups"]["1.0"]["mean_residual"] = -20.0
    assert "the model predicts too high by 20" in regression.group_sentence("sex", r)
    r.update(z=1.8, beyond_noise=False)
    assert regression.group_sentence("sex", r) == ("group 'sex': no group's mean residual differs from 0 beyond noise "
                                                   "(the furthest, sex=1.0, -20 at 1.8 standard errors, under 2.2)")
    assert regression.worded_groups({"sex": r})["sex"] == {**r, "sentence": regression.group_sentence("sex", r)}
    assert regression.r2_words(None) == "undefined (the true values do not vary)" and regression.r2_words(0.25) == "0.2500"
    assert chance.mean_prediction({"mean_prediction_loss": 0.98765, "untrained_loss": 1.2}).startswith(
        "chance level: always predicting the training mean has validation loss 0.9877 (on the target standardised")


def ledger(**given):
    c = {"peak_flops": 2e11, "peak_dtype": "float32", "peak_threads": None, "peak_how": None, "processes": 1.0,
         "peak_per_process": 2e11, "power_watts": 65.0, "price_per_kwh": 0.3,
         "train": {"flops": 4.2e12, "seconds": 120.0, "mfu": 0.175, "energy_kwh": 0.0021667, "cost": 0.00065},
         "inference": {"flops": 9.01e5, "seconds": 0.0011, "mfu": 0.004, "energy_kwh_per_1000": 1.99e-5,
                       "cost_per_1000": 5.96e-6},
         "training_equals_predictions": {"by_flops": 4.66e6, "by_time": 109090.9}}
    return {**c, **given}


def test_the_cost_sentence_names_its_peak_and_whether_one_prediction_leaves_the_machine_idle():
    said = cost.sentence(ledger())
    assert said.startswith("Training cost as much as 4.66 million predictions by FLOPs, or 109,091 by time. Training "
                           "used 4.20 TFLOP in 120 s, 17.5% of this machine's measured float32 matmul peak (200 GFLOP/s)")
    assert "(0.40% of peak: one example at a time keeps the machine mostly idle)" in said  # 0.4% < 17.5% / 2
    busy = ledger(inference={**ledger()["inference"], "mfu": 0.1})
    assert "(10.00% of peak)" in cost.sentence(busy)
    assert "by FLOPs" not in cost.sentence(ledger(training_equals_predictions={"by_flops": None, "by_time": 12.0}))
    two = cost.sentence(ledger(processes=2.0, peak_flops=4e11, peak_threads=1))
    assert ("the summed measured float32 matmul peak of 2 processes (200 GFLOP/s per process on 1 thread each, as "
            "training ran; 400 GFLOP/s in all)") in two and "of the peak of one process" in two
    resumed = cost.sentence(ledger(processes=1.37, peak_flops=2.74e11))
    assert "of 1.37 processes on average over the training time (200 GFLOP/s per process on its own device;" in resumed
    assert cost.peak_how({"measurements": 1}) == "measured once, at this run"
    assert cost.peak_how({"measurements": 4, "first_measured_at": "2026-12-06T10:00:00+0000",
                          "last_measured_flops_per_second": 6.123e10}) == (
        "the highest of 4 measurements on this machine since 2026-12-06; this run's check: 61.2 GFLOP/s")



def test_too_few_for_an_interval_names_the_count_the_interval_needs():
    """At 90% split conformal needs 9 validation examples (rank ceil(10 x 0.9) = 9 of 9): 8 give no interval and the
    sentence says 9, the count with which conformal_interval gives one."""
    import numpy as np

    from glassbox.evaluate.regression import conformal_interval, fewest_for
    from glassbox.report.words.regression import interval_sentence

    y = np.arange(9.0)
    assert conformal_interval(y, y + 0.5)["half_width"] == 0.5 and fewest_for(0.9) == 9
    few = conformal_interval(y[:8], y[:8] + 0.5)
    assert few["half_width"] is None and "it needs at least 9)" in interval_sentence(few, None)
    assert fewest_for(0.95) == 19 and conformal_interval(np.arange(19.0), np.arange(19.0))["half_width"] == 0.0

"""The data audit on real data: SMS Spam Collection duplicates and leakage, planted conflicts, near copies
and flipped labels; UCI Adult rows for the tabular checks; the report's JSON and terminal output."""
import io
import json
from pathlib import Path

import numpy as np
import torch
import pytest
from rich.console import Console

from glassbox.audit import run_audit
from glassbox.audit.duplicates import split_keys
from glassbox.data.examples import Examples
from glassbox.data.minhash import SHINGLE, minhash_signatures, near_duplicate_groups
from glassbox.data.split import split_indices
from glassbox.data.tabular import load_tabular
from glassbox.data.text import load_text, normalise_text
from glassbox.run.out_of_fold import duplicate_aware_folds, out_of_fold_probs

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SMS = DATA / "sms_spam_collection" / "SMSSpamCollection"
ADULT = DATA / "uci_adult" / "adult.data"
ADULT_COLUMNS = ["age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
                 "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week", "country", "income"]


@pytest.fixture(scope="module")
def sms():
    if not SMS.exists():
        pytest.skip(f"{SMS} not found (the shared data folder sits beside the repository)")
    return load_text(SMS, text_col="text", label_col="label", columns=["label", "text"])


def with_rows(ex: Examples, texts: list[str], labels: list[int]) -> Examples:
    """A copy of `ex` with extra rows appended (for planting problems)."""
    return Examples(kind="text", inputs=ex.inputs + texts, labels=np.r_[ex.labels, labels], classes=ex.classes,
                    keys=ex.keys + [normalise_text(t) for t in texts],
                    lines=ex.lines + list(range(len(ex) + 1, len(ex) + 1 + len(texts))))


def test_sms_duplicate_counts_are_what_the_file_says(sms):
    raw = [line.split("\t", 1)[1] for line in SMS.read_text(encoding="utf-8").splitlines()]
    assert len(raw) == 5574 and len(set(raw)) == 5171  # distinct exactly as written in the file
    report = run_audit(sms, near=False)
    dup = report.finding("exact_duplicates")
    # Ignoring case and repeated or surrounding whitespace leaves 5,159 distinct texts: 415 repeats.
    assert dup.stats["distinct_as_read"] == 5171
    assert dup.stats["distinct"] == 5159 and dup.count == 415 == len(dup.flagged)
    assert "5,574 texts hold only 5,159 distinct" in dup.message and "5,171 distinct exactly as read" in dup.message
    first = dup.flagged.iloc[0]  # the most repeated text comes first
    assert first["copies"] == dup.stats["largest_group"] == 30
    assert sms.keys[first["row"]] == sms.keys[first["copy_of_row"]] and first["line"] == first["row"] + 1


def test_no_leakage_across_a_duplicate_aware_split_but_a_planted_copy_is_caught(sms):
    # Split on content keys alone, near copies cross: 35 SMS texts land in another split than the one they copy.
    plain = run_audit(sms, split=split_indices(sms.keys, sms.labels, (0.8, 0.1, 0.1), seed=0))
    assert plain.finding("leakage").count == 0 and plain.finding("near_leakage").count == 35
    # glassbox's split keeps near copies together: no exact and no near leakage, by construction.
    split = split_indices(split_keys(sms), sms.labels, (0.8, 0.1, 0.1), seed=0)
    report = run_audit(sms, split=split)
    assert report.finding("leakage").count == 0 and report.finding("near_leakage").count == 0
    assert not report.has_errors
    # The user's own test file holding two training texts (one re-cased) is leakage, an error.
    test = sms.subset(split["test"][:20])
    test.inputs[3], test.keys[3] = sms.inputs[split["train"][0]].upper(), sms.keys[split["train"][0]]
    test.inputs[7], test.keys[7] = sms.inputs[split["train"][1]], sms.keys[split["train"][1]]
    leak = run_audit(sms.subset(split["train"]), test=test).finding("leakage")
    assert leak.severity == "error" and leak.count == 2
    assert leak.flagged["row"].tolist() == [3, 7] and leak.flagged["other_row"].tolist() == [0, 1]


def test_split_keeps_near_copy_groups_together_unless_they_are_huge(sms):
    keys = split_keys(sms)
    merged = [k for k in keys if k.startswith("\x00near copies")]
    assert len(merged) == 227 and len(set(merged)) == 86          # SMS: 86 groups of 2 to 8 near copies
    # Templated texts chain into one group of 100; kept together it would fill a split on its own.
    texts = [f"see you at {i} pm" for i in range(100)] + [f"unrelated message number {i * 7919 % 1000:03d}!" for i in range(20)]
    ex = Examples(kind="text", inputs=texts, labels=np.arange(120) % 2, classes=["a", "b"],
                  keys=[normalise_text(t) for t in texts])
    assert not any(k.startswith("\x00near copies") for k in split_keys(ex)[:100])


def test_fold_models_that_learned_too_little_doubt_no_label():
    """Out-of-fold accuracy 0.55 on a balanced pair of classes (as for 250 cat and dog photos): cleanlab would
    flag 40% of the labels; the check says it cannot judge instead."""
    from glassbox.audit.label_errors import label_errors

    rng = np.random.default_rng(0)
    y = np.arange(400) % 2
    p_true = np.where(rng.permutation(400) < 220, 0.6, 0.4)        # right on 220 of 400 (55%), never sure
    probs = np.stack([np.where(y == 0, p_true, 1 - p_true), np.where(y == 1, p_true, 1 - p_true)], axis=1)
    ex = Examples(kind="text", inputs=[str(i) for i in range(400)], labels=y, classes=["a", "b"],
                  keys=[str(i) for i in range(400)])
    weak = label_errors(ex, probs)
    assert not weak.checked and weak.count == 0 and "learned too little" in weak.message
    assert weak.stats["out_of_fold_accuracy"] == 0.55 and abs(weak.stats["skill"] - 0.1) < 1e-9
    # The same labels with fold models right 90% of the time: checked, and it flags what they doubt.
    p_true = np.where(rng.permutation(400) < 360, 0.95, 0.05)      # right on 90%
    probs = np.stack([np.where(y == 0, p_true, 1 - p_true), np.where(y == 1, p_true, 1 - p_true)], axis=1)
    strong = label_errors(ex, probs)
    assert strong.checked and strong.severity == "warning" and strong.count > 0


def test_planted_conflicting_labels_are_found(sms):
    assert run_audit(sms, near=False).finding("conflicting_labels").count == 0  # none in the real file
    text = sms.inputs[10]
    planted = with_rows(sms, [text + "  "], [1 - sms.labels[10]])
    found = run_audit(planted, near=False).finding("conflicting_labels")
    assert found.count == 2 and sorted(found.flagged["row"]) == [10, len(sms)]
    assert found.flagged["labels_in_group"].iloc[0] == "ham x1, spam x1"


def exact_jaccard(a: str, b: str) -> float:
    sa = {a.encode()[i:i + SHINGLE] for i in range(len(a.encode()) - SHINGLE + 1)}
    sb = {b.encode()[i:i + SHINGLE] for i in range(len(b.encode()) - SHINGLE + 1)}
    return len(sa & sb) / len(sa | sb)


def test_minhash_estimates_match_exact_jaccard(sms):
    texts = list(dict.fromkeys(sms.keys))[:1500]
    pairs = [(i, i + 1) for i in range(0, 1400, 2)]
    texts += [texts[i][:-3] + "xyz" for i in range(0, 200, 10)]  # near copies: exact Jaccard 0.6 to 0.95
    pairs += [(i, 1500 + j) for j, i in enumerate(range(0, 200, 10))]
    sig = minhash_signatures(texts)
    est = np.array([(sig[i] == sig[j]).mean() for i, j in pairs])
    exact = np.array([exact_jaccard(texts[i], texts[j]) for i, j in pairs])
    assert np.abs(est - exact).mean() < 0.03 and np.abs(est - exact).max() < 0.25


def test_near_duplicates_found_and_planted_edit_joins_its_original(sms):
    edited = sms.inputs[2].replace("Free entry", "Free entries")
    report = run_audit(with_rows(sms, [edited], [1]))
    near = report.finding("near_duplicates")
    assert near.severity == "warning" and near.count > 100  # the real file holds many near copies
    mine = near.flagged[near.flagged["row"] == len(sms)]
    assert mine["near_row"].tolist() == [2] and mine["similarity"].iloc[0] >= 0.8
    groups, _ = near_duplicate_groups(["the cat sat on the mat", "a completely different text"])
    assert groups.tolist() == [-1, -1]


def test_planted_flipped_labels_are_found_out_of_fold(sms):
    rng = np.random.default_rng(0)
    ex = sms.subset(rng.choice(len(sms), 2500, replace=False))
    flipped = rng.choice(len(ex), len(ex) // 20, replace=False)
    ex.labels = ex.labels.copy()
    ex.labels[flipped] = 1 - ex.labels[flipped]
    probs = out_of_fold_probs(ex, k=5, seed=0)
    found = run_audit(ex, pred_probs=probs, near=False).finding("label_errors")
    hits = np.isin(found.flagged["row"], flipped).sum()
    precision, recall = hits / max(1, found.count), hits / len(flipped)
    assert precision >= 0.9 and recall >= 0.85, (precision, recall)
    top = found.flagged.iloc[0]
    assert top["predicted"] != top["label"] and top["confidence"] > 0.9


def test_out_of_fold_probabilities_follow_the_seed_alone(sms):
    # The same data and seed flag the same examples, whatever ran before in the process.
    ex = sms.subset(np.arange(800))
    torch.manual_seed(123)
    first = out_of_fold_probs(ex, k=3, seed=0)
    torch.rand(1000)
    assert np.array_equal(first, out_of_fold_probs(ex, k=3, seed=0))
    assert not np.allclose(first, out_of_fold_probs(ex, k=3, seed=1))


def flip_labels(ex: Examples, share: float, seed: int) -> np.ndarray:
    """Change `share` of ex's labels to another class at random; returns the changed rows."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(ex), int(share * len(ex)), replace=False)
    ex.labels = ex.labels.copy()
    ex.labels[rows] = (ex.labels[rows] + rng.integers(1, len(ex.classes), len(rows))) % len(ex.classes)
    return rows


def found_share(ex: Examples, flipped: np.ndarray) -> tuple[float, float]:
    """(precision, recall) of the likely-label-errors finding against the flipped rows."""
    found = run_audit(ex, pred_probs=out_of_fold_probs(ex, k=5, seed=0), near=False).finding("label_errors")
    hits = np.isin(found.flagged["row"], flipped).sum()
    return hits / max(1, found.count), hits / len(flipped)


def test_flipped_labels_in_a_table_are_found_by_mlp_folds(digits_csv):
    # The 1,797 real digits as a table of 64 pixel columns; the fold models are MLPs.
    ex = load_tabular(digits_csv, label="digit")
    flipped = flip_labels(ex, 0.05, seed=0)
    precision, recall = found_share(ex, flipped)
    assert precision >= 0.8 and recall >= 0.85, (precision, recall)


def test_flipped_labels_in_images_are_found_by_cnn_folds():
    from glassbox.data.builtin import load_builtin

    ex = load_builtin("digits")
    flipped = flip_labels(ex, 0.05, seed=0)
    precision, recall = found_share(ex, flipped)
    assert precision >= 0.9 and recall >= 0.9, (precision, recall)


def test_train_skips_costly_image_folds_and_says_so():
    from glassbox.data.builtin import load_builtin
    from glassbox.run.out_of_fold import TRAIN_FOLD_FLOPS, label_check

    ex = load_builtin("digits")
    probs, note = label_check(ex, 5, seed=0, device="cpu", max_flops={"cpu": 1e9})  # 0.1 TFLOP is over this budget
    assert probs is None and note.startswith("not checked during training") and "glassbox audit" in note
    finding = run_audit(ex, pred_probs=probs, label_errors_note=note).finding("label_errors")
    assert finding.severity == "info" and finding.count == 0 and finding.message == note
    from glassbox.run.out_of_fold import FoldModels

    assert FoldModels(ex).flops < TRAIN_FOLD_FLOPS["cpu"]  # the demo's digits are checked during training


def reencoded(image: np.ndarray, quality: int = 60, brighter: int = 12) -> np.ndarray:
    """The same photo saved again as a lower-quality JPEG and a little brighter: a near copy, not an exact one."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.clip(image.transpose(1, 2, 0).astype(int) + brighter, 0, 255).astype(np.uint8)).save(
        buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB")).transpose(2, 0, 1)


def test_near_duplicate_photos_and_near_leakage_are_found(cats_dogs_64):
    from glassbox.data.images import load_images

    photos = load_images(cats_dogs_64 / "1000", "cat|dog")
    assert run_audit(photos).finding("near_duplicates").count == 0  # these 1,000 photos hold no copies
    copy = reencoded(photos.inputs[7])
    assert not np.array_equal(copy, photos.inputs[7])
    ex = Examples(kind="image", inputs=np.concatenate([photos.inputs, copy[None]]), labels=np.r_[photos.labels, photos.labels[7]],
                  classes=photos.classes, keys=photos.keys + ["planted copy"], lines=photos.lines + ["planted.jpg"])
    near = run_audit(ex).finding("near_duplicates")
    assert near.severity == "warning" and near.count == 1
    row = near.flagged.iloc[0]
    assert row["line"] == "planted.jpg" and row["near_row"] == 7 and row["correlation"] >= 0.98
    assert near.stats["labels_differ"] == 0 and row["near_label"] == row["label"]
    ex.labels = ex.labels.copy()
    ex.labels[-1] = 1 - ex.labels[-1]  # the copy labelled as the other class: one of the two is wrong
    near = run_audit(ex).finding("near_duplicates")
    assert near.stats["labels_differ"] == 1 and "likely mislabelled" in near.message
    ex.labels[-1] = 1 - ex.labels[-1]
    # The original in train and its near copy in test: near leakage, though no exact copy crosses.
    rest = np.setdiff1d(np.arange(len(photos)), [7])
    report = run_audit(ex, split={"train": np.r_[7, rest[:800]], "test": np.r_[rest[800:], len(photos)]})
    assert report.finding("leakage").count == 0
    leak = report.finding("near_leakage")
    assert leak.count == 1 and leak.flagged.iloc[0]["line"] == "planted.jpg" and leak.flagged.iloc[0]["other_row"] == 7


def test_different_handwritten_digits_are_not_near_duplicates():
    # Different people's digits can share a perceptual hash; the pixel correlation keeps them apart.
    from glassbox.data.builtin import load_builtin
    from glassbox.data.image_hash import candidate_pairs, perceptual_hashes

    digits = load_builtin("digits")
    candidates = len(candidate_pairs(perceptual_hashes(digits.inputs))[0])
    near = run_audit(digits).finding("near_duplicates")
    assert candidates > 20 and near.count <= 2, (candidates, near.count)


def test_folds_are_stratified_and_keep_copies_together(sms):
    folds = duplicate_aware_folds(sms.keys, sms.labels, k=5, seed=0)
    by_key = {}
    for key, f in zip(sms.keys, folds):
        assert by_key.setdefault(key, f) == f
    sizes = np.bincount(folds)
    spam = np.bincount(folds, weights=sms.labels) / sizes
    assert sizes.min() > 0.9 * len(sms) / 5 and np.ptp(spam) < 0.02


@pytest.fixture(scope="module")
def adult():
    if not ADULT.exists():
        pytest.skip(f"{ADULT} not found")
    return load_tabular(ADULT, label="income", columns=ADULT_COLUMNS, groups=["race"])


def test_tabular_checks_on_adult(adult):
    ex = adult.subset(np.arange(6000))
    report = run_audit(ex)
    missing = report.finding("missing_values")
    assert missing.count == sum(ex.inputs.apply(lambda c: c.str.strip() == "?").any(axis=1))
    assert missing.count > 0 and "occupation" in missing.message
    groups = report.finding("group_coverage")
    race = groups.stats["groups"]["race"]
    assert sum(v["count"] for v in race.values()) == 6000
    assert {g for g, v in race.items() if v["count"] < 30} == {s.split("'")[1] for s in groups.stats["small"]}
    # Near duplicate: a copy of row 0 whose fnlwgt moved by 1 (far under 0.01 standard deviations).
    edited = ex.inputs.iloc[[0]].copy()
    edited["fnlwgt"] = str(int(edited["fnlwgt"].iloc[0]) + 1)
    plus = Examples(kind="tabular", inputs=__import__("pandas").concat([ex.inputs, edited], ignore_index=True),
                    labels=np.r_[ex.labels, ex.labels[0]], classes=ex.classes,
                    keys=ex.keys + ["\x1f".join(edited.iloc[0])], lines=ex.lines + [99999])
    near = run_audit(plus).finding("near_duplicates")
    assert 6000 in near.flagged["row"].tolist()
    assert near.flagged.loc[near.flagged["row"] == 6000, "near_row"].item() == 0


def test_report_json_and_terminal_output(sms):
    split = split_indices(sms.keys, sms.labels, (0.8, 0.1, 0.1), seed=0)
    report = run_audit(sms, split=split, groups={"length": ["long" if len(t) > 100 else "short" for t in sms.inputs]})
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["n_examples"] == 5574 and data["errors"] == 0 and data["warnings"] >= 2
    dup = next(f for f in data["findings"] if f["name"] == "exact_duplicates")
    assert len(dup["flagged"]) == 415 and len(dup["worst"]) == 5 and dup["worst"][0]["line"] >= 1
    assert report.has_warnings and not report.has_errors
    out = io.StringIO()
    report.render(Console(file=out, width=120))
    text = out.getvalue()
    assert "Exact duplicates" in text and "5,159 distinct" in text and "Sorry, I'll call later" in text

import numpy as np

from glassbox.data.split import split_indices


def test_identical_examples_share_a_split_and_classes_are_stratified():
    rng = np.random.default_rng(1)
    keys = [f"x{rng.integers(0, 700)}" for _ in range(3000)]  # many repeats
    labels = np.array([int(k[1:]) % 3 for k in keys])  # identical examples, identical labels
    parts = split_indices(keys, labels, (0.8, 0.1, 0.1), seed=3)
    seen = {}
    for name, idx in parts.items():
        for i in idx:
            assert seen.setdefault(keys[i], name) == name
    assert sum(len(v) for v in parts.values()) == 3000
    share = {n: len(v) / 3000 for n, v in parts.items()}
    assert abs(share["train"] - 0.8) < 0.03 and abs(share["val"] - 0.1) < 0.03
    for c in range(3):  # every class reaches every split
        assert all((labels[idx] == c).any() for idx in parts.values())


def test_split_is_seeded():
    keys = [str(i) for i in range(500)]
    labels = np.arange(500) % 2
    a, b, c = (split_indices(keys, labels, seed=s) for s in (7, 7, 8))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["test"], c["test"])


def test_examples_that_are_all_the_same_say_why_they_cannot_be_split():
    import pytest

    from glassbox.errors import UserError

    with pytest.raises(UserError, match="hold only 1 distinct input"):
        split_indices(["same"] * 60, np.array([0, 1] * 30), (0.8, 0.1, 0.1), seed=0)

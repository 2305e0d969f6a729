"""Shared fixtures: the real data in ../shared/data, and small files made from it in a temp dir."""
from __future__ import annotations

import os
import tarfile
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the CLI does, before torch loads

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def shared(*parts) -> Path:
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data not found at {p}")
    return p


@pytest.fixture(scope="session", autouse=True)
def glassbox_cache_dir(tmp_path_factory) -> Path:
    """Every run measures this machine's matmul peak into peak.cache_dir(); the tests keep that cache in a
    temp dir, not the user's ~/.cache/glassbox. Set in os.environ, so processes the tests start inherit it."""
    path = tmp_path_factory.mktemp("glassbox_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GLASSBOX_CACHE_DIR", str(path))
        yield path


def subprocess_env(**extra: str) -> dict:
    """The environment for a glassbox process a test starts: this one's (the cache dir included), with this
    checkout importable from any working directory."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def one_thread_env() -> dict:
    """subprocess_env on one thread: two training processes share the 2 cores, or their thread pools thrash."""
    return subprocess_env(OMP_NUM_THREADS="1")


@pytest.fixture(scope="session")
def digits_csv(tmp_path_factory) -> Path:
    """The 1,797 real handwritten digits as a tabular CSV: 64 pixel columns and a label."""
    from sklearn.datasets import load_digits

    d = load_digits()
    path = tmp_path_factory.mktemp("digits") / "digits.csv"
    header = ",".join(f"p{i}" for i in range(64)) + ",digit"
    rows = [",".join(str(int(v)) for v in x) + f",{y}" for x, y in zip(d.data, d.target)]
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="session")
def cats_dogs_64(tmp_path_factory) -> Path:
    """The 64x64 cats-vs-dogs photos, unpacked from ../shared/data into a temp dir."""
    tar = shared("cats_dogs", "cdb_64x64_small.tar.gz")
    out = tmp_path_factory.mktemp("cats_dogs")
    with tarfile.open(tar) as t:
        t.extractall(out, filter="data")
    return out / "64x64"


TINY_LM_SEED = 5  # the tiny language model's seed, so a test can redraw its report samples


@pytest.fixture(scope="session")
def tiny_lm_run(tmp_path_factory) -> Path:
    """A tiny real GPT (a few seconds of training) on 60,000 characters of tinyshakespeare: its run folder."""
    from glassbox.cli import main

    folder = tmp_path_factory.mktemp("tiny_lm")
    corpus = folder / "shakespeare_60k.txt"
    corpus.write_text(shared("tinyshakespeare", "input.txt").read_text(encoding="utf-8")[:60_000], encoding="utf-8")
    out = folder / "r"
    assert main(["train", str(corpus), "--task", "lm", "--n-layer", "1", "--n-head", "2", "--n-embd", "32",
                 "--block-size", "32", "--batch-size", "16", "--max-steps", "30", "--seed", str(TINY_LM_SEED),
                 "--quiet", "--out", str(out)]) == 0
    return out


@pytest.fixture
def rng():
    return np.random.default_rng(0)

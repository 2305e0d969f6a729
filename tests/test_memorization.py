"""Memorisation checks: verbatim n-gram copies found exactly and fast; extraction tells a model
that memorised its training text from one that did not."""
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from glassbox.data.corpus import CharTokenizer, RandomWindows
from glassbox.evaluate.memorization import extraction, memorization_report, novelty, reproduces_training_text
from glassbox.models.gpt import GPT, GPTConfig
from glassbox.report.words.memorisation import summary

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SHAKESPEARE = DATA / "tinyshakespeare" / "input.txt"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run as fast on one thread, and two threads crawl when the cores are busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def shakespeare():
    if not SHAKESPEARE.exists():
        pytest.skip(f"{SHAKESPEARE} not found")
    return SHAKESPEARE.read_text()


def _shares(result):
    return {row["n"]: row["share"] for row in result["by_n"]}


def test_planted_copy_is_found_and_random_text_is_novel(shakespeare):
    planted = shakespeare[500_000:500_100]
    result = novelty([planted], shakespeare)  # against 1.1 MB of training text
    assert _shares(result) == {8: 1.0, 13: 1.0, 32: 1.0}
    assert result["examples"][0] == planted[:32]
    rng = random.Random(0)
    noise = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(1000)) for _ in range(5)]
    assert _shares(novelty(noise, shakespeare))[32] == 0.0
    half = novelty([noise[0][:500] + planted + noise[1][:500]], shakespeare)
    assert _shares(half)[32] == pytest.approx((100 - 32 + 1) / (1100 - 32 + 1), abs=0.01)
    json.dumps(result)


def test_novelty_equals_brute_force_sets():
    rng = random.Random(1)
    train = "".join(rng.choice("ab\n") for _ in range(3000))  # tiny alphabet: many real matches
    generated = ["".join(rng.choice("abc") for _ in range(200)) for _ in range(4)]
    result = novelty(generated, train, ns=(3, 6, 10))
    for row in result["by_n"]:
        n = row["n"]
        seen = {train[i:i + n] for i in range(len(train) - n + 1)}
        grams = [g[i:i + n] for g in generated for i in range(len(g) - n + 1)]
        assert row["ngrams"] == len(grams)
        assert row["copied"] == sum(gram in seen for gram in grams)


@pytest.fixture(scope="module")
def memorising_model(shakespeare):
    """A tiny GPT trained for 300 steps on only 1,500 characters: it learns them by heart."""
    torch.manual_seed(0)
    tok = CharTokenizer.train(shakespeare)
    train = np.array(tok.encode(shakespeare[:1500]), dtype=np.uint16)
    val = np.array(tok.encode(shakespeare[600_000:602_000]), dtype=np.uint16)
    model = GPT(GPTConfig(tok.vocab_size, block_size=32, n_layer=2, n_head=4, n_embd=64))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    batches = RandomWindows(train, 32, batch_size=32, seed=0)
    for _ in range(300):
        x, y = batches.next()
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model, tok, train, val


def test_extraction_shows_memorised_training_text(memorising_model):
    model, tok, train, val = memorising_model
    result = extraction(model, train, val, prefix_len=16, suffix_len=16, n_samples=64, tokenizer=tok)
    assert result["train"]["rate"] > 0.25
    assert result["val"]["rate"] < 0.05
    assert result["difference"] > 4 * result["difference_stderr"]
    example = result["examples"][0]
    assert example["split"] == "train" and (example["prefix"] + example["continuation"]) in tok.decode(train.tolist())
    json.dumps(result)


def test_extraction_on_an_untrained_model_shows_nothing(memorising_model):
    _, tok, train, val = memorising_model
    torch.manual_seed(0)
    fresh = GPT(GPTConfig(tok.vocab_size, block_size=32, n_layer=1, n_head=2, n_embd=32))
    result = extraction(fresh, train, val, prefix_len=16, suffix_len=16, n_samples=32)
    assert result["train"]["rate"] == result["val"]["rate"] == 0.0


def test_report_is_json_safe_and_says_what_it_found(memorising_model):
    model, tok, train, val = memorising_model
    report = memorization_report(model, tok, train, val, n_generations=4, generation_len=100,
                                 prefix_len=16, suffix_len=16, n_samples=64)
    json.dumps(report)
    assert "reproduces training text" in summary(report) and reproduces_training_text(report) is True
    assert report["novelty_of_held_out_text"]["by_n"][0]["ngrams"] == 4 * (100 - 8 + 1)

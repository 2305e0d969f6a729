"""The key/value cache (models/gpt.py KVCache): generation with it writes the text generation without it writes, token
for token, for every seed, temperature, top_k and prompt (one longer than the context too, so the window slides); its
logits stay within the bound its choices rely on; its draw is torch.multinomial's; and a cache whose logits stray
beyond the bound switches itself off rather than change a token."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from glassbox.infer.generator import Generator
from glassbox.models.gpt import CACHE_ERROR, GPT, GPTConfig, KVCache, choose, draw, sure
from glassbox.models.precision import native_bf16
from tests.conftest import shared

PRECISIONS = [False, True] if native_bf16(torch.device("cpu")) else [False]  # bfloat16 only where a run computes in it
SETTINGS = [(0.8, 50), (1.0, None), (0.0, None), (1e-3, None), (0.5, 3), (2.0, 5)]  # (temperature, top_k)


@pytest.fixture(scope="module")
def generator(tiny_lm_run):
    return Generator(tiny_lm_run / "model")


@pytest.fixture(scope="module")
def lines():
    """Prompts from tinyshakespeare: a character, a name, and 100 characters (past the tiny model's 32)."""
    text = shared("tinyshakespeare", "input.txt").read_text(encoding="utf-8")[-3000:]
    return ["\n", "ROMEO:", text[:100]]


@pytest.mark.parametrize("bf16", PRECISIONS)
def test_cached_text_is_the_uncached_text_token_for_token(generator, lines, bf16):
    g = generator
    g.model.config.bf16 = bf16
    try:
        texts, recomputed_before = [], g.recomputed
        for seed in range(3):
            for temperature, top_k in SETTINGS:
                for prompt in lines:
                    out = {}
                    for cache in (True, False):
                        g.cache = cache
                        out[cache] = g.samples(prompt, 1, 60, temperature=temperature, top_k=top_k, seed=seed)
                    assert out[True] == out[False], (seed, temperature, top_k, prompt)
                    texts += out[True] if temperature >= 0.5 else []
    finally:
        g.cache, g.model.config.bf16 = True, True
    assert len(set(texts)) > len(texts) * 0.9  # real draws, not one text again and again
    tokens = 3 * len(SETTINGS) * len(lines) * 60
    assert g.recomputed - recomputed_before < tokens * 0.1  # the full pass decided few of them


def default_size_model(bf16: bool) -> GPT:
    """`glassbox train --task lm`'s GPT (4 layers, width 128, 64 tokens of context), weights as spread as training leaves them."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=65, bf16=bf16)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


@pytest.mark.parametrize("bf16", PRECISIONS)
def test_a_steps_logits_are_well_within_the_bound_the_choices_rely_on(generator, bf16):
    for model in (generator.model, default_size_model(bf16)):
        model.config.bf16 = bf16
        block, worst = model.config.block_size, 0.0
        idx = torch.randint(model.config.vocab_size, (1, block + 8), generator=torch.Generator().manual_seed(1))
        cache = KVCache.for_model(model)
        with torch.inference_mode():
            for T in range(1, block + 9):
                context = idx[:, max(0, T - block):T]
                cached, step = model.cached_logits(context, cache)
                full = model(context)[:, -1, :]
                assert step == (1 < T <= block)  # a step for each token the window holds; past it, full passes
                worst = max(worst, float((cached - full).abs().max() / full.abs().max().clamp(min=1)))
        model.config.bf16 = True
        assert worst <= CACHE_ERROR[torch.bfloat16 if bf16 else torch.float32] / 2, worst


def test_choose_draws_what_torch_multinomial_draws():
    gen = torch.Generator().manual_seed(0)
    for trial in range(400):
        B, V = (1, 65) if trial % 2 else (3, 500)
        logits = torch.randn(B, V, generator=gen) * [0.1, 3.0, 30.0][trial % 3]
        temperature, top_k = [(1.0, None), (0.7, 10), (1e-4, None), (2.5, 1), (0.3, V + 5)][trial % 5]
        a, b = torch.Generator().manual_seed(trial), torch.Generator().manual_seed(trial)
        expected = draw(logits, temperature, top_k, a)
        noise = torch.empty(B, V).exponential_(1, generator=b)
        assert torch.equal(choose(logits, temperature, top_k, noise)[0], expected)
        assert torch.equal(a.get_state(), b.get_state())  # the same random numbers used: the streams go on alike
    assert torch.equal(choose(logits, 0.0, None, None)[0], draw(logits, 0.0, None, None))


def test_a_sure_choice_survives_every_move_within_the_bound_and_a_near_tie_is_not_sure():
    rng = np.random.default_rng(0)
    checked = unsure = 0
    for trial in range(300):
        V = 20
        logits = rng.normal(size=(1, V)) * 2
        logits[0, 0] = logits.max() + 1
        logits[0, 1] = logits[0, 0] - rng.choice([1e-6, 1e-3, 0.05, 0.5])  # a runner-up more or less close
        temperature, top_k = [(0.8, None), (1.0, 5), (0.0, None), (0.05, 3)][trial % 4]
        noise = None if temperature == 0 else rng.exponential(size=(1, V))
        t = lambda x: torch.tensor(x, dtype=torch.float32)  # noqa: E731
        chosen = choose(t(logits), temperature, top_k, None if noise is None else t(noise))[0]
        error = 1e-3
        if not sure(t(logits).double().numpy(), chosen.numpy()[:, 0], temperature, top_k, noise, error):
            unsure += 1
            continue
        for _ in range(20):  # any logits within error * max(1, |logit|) of these: the same token
            moved = logits + rng.uniform(-1, 1, size=logits.shape) * error * max(1.0, np.abs(logits).max())
            assert torch.equal(choose(t(moved), temperature, top_k, None if noise is None else t(noise))[0], chosen)
            checked += 1
    assert checked > 2000 and 40 < unsure < 200
    tie = torch.tensor([[2.0, 2.0, -1.0]])
    assert not choose(tie, 0.0, None, None, 1e-6)[1]  # a tie: any move decides it
    assert choose(torch.tensor([[2.0, 1.0, -1.0]]), 0.0, None, None, 1e-6)[1]


def test_a_cache_whose_logits_stray_switches_itself_off_and_the_text_stays(generator, monkeypatch):
    model = generator.model
    expected = generator.generate("ROMEO:", 40, temperature=0.8, seed=7)
    step = model._step
    monkeypatch.setattr(model, "_step", lambda idx, cache: step(idx, cache) + 0.5)  # a step gone wrong
    cache = KVCache.for_model(model)
    ids = torch.tensor([generator.tokenizer.encode("ROMEO:")])
    out = model.generate(ids, 40, temperature=0.8, generator=torch.Generator().manual_seed(7), cache=cache)
    assert generator.tokenizer.decode(out[0].tolist()) == expected
    assert cache.off and cache.checked and cache.recomputed == 1  # its first step was checked and found out

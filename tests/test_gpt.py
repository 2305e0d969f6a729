"""The GPT model: shapes, FLOP count against torch's counter, learning on real text, perplexity,
and seeded generation."""
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from glassbox.data.corpus import CharTokenizer, RandomWindows, split_text, val_windows
from glassbox.errors import UserError
from glassbox.models.gpt import GPT, GPTConfig

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SHAKESPEARE = DATA / "tinyshakespeare" / "input.txt"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run as fast on one thread, and two threads crawl when the cores are busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_shapes_weight_tying_and_param_count():
    cfg = GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=32)
    model = GPT(cfg)
    logits = model(torch.randint(50, (3, 10)))
    assert logits.shape == (3, 10, 50)
    assert model.lm_head.weight is model.transformer.wte.weight
    C, L, V, T = 32, 2, 50, 16
    per_block = 2 * 2 * C + (3 * C * C + 3 * C) + (C * C + C) + (4 * C * C + 4 * C) + (4 * C * C + C)
    assert model.num_params(non_embedding=False) == V * C + T * C + L * per_block + 2 * C
    assert model.num_params() == V * C + L * per_block + 2 * C
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(UserError, match=r"n_embd \(100\) must be a multiple of n_head \(3\); e.g. n_embd=99"):
        GPTConfig(vocab_size=50, n_embd=100, n_head=3)


def test_residual_projections_get_scaled_init():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50, n_layer=8, n_embd=256, n_head=4))
    proj = model.transformer.h[0].mlp.c_proj.weight.std().item()
    fc = model.transformer.h[0].mlp.c_fc.weight.std().item()
    assert fc == pytest.approx(0.02, rel=0.05)
    assert proj == pytest.approx(0.02 / math.sqrt(16), rel=0.05)


@pytest.mark.parametrize("cfg", [GPTConfig(65), GPTConfig(500, block_size=128, n_layer=2, n_head=2, n_embd=64)])
def test_flops_per_token_matches_torch_flop_counter(cfg):
    model = GPT(cfg)
    x = torch.randint(cfg.vocab_size, (2, cfg.block_size))
    # The math backend spells attention out as matmuls, so the counter sees them.
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x).flatten(0, 1), x.flatten()).backward()
    counted = counter.get_total_flops() / x.numel()
    # The estimate also counts biases and LayerNorms as 6 FLOPs per parameter: within 2%.
    assert model.flops_per_token() == pytest.approx(counted, rel=0.02)


@pytest.fixture(scope="module")
def trained():
    """A small char-level GPT trained for 250 steps on the first 300k characters of tinyshakespeare."""
    if not SHAKESPEARE.exists():
        pytest.skip(f"{SHAKESPEARE} not found")
    torch.manual_seed(0)
    train_text, val_text = split_text(SHAKESPEARE.read_text()[:300_000])
    tok = CharTokenizer.train(train_text)
    train = np.array(tok.encode(train_text), dtype=np.uint16)
    val = np.array(tok.encode(val_text, unknown="drop"), dtype=np.uint16)
    cfg = GPTConfig(tok.vocab_size, block_size=32, n_layer=2, n_head=4, n_embd=64)
    model = GPT(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    batches = RandomWindows(train, cfg.block_size, batch_size=32, seed=0)
    for _ in range(250):
        x, y = batches.next()
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    X, Y = val_windows(val, cfg.block_size, max_windows=200)
    return model, tok, X, Y


def test_training_learns_shakespeare(trained):
    model, tok, X, Y = trained
    with torch.no_grad():
        val_loss = F.cross_entropy(model(X).flatten(0, 1), Y.flatten()).item()
    chance = math.log(tok.vocab_size)  # a model that knows nothing: uniform over the vocabulary
    assert val_loss < 0.75 * chance, (val_loss, chance)


def test_perplexity_is_exp_of_mean_token_loss(trained):
    model, tok, X, Y = trained
    with torch.no_grad():
        logits = model(X)
    perplexity = math.exp(F.cross_entropy(logits.flatten(0, 1), Y.flatten()).item())
    # Independently: -log softmax of each target token, in float64, summed one token at a time.
    z = logits.double().numpy()
    total, count = 0.0, 0
    for i in range(z.shape[0]):
        for t in range(z.shape[1]):
            row = z[i, t]
            log_norm = row.max() + math.log(np.exp(row - row.max()).sum())
            total += log_norm - row[Y[i, t]]
            count += 1
    assert perplexity == pytest.approx(math.exp(total / count), rel=1e-4)


def test_generation_is_seeded_and_greedy_is_argmax(trained):
    model, tok, _, _ = trained
    prompt = torch.tensor([tok.encode("ROMEO:\n")])

    def sample(seed, **kw):
        out = model.generate(prompt, 60, generator=torch.Generator().manual_seed(seed), **kw)
        return tok.decode(out[0, prompt.shape[1]:].tolist())

    assert sample(1) == sample(1)
    assert sample(1) != sample(2)
    assert sample(1, top_k=5) == sample(1, top_k=5)
    greedy = model.generate(prompt, 5, temperature=0)
    idx = prompt
    for _ in range(5):
        idx = torch.cat([idx, model(idx)[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(greedy, idx)


def test_generate_crops_long_prompts_and_restores_training_mode():
    model = GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=16, dropout=0.1))
    model.train()
    out = model.generate(torch.randint(20, (2, 30)), 5, temperature=0)
    assert out.shape == (2, 35)
    assert model.training


def test_bf16_compute_on_cpu_matches_fp32():
    from glassbox.models.precision import native_bf16

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50, block_size=32, n_layer=2, n_head=4, n_embd=64))
    low_model = GPT(GPTConfig(vocab_size=50, block_size=32, n_layer=2, n_head=4, n_embd=64, bf16=True))
    low_model.load_state_dict(model.state_dict())
    x = torch.randint(50, (4, 32))
    low = low_model(x)
    assert low.dtype == torch.float32  # logits come back in float32 whatever the compute precision
    F.cross_entropy(low.flatten(0, 1), x.flatten()).backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all()
               for p in low_model.parameters())
    if native_bf16(torch.device("cpu")):
        assert low_model.compute_dtype("cpu") == torch.bfloat16
        assert not torch.equal(low, model(x)) and torch.allclose(low, model(x), atol=0.05)
    else:
        assert torch.equal(low, model(x))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_written_out_causal_attention_matches_pytorchs(dtype):
    """The bf16 CPU path (models/gpt.py: causal_attention_cpu_bf16) against torch's scaled_dot_product_attention,
    forward and backward, at every prefix length generation uses."""
    from glassbox.models.gpt import causal_attention_cpu_bf16

    torch.manual_seed(0)
    for T in (1, 7, 32):
        q, k, v = (torch.randn(3, 4, T, 16, dtype=dtype, requires_grad=True) for _ in range(3))
        ours = causal_attention_cpu_bf16(q, k, v, 0.0)
        ours.float().square().sum().backward()
        mine = [t.grad.clone() for t in (q, k, v)]
        for t in (q, k, v):
            t.grad = None
        ref = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True)
        ref.square().sum().backward()
        tol = 1e-5 if dtype == torch.float32 else 3e-2
        assert ours.dtype == dtype and torch.allclose(ours.float(), ref, atol=tol, rtol=tol)
        assert all(torch.allclose(a.float(), b.float(), atol=tol * 4, rtol=tol * 4) for a, b in zip(mine, (q.grad, k.grad, v.grad)))
    # dropout on the attention weights is the training run's: a seeded draw, and none in eval mode
    x = torch.randn(2, 4, 8, 16)
    torch.manual_seed(1)
    a = causal_attention_cpu_bf16(x, x, x, 0.5)
    torch.manual_seed(1)
    assert torch.equal(a, causal_attention_cpu_bf16(x, x, x, 0.5)) and not torch.allclose(a, causal_attention_cpu_bf16(x, x, x, 0.0))

"""A small decoder-only Transformer (GPT), in the style of nanoGPT's model.py.

    logits = model(idx)            # idx (B, T) int64 token ids -> logits (B, T, vocab_size)

The training loop computes the loss (cross-entropy of logits against the next tokens);
`generate` samples text one token at a time: each token from a forward pass over its whole context, or, with a
`KVCache`, from the new token's pass alone (`step`), its query attending to the keys and values the cache kept.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
from torch.nn import functional as F

from glassbox.errors import UserError
from glassbox.models.precision import at_least_float32, autocast, compute_dtype


@dataclass
class GPTConfig:
    vocab_size: int  # number of distinct tokens (from the tokenizer)
    block_size: int = 64  # longest context the model sees, in tokens
    n_layer: int = 4  # number of Transformer blocks
    n_head: int = 4  # attention heads per block; n_embd must divide by it
    n_embd: int = 128  # width of every token's vector
    dropout: float = 0.0  # dropout rate during training; 0.0 turns it off
    bias: bool = True  # biases in Linear layers and LayerNorms, like GPT-2
    bf16: bool = False  # compute in bfloat16 (autocast) where the hardware does it natively, else float32

    def __post_init__(self):
        if self.n_embd % self.n_head != 0:
            raise UserError(
                f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head}); "
                f"e.g. n_embd={self.n_head * max(1, round(self.n_embd / self.n_head))}"
            )


def causal_attention_cpu_bf16(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout: float) -> torch.Tensor:
    """Causal attention written out, as nanoGPT does without flash attention: softmax(q k^T / sqrt(hs) + mask) v.

    On CPU in bf16 (autocast) PyTorch's fused flash-attention kernel is about 2.5x slower than its plain math path
    (measured fwd + bwd at B=12, nh=4, T=64, hs=32: 6.0 ms vs 2.3 ms), and the math path checks every row for being
    fully masked (isneginf, all, where), which a causal mask never leaves: these four lines made a training step of
    the default language model faster than the math path on one thread (42.3 vs 52.1 ms and 39.1 vs 44.7 ms a step
    in two paired runs on a shared machine; docs/benchmarks.md)."""
    T, hs = q.size(-2), q.size(-1)
    scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))  # (B, nh, T, T)
    future = torch.ones(T, T, dtype=torch.bool, device=q.device).triu(1)  # position j > i is not seen from i
    weights = F.dropout(scores.masked_fill(future, float("-inf")).softmax(dim=-1), dropout)
    return weights @ v  # (B, nh, T, hs)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v at once
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor, kv: "LayerCache | None" = None) -> torch.Tensor:
        """x (B, T, C) -> (B, T, C); kv: a cache layer that keeps these positions' keys and values."""
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)  # each (B, T, C)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        if kv is not None:
            kv.fill(k, v)
        dropout = self.dropout if self.training else 0.0
        if q.device.type == "cpu" and q.dtype == torch.bfloat16:
            y = causal_attention_cpu_bf16(q, k, v, dropout)
        else:  # PyTorch picks its fastest kernel (flash attention on a GPU)
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C): heads side by side again
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-norm block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, kv: "LayerCache | None" = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), kv)
        x = x + self.mlp(self.ln_2(x))
        return x

    def step_weights(self, dtype: torch.dtype) -> tuple:
        """What `step` reads: this block's weights, each matmul's cast to the precision it computes in (bfloat16 under
        autocast, which would otherwise cast them again at every call: the same values)."""
        a, m = self.attn, self.mlp
        c = lambda t: None if t is None else t.to(dtype)  # noqa: E731
        return (self.ln_1, c(a.c_attn.weight), c(a.c_attn.bias), c(a.c_proj.weight), c(a.c_proj.bias), self.ln_2,
                c(m.c_fc.weight), c(m.c_fc.bias), c(m.c_proj.weight), c(m.c_proj.bias), a.n_head, m.gelu.approximate)

    @staticmethod
    def step(x: torch.Tensor, kv: "LayerCache", w: tuple) -> torch.Tensor:
        """forward for one new position, x (B, 1, C), in eval mode (under autocast where the model computes in
        bfloat16), with step_weights' w: its query attends to the cached keys and values and its own, which join
        them. The same operations written out on one row, a module call costing more than its work there
        (tests/test_kv_cache.py holds the two together)."""
        ln_1, attn_w, attn_b, proj_w, proj_b, ln_2, fc_w, fc_b, out_w, out_b, n_head, approximate = w
        B, _, C = x.shape
        qkv = F.linear(_norm(ln_1, x), attn_w, attn_b).view(B, 3, n_head, 1, C // n_head)  # (B, 3, nh, 1, hs)
        k, v = kv.add(qkv[:, 1:])  # (B, nh, n, hs): every position so far
        q = qkv[:, 0]  # (B, nh, 1, hs)
        if q.device.type == "cpu" and q.dtype == torch.bfloat16:  # as forward computes it; one query row: no mask
            y = causal_attention_cpu_bf16(q, k, v, 0.0)
        else:
            y = F.scaled_dot_product_attention(q, k, v)  # one query row: nothing to mask
        x = x + F.linear(y.reshape(B, 1, C), proj_w, proj_b)  # one position: its heads already lie side by side
        h = F.gelu(F.linear(_norm(ln_2, x), fc_w, fc_b), approximate=approximate)
        return x + F.linear(h, out_w, out_b)


def _norm(layer: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, layer.normalized_shape, layer.weight, layer.bias, layer.eps)


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),  # token embedding
                wpe=nn.Embedding(config.block_size, config.n_embd),  # position embedding
                drop=nn.Dropout(config.dropout),
                h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
                ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
            )
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # Weight tying: the embedding and the output layer share one matrix (fewer parameters,
        # and a token's input and output vectors are the same thing).
        self.transformer.wte.weight = self.lm_head.weight
        self.apply(self._init_weights)
        # GPT-2 init: residual projections scaled by 1/sqrt(2 * n_layer), so the residual
        # stream's variance does not grow with depth (each block adds two projections).
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"sequence of length {T} is longer than block_size {self.config.block_size}")
        with autocast(self.config.bf16, idx.device):
            return at_least_float32(self._logits(idx, T))  # (B, T, vocab_size), float32 whatever the compute precision

    def compute_dtype(self, device: torch.device) -> torch.dtype:
        """The precision the layers compute in on `device`."""
        return compute_dtype(self.config.bf16, torch.device(device))

    def _logits(self, idx: torch.Tensor, T: int, cache: "KVCache | None" = None) -> torch.Tensor:
        """cache: one to fill with every layer's keys and values of idx's positions (as generation starts)."""
        pos = torch.arange(T, dtype=torch.long, device=idx.device)  # (T,)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))  # (B, T, C)
        for i, block in enumerate(self.transformer.h):
            x = block(x, None if cache is None else cache.layers[i])
        x = self.transformer.ln_f(x)
        return self.lm_head(x)  # (B, T, vocab_size)

    def _step(self, idx: torch.Tensor, cache: "KVCache") -> torch.Tensor:
        """The logits (B, 1, vocab_size) after one more token, idx (B, 1), at position cache.n (eval mode)."""
        dtype = self.compute_dtype(idx.device)
        if cache.weights is None or cache.weights[0] != dtype:  # once a text: the weights do not change while it is drawn
            cache.weights = (dtype, [b.step_weights(dtype) for b in self.transformer.h], self.lm_head.weight.to(dtype))
        _, blocks, head = cache.weights
        x = F.embedding(idx, self.transformer.wte.weight) + self.transformer.wpe.weight[cache.n]  # (B, 1, C)
        with autocast(self.config.bf16, idx.device):
            for w, kv in zip(blocks, cache.layers):
                x = Block.step(x, kv, w)
            return F.linear(_norm(self.transformer.ln_f, x), head)

    def num_params(self, non_embedding: bool = True) -> int:
        """Number of parameters. With non_embedding=True the position embedding is left out
        (the token embedding is counted once: it is the LM head's weight, which does compute)."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.transformer.wpe.weight.numel()
        return n

    def flops_per_token(self, seq_len: int | None = None) -> int:
        """Training FLOPs per token (forward + backward), the PaLM-paper estimate:

            6 * N + 12 * L * H * Q * T   (with H * Q = n_embd, so 6N + 12 * L * C * T)

        N = non-embedding parameters (each multiply-add is 2 FLOPs forward, 4 backward),
        the second term = attention scores and the weighted sum over T = seq_len positions
        (block_size by default). Causal masking halves the true attention work; like PaLM and
        nanoGPT's estimate_mfu we count the full square. Multiply by 1/3 for inference only.
        """
        cfg = self.config
        T = cfg.block_size if seq_len is None else seq_len
        return 6 * self.num_params() + 12 * cfg.n_layer * cfg.n_embd * T

    @torch.inference_mode()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
        cache: "KVCache | None" = None,
    ) -> torch.Tensor:
        """Continue each row of idx (B, T) by max_new_tokens tokens; returns (B, T + max_new_tokens).

        temperature 0 picks the most likely token (greedy); top_k keeps only the k most likely.
        Pass a seeded torch.Generator for text that repeats exactly from run to run.
        cache: a KVCache, kept across calls that continue the same text: the same tokens for fewer FLOPs
        (`cached_token`). Puts the model in eval mode (no dropout) and restores the previous mode afterwards.
        """
        was_training = self.training
        self.eval()
        pick = greedy(temperature, torch.float64 if self.lm_head.weight.dtype == torch.float64 else torch.float32)
        for _ in range(max_new_tokens):
            idx_cond = idx[:, -self.config.block_size :]  # the model only sees block_size tokens
            if cache is None:
                idx_next = draw(self(idx_cond)[:, -1, :], temperature, top_k, generator)  # (B, 1)
            else:
                idx_next = self.cached_token(idx_cond, cache, 0.0 if pick else temperature, top_k, generator)
            idx = torch.cat((idx, idx_next), dim=1)
        self.train(was_training)
        return idx

    def cached_token(self, idx: torch.Tensor, cache: "KVCache", temperature: float, top_k: int | None,
                     generator: torch.Generator | None) -> torch.Tensor:
        """draw(self(idx)[:, -1], ...)'s token (B, 1) after idx (B, T <= block_size), with the cache (eval mode, under
        inference_mode; temperature 0.0 for the likeliest token). A cached step's logits differ from the full pass's in
        the last bits (`cached_logits`), so where the choice is close enough for that to change it (CACHE_ERROR), the
        full pass decides, with the same random numbers. That bound is checked whenever both are at hand: at the cache's
        first step and at each token the full pass decides; beyond it, the cache is no longer used (cache.off)."""
        logits, step = self.cached_logits(idx, cache)
        noise = None if temperature == 0.0 else torch.empty(logits.shape, dtype=logits.dtype, device=logits.device
                                                             ).exponential_(1, generator=generator)
        error = CACHE_ERROR[self.compute_dtype(idx.device)] if step else 0.0
        idx_next, sure = choose(logits, temperature, top_k, noise, error)
        if step and not (sure and cache.checked):
            full = self(idx)[:, -1, :]
            cache.checked, cache.off = True, not within(logits, full, error)
            if not sure or cache.off:
                idx_next, _ = choose(full, temperature, top_k, noise)
                cache.recomputed += 1
        return idx_next

    def cached_logits(self, idx: torch.Tensor, cache: "KVCache") -> tuple[torch.Tensor, bool]:
        """The logits (B, V) after idx (B, T <= block_size), and whether they come from a cached step (eval mode, under
        inference_mode).

        When idx is the cached context and one token more, only that token goes through the layers (`_step`): its
        logits differ from self(idx)[:, -1]'s in the last bits, as the kernels sum in another order. Otherwise (a new
        prompt, a window that slid) they are self(idx)[:, -1]'s, and the pass fills the cache. A learned position
        embedding moves every token's keys and values when the window slides, so past block_size tokens each token
        costs a full pass, as without a cache."""
        B, T = idx.shape
        step = not cache.off and cache.continues(idx)
        if step:
            logits = self._step(idx[:, -1:], cache)
        elif T == self.config.block_size or cache.off:  # the next token slides the window: nothing worth keeping
            cache.tokens = None
            return self(idx)[:, -1, :], False
        else:
            with autocast(self.config.bf16, idx.device):
                logits = self._logits(idx, T, cache)
        cache.tokens = idx
        return at_least_float32(logits)[:, -1, :], step


def within(logits: torch.Tensor, full: torch.Tensor, error: float) -> bool:
    """Are a cached step's logits within error * max(1, the largest |logit|) of the full pass's?"""
    return bool(((logits - full).abs().amax() <= error * max(1.0, float(full.abs().amax()))).item())


def greedy(temperature: float, dtype: torch.dtype) -> bool:
    """Temperature 0, or too small to tell from 0 in the logits' precision: the likeliest token."""
    return bool(torch.tensor(temperature, dtype=dtype) == 0)


def draw(logits: torch.Tensor, temperature: float, top_k: int | None, generator: torch.Generator | None) -> torch.Tensor:
    """The next token (B, 1) after logits (B, V): the likeliest at temperature 0, else one drawn from their softmax
    over temperature among the top_k likeliest."""
    if greedy(temperature, logits.dtype):
        return logits.argmax(dim=-1, keepdim=True)
    # best score first set to 0, so a tiny temperature sends the others to -inf, not inf - inf
    logits = (logits - logits.amax(dim=-1, keepdim=True)) / temperature
    if top_k is not None:
        v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
        logits[logits < v[:, [-1]]] = -float("inf")
    probs = F.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)


def choose(logits: torch.Tensor, temperature: float, top_k: int | None, noise: torch.Tensor | None,
           error: float = 0.0) -> tuple[torch.Tensor, bool]:
    """`draw`'s token (B, 1) from logits (B, V), given the random numbers torch.multinomial draws for one sample:
    noise (B, V) ~ Exp(1), of which it takes argmax(probs / noise) (aten/src/ATen/native/Distributions.cpp;
    tests/test_kv_cache.py checks that the two agree); noise None at temperature 0. And whether the token is sure: the
    same for any logits within error * max(1, the largest |logit|) of these, each either way. A quick look first (the
    winner's lead, the gap at the top-k cut); where that cannot tell, `sure` works it out."""
    V = logits.size(-1)
    if noise is None:
        idx_next = logits.argmax(dim=-1, keepdim=True)
        if error == 0.0 or V < 2:
            return idx_next, True
        top = torch.topk(logits, 2).values  # (B, 2)
        reach = 2 * error * max(1.0, float(logits.abs().amax()))
        return idx_next, bool((top[:, 0] - top[:, 1] > reach).all())
    z = (logits - logits.amax(dim=-1, keepdim=True)) / temperature  # draw's scores (best first set to 0)
    cut = None
    if top_k is not None:
        cut = torch.topk(z, min(top_k + 1, V)).values  # (B, k + 1): the k-th is draw's cut, the last the first left out
        z = z.masked_fill(z < cut[:, min(top_k, V) - 1 : min(top_k, V)], float("-inf"))
    ratio = F.softmax(z, dim=-1) / noise  # (B, V): probs / noise
    idx_next = ratio.argmax(dim=-1, keepdim=True)  # (B, 1)
    if error == 0.0 or V < 2:
        return idx_next, True
    reach = 2 * error * max(1.0, float(logits.abs().amax())) / temperature  # the most a score difference can move
    top = torch.topk(ratio, 2).values.log()  # (B, 2): the winner's log(probs / noise) and the runner-up's
    gap = cut[:, -2] - cut[:, -1] if cut is not None and top_k < V else torch.full_like(top[:, 0], float("inf"))
    quick = (top[:, 0] - top[:, 1] > reach + 1e-5 * (1 + top.abs().sum(dim=-1))) & (gap > reach)
    if bool(quick.all()):  # no token such logits could keep or cut changes the winner
        return idx_next, True
    as_float64 = lambda t: t.cpu().numpy().astype(np.float64)  # noqa: E731
    return idx_next, sure(as_float64(logits), idx_next.cpu().numpy()[:, 0], temperature, top_k, as_float64(noise), error)


def sure(logits: np.ndarray, chosen: np.ndarray, temperature: float, top_k: int | None, noise: np.ndarray | None,
         error: float) -> bool:
    """Would every row's chosen token stay the same for any logits within error * max(1, the largest |logit|) of
    these (B, V), each either way? In float64, with float32's rounding of the draw allowed for (1e-5 of the scores,
    plenty): the token must lead every other one such logits could keep by more than they can move the difference."""
    rows = np.arange(len(chosen))
    reach = 2 * error * max(1.0, float(np.abs(logits).max()))  # the most a difference of two logits can move
    if noise is None:  # the likeliest token: it must lead the runner-up by more than that
        lead = logits[rows, chosen] - np.partition(logits, -2, axis=-1)[:, -2]
        return bool((lead > reach).all())
    reach /= temperature  # in score units
    z = (logits - logits.max(axis=-1, keepdims=True)) / temperature
    ratio = z - np.log(noise)  # log(probs / noise), up to a constant shared by a row's tokens
    ok = np.ones(len(chosen), dtype=bool)
    V = logits.shape[-1]
    if top_k is not None and top_k < V:
        kth, first_out = (np.partition(z, [V - top_k - 1, V - top_k], axis=-1)[:, [V - top_k, V - top_k - 1]]).T
        ratio = np.where(z < kth[:, None] - reach, -np.inf, ratio)  # out of the top k whatever the logits do
        ok &= z[rows, chosen] - first_out > reach  # and the chosen token stays in it
    winner = ratio[rows, chosen].copy()
    ratio[rows, chosen] = -np.inf
    runner_up = ratio.max(axis=-1)
    ok &= winner - runner_up > reach + 1e-5 * (1 + np.abs(winner) + np.abs(np.where(np.isfinite(runner_up), runner_up, 0)))
    return bool(ok.all())


# How far a cached step's logits may be from the full pass's, as a share of the largest logit (or of 1). Measured on an
# AMD EPYC with AVX-512 BF16, random tokens through every context length, weights spread as a trained model's (the
# default size is in tests/test_kv_cache.py): float32 1.1e-6 at the default size, 4.1e-6 with 6 layers of width 384 and
# 256 tokens of context; bfloat16, which rounds a logit to 8 significant bits, 0 (the same bits) at the default size
# and 3.5 rounding steps of 2^-8 in the larger model. The bounds are about 10x and 2.3x those.
CACHE_ERROR = {torch.float32: 4e-5, torch.float64: 1e-13, torch.bfloat16: 2.0**-5}


@dataclass
class LayerCache:
    """One layer's keys and values, kv (B, 2, nh, block_size, hs), filled at the cache's first n positions."""
    cache: "KVCache"
    kv: torch.Tensor | None = None

    def fill(self, k: torch.Tensor, v: torch.Tensor) -> None:
        """Keep the keys and values (B, nh, T, hs) of a context's first pass."""
        B, nh, T, hs = k.shape
        self.kv = k.new_empty(B, 2, nh, self.cache.block_size, hs)
        self.kv[:, 0, :, :T], self.kv[:, 1, :, :T] = k, v

    def add(self, kv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keep one more position's keys and values, kv (B, 2, nh, 1, hs); return those of every position held."""
        n = self.cache.n
        self.kv[:, :, :, n : n + 1] = kv
        return self.kv[:, 0, :, : n + 1], self.kv[:, 1, :, : n + 1]


@dataclass
class KVCache:
    """Every layer's keys and values for `tokens` (B, n), the context GPT.cached_logits read last. recomputed: the
    tokens a full pass chose (the cached logits' choice too close to call); checked: a step's logits were compared
    with the full pass's; off: they differed by more than CACHE_ERROR, and every token now comes from a full pass."""
    n_layer: int
    block_size: int
    tokens: torch.Tensor | None = None
    recomputed: int = 0
    checked: bool = False
    off: bool = False
    weights: tuple | None = None  # (dtype, each Block.step_weights, the head's): what a step reads, made once a text
    layers: list = field(default_factory=list)

    def __post_init__(self):
        self.layers = [LayerCache(self) for _ in range(self.n_layer)]

    @classmethod
    def for_model(cls, model: GPT) -> "KVCache":
        return cls(model.config.n_layer, model.config.block_size)

    @property
    def n(self) -> int:
        """Positions held (the step's new token is at position n, before it joins)."""
        return 0 if self.tokens is None else self.tokens.size(1)

    def continues(self, idx: torch.Tensor) -> bool:
        """Is idx (B, T) the context held and one token more?"""
        held = self.tokens
        return held is not None and idx.shape == (held.size(0), held.size(1) + 1) and torch.equal(held, idx[:, :-1])


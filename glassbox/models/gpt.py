"""A small decoder-only Transformer (GPT), in the style of nanoGPT's model.py.

    logits = model(idx)            # idx (B, T) int64 token ids -> logits (B, T, vocab_size)

The training loop computes the loss (cross-entropy of logits against the next tokens);
`generate` samples text one token at a time.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)  # each (B, T, C)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x


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

    def _logits(self, idx: torch.Tensor, T: int) -> torch.Tensor:
        pos = torch.arange(T, dtype=torch.long, device=idx.device)  # (T,)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))  # (B, T, C)
        for block in self.transformer.h:
            x = block(x)
        x = self.transformer.ln_f(x)
        return self.lm_head(x)  # (B, T, vocab_size)

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
    ) -> torch.Tensor:
        """Continue each row of idx (B, T) by max_new_tokens tokens; returns (B, T + max_new_tokens).

        temperature 0 picks the most likely token (greedy); top_k keeps only the k most likely.
        Pass a seeded torch.Generator for text that repeats exactly from run to run.
        Puts the model in eval mode (no dropout) and restores the previous mode afterwards.
        """
        was_training = self.training
        self.eval()
        for _ in range(max_new_tokens):
            idx_cond = idx[:, -self.config.block_size :]  # the model only sees block_size tokens
            logits = self(idx_cond)[:, -1, :]  # (B, V): scores for the next token
            if torch.tensor(temperature, dtype=logits.dtype) == 0:  # 0, or too small to tell from 0: greedy
                idx_next = logits.argmax(dim=-1, keepdim=True)  # (B, 1)
            else:
                # best score first set to 0, so a tiny temperature sends the others to -inf, not inf - inf
                logits = (logits - logits.amax(dim=-1, keepdim=True)) / temperature
                if top_k is not None:
                    v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                    logits[logits < v[:, [-1]]] = -float("inf")
                probs = F.softmax(logits, dim=-1)
                idx_next = torch.multinomial(probs, num_samples=1, generator=generator)  # (B, 1)
            idx = torch.cat((idx, idx_next), dim=1)
        self.train(was_training)
        return idx

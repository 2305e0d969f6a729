"""A small Transformer encoder that classifies a text from its subword ids.

    logits = model(ids)   # ids (B, T) int64 from BPEEncoder, 0 = padding, ids[:, 0] = [CLS] -> (B, n_classes)

Token + learned position embeddings, a few pre-norm encoder layers that ignore padding, then the
mean of the non-padding outputs (or the [CLS] output) into a linear head.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass
class TextTransformerConfig:
    vocab_size: int  # number of subwords (BPEEncoder.vocab_size); id 0 is padding
    n_classes: int  # number of output classes
    max_len: int = 128  # longest text in tokens, [CLS] included (BPEEncoder.max_len)
    n_layer: int = 2  # number of encoder layers
    n_head: int = 4  # attention heads per layer; n_embd must divide by it
    n_embd: int = 128  # width of every token's vector
    dropout: float = 0.1  # dropout rate during training; 0.0 turns it off
    pooling: str = "mean"  # "mean": average the non-padding outputs; "cls": the first token's output

    def __post_init__(self):
        if self.n_embd % self.n_head != 0:
            raise ValueError(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")
        if self.pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls'. Got {self.pooling!r} instead.")


class TextTransformer(nn.Module):
    def __init__(self, config: TextTransformerConfig):
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.n_embd, padding_idx=0)
        self.pos_emb = nn.Embedding(config.max_len, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        layer = nn.TransformerEncoderLayer(
            config.n_embd, config.n_head, dim_feedforward=4 * config.n_embd, dropout=config.dropout,
            activation="gelu", batch_first=True, norm_first=True)
        # enable_nested_tensor=False: the nested fast path does not apply to pre-norm layers anyway.
        self.encoder = nn.TransformerEncoder(layer, config.n_layer, enable_nested_tensor=False)
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.head = nn.Linear(config.n_embd, config.n_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.shape[1] > self.config.max_len:
            raise ValueError(f"ids are {ids.shape[1]} tokens long; this model takes at most max_len={self.config.max_len}")
        # Padding is trailing and a batch is padded to its longest text: drop the columns that are padding in
        # every row. The outputs do not change (padding is masked in attention and left out of the pooling),
        # and short texts stop paying for the longest: SMS batches shrink from 96 columns to about 40.
        ids = ids[:, :max(1, int((ids != 0).sum(dim=1).max()))]
        B, T = ids.shape
        pad = ids == 0  # (B, T): True where attention must not look
        pos = torch.arange(T, device=ids.device)
        x = self.drop(self.tok_emb(ids) + self.pos_emb(pos))  # (B, T, n_embd)
        x = self.ln_f(self.encoder(x, src_key_padding_mask=pad))  # (B, T, n_embd)
        if self.config.pooling == "cls":
            pooled = x[:, 0]  # (B, n_embd)
        else:
            keep = (~pad).unsqueeze(-1).to(x.dtype)  # (B, T, 1)
            pooled = (x * keep).sum(1) / keep.sum(1).clamp(min=1.0)  # (B, n_embd)
        return self.head(pooled)  # (B, n_classes)

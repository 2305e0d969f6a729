"""fastText-style classifier: average the embeddings of a text's hashed n-grams, then a small head.

    logits = model(ids)   # ids (B, L) int64 from HashedNgramEncoder, 0 = padding -> logits (B, n_classes)

Fast and strong on short texts (Joulin et al. 2016, "Bag of Tricks for Efficient Text Classification").
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass
class FastTextConfig:
    vocab_size: int  # number of hash buckets (HashedNgramEncoder.buckets); id 0 is padding
    n_classes: int  # number of output classes
    dim: int = 64  # width of each n-gram's embedding
    hidden: int = 0  # width of a hidden ReLU layer between the average and the head; 0 = linear head
    dropout: float = 0.0  # dropout on the averaged vector during training; 0.0 turns it off
    input_dropout: float = 0.0  # share of a text's n-gram ids dropped at random while training


class FastText(nn.Module):
    def __init__(self, config: FastTextConfig):
        super().__init__()
        self.config = config
        # mode="mean" with padding_idx: padding ids are left out of the average (and get no gradient).
        self.embed = nn.EmbeddingBag(config.vocab_size, config.dim, mode="mean", padding_idx=0)
        nn.init.uniform_(self.embed.weight, -1.0 / config.dim, 1.0 / config.dim)  # as fastText does
        with torch.no_grad():
            self.embed.weight[0].zero_()
        self.drop = nn.Dropout(config.dropout)
        width = config.hidden or config.dim
        self.hidden = nn.Sequential(nn.Linear(config.dim, width), nn.ReLU()) if config.hidden else nn.Identity()
        self.head = nn.Linear(width, config.n_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self.training and self.config.input_dropout > 0:
            # Dropping whole n-grams (to padding) keeps the model from leaning on a few telltale ones.
            ids = ids.masked_fill(torch.rand(ids.shape, device=ids.device) < self.config.input_dropout, 0)
        x = self.embed(ids)  # (B, dim): mean over the non-padding ids of each row; all-padding rows give 0
        return self.head(self.hidden(self.drop(x)))  # (B, n_classes)

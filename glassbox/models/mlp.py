"""A multi-layer perceptron for tabular rows: numeric columns as they are, categorical codes embedded."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn


@dataclass
class MLPConfig:
    n_numeric: int                 # standardised numeric inputs (first columns of the input)
    n_classes: int                 # output classes
    cardinalities: list[int] = field(default_factory=list)  # categories per categorical column (+1 for unseen)
    hidden: int = 128              # width of each hidden layer
    n_layers: int = 2              # hidden layers
    dropout: float = 0.1           # dropout after each hidden layer


class MLP(nn.Module):
    def __init__(self, config: MLPConfig):
        super().__init__()
        self.config = config
        self.embeddings = nn.ModuleList(nn.Embedding(c, min(16, (c + 1) // 2 + 1)) for c in config.cardinalities)
        width = config.n_numeric + sum(e.embedding_dim for e in self.embeddings)
        layers = []
        for _ in range(config.n_layers):
            layers += [nn.Linear(width, config.hidden), nn.GELU(), nn.Dropout(config.dropout)]
            width = config.hidden
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, config.n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.config.n_numeric
        parts = [x[:, :n]]
        codes = x[:, n:].long()
        parts += [emb(codes[:, i]) for i, emb in enumerate(self.embeddings)]
        return self.head(self.body(torch.cat(parts, dim=1)))

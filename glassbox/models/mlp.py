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


def hidden_layers(width: int, hidden: int, n_layers: int, dropout: float, activation) -> nn.Sequential:
    """n_layers of (Linear to `hidden`, activation, Dropout), from `width` inputs."""
    layers = []
    for _ in range(n_layers):
        layers += [nn.Linear(width, hidden), activation(), nn.Dropout(dropout)]
        width = hidden
    return nn.Sequential(*layers)


class MLP(nn.Module):
    def __init__(self, config: MLPConfig):
        super().__init__()
        self.config = config
        self.embeddings = nn.ModuleList(nn.Embedding(c, min(16, (c + 1) // 2 + 1)) for c in config.cardinalities)
        width = config.n_numeric + sum(e.embedding_dim for e in self.embeddings)
        self.body = hidden_layers(width, config.hidden, config.n_layers, config.dropout, nn.GELU)
        self.head = nn.Linear(config.hidden if config.n_layers else width, config.n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.config.n_numeric
        parts = [x[:, :n]]
        codes = x[:, n:].long()
        parts += [emb(codes[:, i]) for i, emb in enumerate(self.embeddings)]
        return self.head(self.body(torch.cat(parts, dim=1)))

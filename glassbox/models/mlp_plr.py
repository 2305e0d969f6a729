"""The default table model: numeric columns through periodic embeddings, categorical codes embedded, an MLP on top,
and a few such MLPs as one ensemble.

Periodic embeddings (Gorishniy et al., "On Embeddings for Numerical Features in Tabular Deep Learning", NeurIPS
2022, the "PLR" variant): each standardised number x becomes [sin(2 pi c x), cos(2 pi c x)] for learned
frequencies c, then a per-column linear layer and a ReLU. A plain MLP sees a number through one weight, so a
threshold (a capital gain above 5,000) costs it many units; high frequencies let it draw such steps directly.

The ensemble: each training row trains one member (row i of a batch: member i mod M; batches are shuffled every
epoch, so each member sees its own random share of the data, as bagging does), and a prediction averages the
members' probabilities. The loop sees one model: logits in, cross-entropy out, the same six steps.
On UCI Adult (seed 0) one MLP-PLR trained 5 epochs scored test NLL 0.280 and four members sharing 16 epochs 0.276,
the trees' 0.277 (docs/benchmarks.md)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from glassbox.models.mlp import hidden_layers


@dataclass
class MLPPLRConfig:
    n_numeric: int                 # standardised numeric inputs (first columns of the input)
    n_classes: int                 # output classes
    cardinalities: list[int] = field(default_factory=list)  # categories per categorical column (+1 for unseen)
    members: int = 4               # MLPs in the ensemble (each trains on its own share of every batch)
    n_frequencies: int = 48        # periodic features per numeric column
    sigma: float = 10.0            # initial frequencies ~ N(0, sigma): on Adult 10 beat 0.1, 1 and 3 (benchmarks.md)
    d_numeric: int = 16            # embedding width of each numeric column
    hidden: int = 256              # width of each hidden layer
    n_layers: int = 2              # hidden layers
    dropout: float = 0.1           # dropout after each hidden layer
    regression: bool = False       # one output, a number: the ensemble predicts the members' mean


def embedding_width(cardinality: int) -> int:
    """fastai's rule of thumb: wider embeddings for columns with more categories, at most 16 here."""
    return min(16, round(1.6 * cardinality ** 0.56))


class PeriodicEmbeddings(nn.Module):
    """(N, F) numbers -> (N, F * d): per column, sin and cos of learned frequencies, a linear layer, ReLU."""

    def __init__(self, n_features: int, n_frequencies: int, sigma: float, d: int):
        super().__init__()
        self.frequencies = nn.Parameter(torch.randn(n_features, n_frequencies) * sigma)
        self.weight = nn.Parameter(torch.randn(n_features, 2 * n_frequencies, d) / math.sqrt(2 * n_frequencies))
        self.bias = nn.Parameter(torch.zeros(n_features, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = 2 * math.pi * self.frequencies * x.unsqueeze(-1)               # (N, F, k)
        periodic = torch.cat([torch.sin(z), torch.cos(z)], dim=-1)          # (N, F, 2k)
        h = torch.einsum("nfk,fkd->nfd", periodic, self.weight) + self.bias  # (N, F, d)
        return torch.relu(h).flatten(1)


class Member(nn.Module):
    """One MLP of the ensemble: embeddings of every column, hidden layers, class logits."""

    def __init__(self, config: MLPPLRConfig):
        super().__init__()
        c = config
        self.n_numeric = c.n_numeric
        self.numeric = PeriodicEmbeddings(c.n_numeric, c.n_frequencies, c.sigma, c.d_numeric) if c.n_numeric else None
        self.embeddings = nn.ModuleList(nn.Embedding(k, embedding_width(k)) for k in c.cardinalities)
        width = c.n_numeric * c.d_numeric + sum(e.embedding_dim for e in self.embeddings)
        self.body = hidden_layers(width, c.hidden, c.n_layers, c.dropout, nn.ReLU)
        self.head = nn.Linear(c.hidden if c.n_layers else width, c.n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = [self.numeric(x[:, :self.n_numeric])] if self.numeric is not None else []
        codes = x[:, self.n_numeric:].long()
        parts += [emb(codes[:, i]) for i, emb in enumerate(self.embeddings)]
        return self.head(self.body(torch.cat(parts, dim=1)))


class MLPPLR(nn.Module):
    def __init__(self, config: MLPPLRConfig):
        super().__init__()
        self.config = config
        self.members = nn.ModuleList(Member(config) for _ in range(config.members))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = len(self.members)
        if self.training:  # row i trains member i mod m only: m independent models for the price of one
            logits = x.new_zeros(len(x), self.config.n_classes)
            for i, member in enumerate(self.members):
                logits[i::m] = member(x[i::m])
            return logits
        if self.config.regression:
            return torch.stack([member(x).float() for member in self.members]).mean(dim=0)
        # the ensemble's prediction: log of the mean of the members' probabilities (a log-probability is a logit)
        log_probs = torch.stack([F.log_softmax(member(x).float(), dim=-1) for member in self.members])
        return torch.logsumexp(log_probs, dim=0) - math.log(m)

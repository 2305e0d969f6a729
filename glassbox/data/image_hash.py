"""Near-duplicate images: perceptual hashes to find candidates, pixel correlation to confirm them.

A near duplicate is the same picture after re-encoding, resizing, a small crop or a change of
brightness. Each image gets a 63-bit perceptual hash (pHash: the signs of the lowest 8x8 frequencies of
its grey 32x32 version, less the constant term, against their median); pictures within MAX_BITS bits
of each other are candidates, found by splitting the hash into MAX_BITS + 1 bands (two hashes that
differ in at most MAX_BITS bits agree on a whole band). A candidate pair counts when the two images'
pixels also correlate at MIN_CORRELATION or more: on 8x8 digits and 28x28 MNIST, different people's
"1"s share a hash, and the correlation tells them apart from copies.

    groups, similarity = near_duplicate_images(images)   # images (N, C, H, W) uint8 of one size
    # groups[i] = -1 or the id of i's group; similarity[i] = i's highest correlation within its group

On the 23,000 32x32 cats-vs-dogs photos: 30 pairs, all visibly the same photo; on the 1,797 digits
2 pairs, on MNIST's 10,000 4 (docs/benchmarks.md, "Near-duplicate images").
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.fft import dctn
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

MAX_BITS = 4  # hashes at most this many bits apart (of 63) are candidates
MIN_CORRELATION = 0.98  # and the two images' pixels must correlate at least this much
NEIGHBOURS = 16  # in a band, each image is compared with the next this many that share it (bounds the work)
CHUNK = 20_000  # images hashed at a time (a 32x32 float copy of each)


def perceptual_hashes(images: np.ndarray) -> np.ndarray:
    """(N,) uint64: each image's 63-bit pHash (bit 63 is always 0)."""
    out = np.zeros(len(images), dtype=np.uint64)
    weights = np.uint64(1) << np.arange(63, dtype=np.uint64)
    for lo in range(0, len(images), CHUNK):
        grey = torch.from_numpy(np.ascontiguousarray(images[lo:lo + CHUNK])).float().mean(dim=1, keepdim=True)
        if grey.shape[-1] != 32 or grey.shape[-2] != 32:
            grey = torch.nn.functional.interpolate(grey, size=(32, 32), mode="bilinear", antialias=True)
        low = dctn(grey[:, 0].numpy(), axes=(1, 2), norm="ortho")[:, :8, :8].reshape(len(grey), 64)[:, 1:]
        bits = low > np.median(low, axis=1, keepdims=True)
        out[lo:lo + CHUNK] = (bits.astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)
    return out


def candidate_pairs(hashes: np.ndarray, max_bits: int = MAX_BITS) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) with i < j, each pair once, whose hashes differ in at most max_bits bits."""
    n_bands = max_bits + 1
    edges = np.linspace(0, 63, n_bands + 1).astype(int)
    src, dst = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        key = (hashes >> np.uint64(lo)) & np.uint64((1 << (hi - lo)) - 1)
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        for step in range(1, min(NEIGHBOURS, len(order) - 1) + 1):
            same = sorted_key[step:] == sorted_key[:-step]
            src.append(order[:-step][same])
            dst.append(order[step:][same])
    if not src:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    a, b = np.concatenate(src), np.concatenate(dst)
    pair = np.unique(np.minimum(a, b).astype(np.int64) * len(hashes) + np.maximum(a, b))
    i, j = pair // len(hashes), pair % len(hashes)
    close = _popcount(hashes[i] ^ hashes[j]) <= max_bits
    return i[close], j[close]


def near_duplicate_images(images: np.ndarray, max_bits: int = MAX_BITS,
                          min_correlation: float = MIN_CORRELATION) -> tuple[np.ndarray, np.ndarray]:
    """(group id per image, -1 for none; each image's highest pixel correlation within its group, NaN for none)."""
    n = len(images)
    groups, similarity = np.full(n, -1), np.full(n, np.nan)
    if n < 2:
        return groups, similarity
    i, j = candidate_pairs(perceptual_hashes(images), max_bits)
    corr = _correlation(images.reshape(n, -1), i, j)
    keep = corr >= min_correlation
    i, j, corr = i[keep], j[keep], corr[keep]
    if not len(i):
        return groups, similarity
    graph = coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    linked = np.zeros(n, dtype=bool)
    linked[i] = linked[j] = True
    groups[linked] = np.unique(comp[linked], return_inverse=True)[1]
    best = np.zeros(n)
    np.maximum.at(best, i, corr)
    np.maximum.at(best, j, corr)
    similarity[linked] = best[linked]
    return groups, similarity


def _correlation(flat: np.ndarray, i: np.ndarray, j: np.ndarray, chunk: int = 50_000) -> np.ndarray:
    """Pearson correlation of the pixels of images i[k] and j[k], for every k."""
    out = np.empty(len(i))
    for lo in range(0, len(i), chunk):
        a = flat[i[lo:lo + chunk]].astype(np.float32)
        b = flat[j[lo:lo + chunk]].astype(np.float32)
        mean_a, mean_b = a.mean(axis=1, keepdims=True), b.mean(axis=1, keepdims=True)
        a -= mean_a
        b -= mean_b
        norm_a, norm_b = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
        corr = (a * b).sum(axis=1) / np.maximum(norm_a * norm_b, 1e-12)
        # A flat image correlates with nothing; two flat images of the same shade are the same picture.
        same_shade = np.abs(mean_a - mean_b)[:, 0] < 1
        out[lo:lo + chunk] = np.where((norm_a == 0) & (norm_b == 0), same_shade.astype(float), corr)
    return out


def _popcount(x: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 (numpy's bitwise_count where there is one)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x)
    return np.unpackbits(x.view(np.uint8).reshape(len(x), 8), axis=1).sum(axis=1)

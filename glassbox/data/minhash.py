"""Near-duplicate texts: MinHash over character shingles, LSH banding, then a similarity check.

Two texts are near duplicates when their sets of 5-character shingles overlap with Jaccard similarity
at least `threshold` (0.8 by default), estimated from 64 MinHash values. Everything is numpy over
whole chunks of texts, so a million short texts take seconds, not a Python loop per pair.

    groups, similarity = near_duplicate_groups(texts)   # groups[i] = -1 or the id of i's group
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

SHINGLE = 5  # bytes of UTF-8 text per shingle (characters, for plain ASCII)
NUM_HASHES = 64  # MinHash values per text; the similarity estimate is good to about +-0.05
BANDS = 16  # LSH bands of NUM_HASHES // BANDS = 4 values: a pair at 0.8 shares a whole band with p > 0.999
THRESHOLD = 0.8  # estimated Jaccard similarity at or above which two texts count as near duplicates
_MASK = np.uint64((1 << (8 * SHINGLE)) - 1)


def minhash_signatures(texts: list[str], num_hashes: int = NUM_HASHES, chunk: int = 20_000,
                       threads: int = 2) -> np.ndarray:
    """(N, num_hashes) uint32 MinHash values of each text's set of SHINGLE-byte shingles.

    Texts shorter than one shingle get all-zero rows; callers leave them out (exact copies cover them).
    Hash k of a shingle is a + k * b (mod 2^32) with a, b two halves of one 64-bit mix of the shingle,
    so each extra hash costs one vector add and one segment minimum."""
    sig = np.zeros((len(texts), num_hashes), dtype=np.uint32)

    def work(lo: int) -> None:
        sig[lo: lo + chunk] = _chunk_signatures(texts[lo: lo + chunk], num_hashes)

    with ThreadPoolExecutor(max_workers=threads) as pool:  # numpy releases the GIL in the heavy parts
        list(pool.map(work, range(0, len(texts), chunk)))
    return sig


def _chunk_signatures(texts: list[str], num_hashes: int) -> np.ndarray:
    encoded = [t.encode("utf-8", "surrogatepass") for t in texts]
    lens = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    out = np.zeros((len(texts), num_hashes), dtype=np.uint32)
    ok = lens >= SHINGLE
    if not ok.any():
        return out
    lens = lens[ok]
    body = b"".join(e for e, keep in zip(encoded, ok) if keep)
    n = len(body)
    rows = (n + 7) // 8
    buf = np.frombuffer(body + b"\0" * (8 * rows + 8 - n), dtype=np.uint8)
    # The 8 bytes starting at every position p, as one little-endian uint64: 8 strided views, no loop per byte.
    words = np.empty((rows, 8), dtype=np.uint64)
    for o in range(8):
        words[:, o] = buf[o: o + 8 * rows].view("<u8")
    x = words.ravel()[:n] & _MASK  # (n,): the shingle starting at each position, exactly
    x *= np.uint64(0x9E3779B97F4A7C15)  # mix (splitmix64 finaliser) so similar shingles hash far apart
    x ^= x >> np.uint64(31)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(29)
    a = x.astype(np.uint32)
    b = (x >> np.uint64(32)).astype(np.uint32) | np.uint32(1)
    # The last SHINGLE-1 positions of each text run into the next text: repeat the text's first
    # shingle there instead, which leaves every minimum unchanged.
    starts = np.cumsum(lens) - lens
    tail = (starts + lens)[:, None] - np.arange(1, SHINGLE)[None, :]  # (texts, SHINGLE-1)
    first = np.repeat(starts, SHINGLE - 1)
    a[tail.ravel()] = a[first]
    b[tail.ravel()] = b[first]
    sig = np.empty((len(lens), num_hashes), dtype=np.uint32)
    for k in range(num_hashes):
        sig[:, k] = np.minimum.reduceat(a, starts)
        a += b  # hash k+1 = a + (k+1) b, wrapping mod 2^32
    out[ok] = sig
    return out


def near_duplicate_groups(texts: list[str], threshold: float = THRESHOLD, bands: int = BANDS,
                          num_hashes: int = NUM_HASHES) -> tuple[np.ndarray, np.ndarray]:
    """Group texts whose estimated shingle Jaccard similarity reaches `threshold`.

    Returns (groups, similarity): groups[i] is -1 for a text with no near duplicate, else an id shared
    by its group (ids run 0..G-1, numbered by first member); similarity[i] is i's estimated Jaccard
    similarity to its group's first member (1.0 for that member, 0.0 outside groups). Pass distinct
    texts: exact copies are a separate, cheaper finding."""
    n = len(texts)
    groups, similarity = np.full(n, -1, dtype=np.int64), np.zeros(n)
    if n < 2:
        return groups, similarity
    sig = minhash_signatures(texts, num_hashes)
    usable = np.flatnonzero(np.fromiter((len(t) >= SHINGLE for t in texts), dtype=bool, count=n))
    if len(usable) < 2:  # no two texts long enough to share a shingle
        return groups, similarity
    sig_u = sig if len(usable) == n else sig[usable]
    rows = num_hashes // bands
    src, dst = [], []
    for band in range(bands):
        # Texts that agree on all `rows` values of a band land in one bucket; link each to the bucket's first.
        part = sig_u[:, band * rows:(band + 1) * rows].astype(np.uint64)
        key = np.zeros(len(usable), dtype=np.uint64)
        for j in range(rows):
            key = key * np.uint64(0x100000001B3) + part[:, j]
        order = np.argsort(key)
        k_sorted = key[order]
        new_run = np.r_[True, k_sorted[1:] != k_sorted[:-1]]
        head = order[np.maximum.accumulate(np.where(new_run, np.arange(len(order)), 0))]
        src.append(order[~new_run])
        dst.append(head[~new_run])
    # The same pair is usually found by several bands: check each candidate pair once, in chunks (to
    # bound memory), and drop band collisions whose signatures do not agree on enough values.
    pair = np.concatenate([np.minimum(a, b) * np.int64(len(usable)) + np.maximum(a, b) for a, b in zip(src, dst)])
    pair.sort()
    pair = pair[np.r_[True, pair[1:] != pair[:-1]]] if len(pair) else pair
    src, dst = pair // len(usable), pair % len(usable)
    close = _agreement(sig_u, src, dst) >= threshold
    src, dst = src[close], dst[close]
    graph = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(len(usable), len(usable)))
    _, comp = connected_components(graph, directed=False)
    sizes = np.bincount(comp)
    in_group = sizes[comp] >= 2
    members = usable[in_group]
    # Renumber groups by their first member so ids are stable and the first member is the reference.
    comp_ids, first_pos, dense = np.unique(comp[in_group], return_index=True, return_inverse=True)
    order = np.argsort(first_pos, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    groups[members] = rank[dense]
    reference = members[first_pos][dense]  # each member's group's first member (original text index)
    similarity[members] = _agreement(sig, members, reference)
    return groups, similarity


def _agreement(sig: np.ndarray, a: np.ndarray, b: np.ndarray, chunk: int = 100_000) -> np.ndarray:
    """Share of MinHash values rows a[i] and b[i] agree on (the Jaccard estimate), in chunks to bound memory."""
    out = np.empty(len(a))
    for lo in range(0, len(a), chunk):
        out[lo:lo + chunk] = np.count_nonzero(sig[a[lo:lo + chunk]] == sig[b[lo:lo + chunk]], axis=1)
    return out / sig.shape[1]

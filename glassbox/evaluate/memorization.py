"""Has the model memorised its training text? Two checks, both returning JSON-safe dicts.

novelty:    what share of the character n-grams in generated text appear word for word in the
            training text (compare with held-out human text: some sharing is just language).
extraction: given k tokens of training text, does greedy decoding reproduce the next m tokens
            exactly (Carlini et al., 2021)? The same for validation text is the baseline; the
            difference (train - val) is the memorisation signal.
"""
from __future__ import annotations

import math

import numpy as np
import torch

# n-gram hashing: two polynomial hashes modulo primes below 2^31 (so every product fits in
# int64), packed into one 62-bit key. Matches are then verified against the text itself.
_P1, _P2 = 2_147_483_647, 2_147_483_629
_B1, _B2 = 1_315_423_911, 2_654_435_761 % _P2


def _codes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)  # one per character


def _ngram_keys(codes: np.ndarray, n: int) -> np.ndarray:
    """Hash keys of all len(codes) - n + 1 character n-grams: n vectorised passes."""
    L = len(codes) - n + 1
    if L <= 0:
        return np.zeros(0, dtype=np.int64)
    h1, h2 = np.zeros(L, dtype=np.int64), np.zeros(L, dtype=np.int64)
    for j in range(n):
        h1 = (h1 * _B1 + codes[j : j + L]) % _P1
        h2 = (h2 * _B2 + codes[j : j + L]) % _P2
    return (h1 << 31) | h2


def novelty(generated_texts: list[str], training_text: str, ns=(8, 13, 32), n_examples: int = 3) -> dict:
    """For each n (in characters): the share of the generations' n-grams found verbatim anywhere
    in training_text. Also a few copied stretches (at the largest n) as examples."""
    train_codes = _codes(training_text)
    by_n, examples = [], []
    for n in ns:
        keys = _ngram_keys(train_codes, n)
        order = np.argsort(keys)
        sorted_keys = keys[order]
        total = copied = 0
        for text in generated_texts:
            gen, last_example = _ngram_keys(_codes(text), n), -n
            total += len(gen)
            if len(gen) == 0 or len(sorted_keys) == 0:
                continue
            pos = np.searchsorted(sorted_keys, gen).clip(max=len(sorted_keys) - 1)
            for i in np.flatnonzero(sorted_keys[pos] == gen).tolist():
                start = int(order[pos[i]])  # a training n-gram with the same hash: check it is equal
                if text[i : i + n] == training_text[start : start + n]:
                    copied += 1
                    if n == max(ns) and len(examples) < n_examples and i >= last_example + n:
                        examples.append(text[i : i + n])  # non-overlapping copied stretches
                        last_example = i
        by_n.append({"n": n, "ngrams": total, "copied": copied, "share": copied / total if total else None})
    return {"by_n": by_n, "examples": examples}


def _windows(ids, length: int, n_samples: int, rng: np.random.Generator) -> torch.Tensor:
    """n_samples distinct random windows of `length` tokens, int64 (n, length)."""
    n_starts = len(ids) - length + 1
    if n_starts <= 0:
        return torch.zeros(0, length, dtype=torch.long)
    starts = np.sort(rng.choice(n_starts, size=min(n_samples, n_starts), replace=False))
    return torch.from_numpy(np.asarray(ids[starts[:, None] + np.arange(length)], dtype=np.int64))


def _rate(flags: list[bool]) -> dict:
    n = len(flags)
    p = sum(flags) / n if n else None
    return {"rate": p, "n": n, "stderr": math.sqrt(p * (1 - p) / n) if n else None}


def extraction(model, train_ids, val_ids, prefix_len: int = 32, suffix_len: int = 32, n_samples: int = 200,
               seed: int = 0, batch_size: int = 64, tokenizer=None, n_examples: int = 3) -> dict:
    """Exact-match rate of greedy continuations of training vs validation prefixes.

    A sample is a window of prefix_len + suffix_len tokens; the model sees the prefix (cropped to
    its block_size) and greedily generates suffix_len tokens; it counts as extracted when all of
    them equal the true suffix. `model.generate(idx, n, temperature=0)` does the decoding.
    """
    device = next(model.parameters()).device
    rng = np.random.default_rng(seed)
    out = {"prefix_len": prefix_len, "suffix_len": suffix_len}
    examples = []
    for split, ids in (("train", train_ids), ("val", val_ids)):
        windows = _windows(ids, prefix_len + suffix_len, n_samples, rng)
        exact, token_hits = [], 0
        for batch in windows.split(batch_size):
            prefix, true = batch[:, :prefix_len].to(device), batch[:, prefix_len:].to(device)
            generated = model.generate(prefix, suffix_len, temperature=0)[:, prefix_len:]  # (b, m)
            same = generated == true
            exact += same.all(dim=1).tolist()
            token_hits += int(same.sum())
            for i in torch.nonzero(same.all(dim=1)).flatten().tolist()[: n_examples - len(examples)]:
                ex = {"split": split, "prefix": prefix[i].tolist(), "continuation": true[i].tolist()}
                if tokenizer is not None:
                    ex = {**ex, "prefix": tokenizer.decode(ex["prefix"]), "continuation": tokenizer.decode(ex["continuation"])}
                examples.append(ex)
        out[split] = {**_rate(exact), "token_match": token_hits / (len(exact) * suffix_len) if exact else None}
    train, val = out["train"], out["val"]
    if train["rate"] is not None and val["rate"] is not None:
        out["difference"] = train["rate"] - val["rate"]
        out["difference_stderr"] = math.hypot(train["stderr"], val["stderr"])
    else:
        out["difference"] = out["difference_stderr"] = None
    out["examples"] = examples
    return out


def memorization_report(model, tokenizer, train_ids, val_ids, train_text: str | None = None,
                        n_generations: int = 8, generation_len: int = 400, temperature: float = 1.0,
                        top_k: int | None = None, ns=(8, 13, 32), prefix_len: int = 32,
                        suffix_len: int = 32, n_samples: int = 200, seed: int = 0) -> dict:
    """Novelty of sampled text (against held-out text of the same length as a baseline) and extraction; whether
    either shows memorisation is `copies_training_text` and `reproduces_training_text`, and
    report/words/memorisation.py says it in words."""
    if train_text is None:
        train_text = tokenizer.decode(np.asarray(train_ids).tolist())
    device = next(model.parameters()).device
    rng = np.random.default_rng(seed)
    prompt_len = 8  # tokens of validation text to start each sample from; not counted as generated
    starts = _windows(val_ids, prompt_len + generation_len, n_generations, rng)
    generator = torch.Generator(device=device).manual_seed(seed)
    samples = model.generate(starts[:, :prompt_len].to(device), generation_len, temperature=temperature,
                             top_k=top_k, generator=generator)[:, prompt_len:]
    generated = [tokenizer.decode(row) for row in samples.tolist()]
    held_out = [tokenizer.decode(row) for row in starts[:, prompt_len:].tolist()]
    return {
        "novelty": novelty(generated, train_text, ns),
        "novelty_of_held_out_text": novelty(held_out, train_text, ns, n_examples=0),
        "extraction": extraction(model, train_ids, val_ids, prefix_len, suffix_len, n_samples, seed,
                                 tokenizer=tokenizer),
    }


def copies_training_text(report: dict) -> bool | None:
    """Is the share of generated stretches (the longest n checked) found verbatim in the training text above twice
    held-out text's share plus one point? None: too little text to tell."""
    gen, ref = report["novelty"]["by_n"][-1], report["novelty_of_held_out_text"]["by_n"][-1]
    if gen["share"] is None or ref["share"] is None:
        return None
    return gen["share"] > 2 * ref["share"] + 0.01


def reproduces_training_text(report: dict) -> bool | None:
    """Does the model continue training prefixes exactly more often than validation ones, by more than two standard
    errors and more than one point? None: too little text to tell."""
    ex = report["extraction"]
    if ex["difference"] is None:
        return None
    return ex["difference"] > max(2 * ex["difference_stderr"], 0.01)

"""Text from a language model: read-only, like the Predictor. `glassbox generate`, the server's /generate
and the LM run's report samples all draw their text here, so one seed gives one text everywhere. Each text keeps a
key/value cache (models/gpt.py `KVCache`): the same tokens as recomputing the whole context for each one, fewer FLOPs
(benchmarks/generate_speed.py measures both).

    g = Generator("RUN/model")                   # checks the weights' sha256; nothing can change a weight
    g.generate("ROMEO:", max_new_tokens=80, seed=3)
"""
from __future__ import annotations

import json
import math
import numbers
from pathlib import Path
from typing import Callable

import torch

from glassbox.config import RANGES
from glassbox.data.corpus import tokenizer_from_dict
from glassbox.errors import UserError
from glassbox.export.artifact import load_artifact, read_manifest
from glassbox.models.gpt import KVCache
from glassbox.runtime.threads import cpu_threads, generation_threads

MAX_NEW_TOKENS = 100_000  # a longer run is almost surely a typo (and would run for hours)
STOP_EVERY = 16  # with a stop check (the server's deadline), tokens generated between two looks at it


class Stopped(Exception):
    """generate(..., stop=f) ended early because f() said so: the server's caller left or ran out of time."""


def check_settings(max_new_tokens, temperature, top_k, seed) -> None:
    """Refuse, in one line, a setting that cannot work. The CLI calls this before it opens the artifact."""
    if top_k is not None and not (_is_int(top_k) and top_k >= 1):
        raise UserError(f"--top-k must be at least 1 (it samples among the k likeliest tokens). Got {top_k}")
    if not (isinstance(temperature, numbers.Real) and not isinstance(temperature, bool)
            and math.isfinite(temperature) and temperature >= 0):
        raise UserError(f"--temperature must be a number of at least 0 (0 = always the likeliest token). Got {temperature}")
    low, high = RANGES["seed"]
    if not (_is_int(seed) and low <= seed <= high):
        raise UserError(f"--seed must be between {low} and {high:,}. Got {seed}")
    if not (_is_int(max_new_tokens) and 1 <= max_new_tokens <= MAX_NEW_TOKENS):
        got = f"{max_new_tokens:,}" if _is_int(max_new_tokens) else repr(max_new_tokens)
        raise UserError(f"--max-new-tokens must be between 1 and {MAX_NEW_TOKENS:,}. Got {got}")


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)  # numpy's ints too; True is not a count


def read_lm_manifest(artifact: str | Path) -> dict:
    """The manifest of a language model's artifact; a classifier's is refused before any weight is read."""
    manifest = read_manifest(artifact)
    if manifest.get("task") != "lm":
        raise UserError(f"{artifact} is a {manifest.get('task')} model, not a language model; use 'glassbox predict'")
    return manifest


def describe(manifest: dict) -> str:
    """What the model knows and when it stopped learning (its knowledge cutoff), as `generate --info` prints it."""
    cutoff = manifest.get("knowledge_cutoff", {})
    tokens = cutoff.get("corpus_tokens", {}).get("train", "?")
    tokens = f"{tokens:,}" if _is_int(tokens) else tokens  # an artifact from before the cutoff was saved has none
    text = (f"This model was trained on {tokens} tokens of {cutoff.get('corpus_source', '?')} "
            f"(sha256 {str(cutoff.get('corpus_sha256', '?'))[:16]}…) on {cutoff.get('trained_on', '?')}. "
            f"It knows nothing that is not in that corpus, nothing after that date, and generating text never "
            f"changes its weights: it cannot learn from your prompts.\n")
    parent = (manifest.get("continued_from") or {}).get("knowledge_cutoff") or {}
    if parent:  # --init: it continued a saved model
        text += (f"It continued training a model trained on {parent.get('corpus_source', '?')} (sha256 "
                 f"{str(parent.get('corpus_sha256', '?'))[:16]}…), of which it may have forgotten some.\n")
    return text + f"architecture: gpt {json.dumps(manifest.get('model_config'))}; weights sha256 {manifest.get('weights_sha256')}"


class Generator:
    """Loads RUN/model once; `generate(prompt, ...)` returns the prompt and its continuation as one text."""

    def __init__(self, artifact: str | Path):
        self.manifest = read_lm_manifest(artifact)
        _, self.model = load_artifact(artifact)  # checks the weights' sha256 and puts the model in eval mode
        for p in self.model.parameters():
            p.requires_grad_(False)
        try:
            self.tokenizer = tokenizer_from_dict(self.manifest["preprocessing"])
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            raise UserError(f"{artifact}/manifest.json is damaged ({type(e).__name__}: {e}); export it again from its run") from None
        # A small model generates faster on one CPU thread; chosen once, from the FLOPs counted at export.
        self.threads = generation_threads(self.model, self.manifest.get("inference_flops"))
        self.cache = True  # False: every token from a pass over its whole context, as before the cache
        self.recomputed = 0  # cached tokens a full pass decided, the cached logits' choice too close to call

    @classmethod
    def from_model(cls, model: torch.nn.Module, tokenizer, threads: int | None = None) -> "Generator":
        """A Generator over a model in memory: the LM run draws its report samples from the model it just
        trained, before export. Its weights stay trainable (generating runs under inference_mode, so they
        cannot change). threads: CPU threads to generate on; by default the rule an artifact gets (one thread
        for a small model), which on a CPU gave the same samples as torch's own count in our checks; pass
        threads=torch.get_num_threads() to keep the count the run's own model.generate calls used."""
        g = cls.__new__(cls)
        g.manifest, g.model, g.tokenizer = None, model, tokenizer
        g.threads = threads or generation_threads(model)
        g.cache, g.recomputed = True, 0
        return g

    @property
    def info(self) -> str | None:
        """The knowledge-cutoff text `glassbox generate --info` prints (None for a model not loaded from an artifact)."""
        return describe(self.manifest) if self.manifest is not None else None

    def generate(self, prompt: str, max_new_tokens: int = 200, temperature: float = 0.8, top_k: int | None = None,
                 seed: int = 0, stop: Callable[[], bool] | None = None) -> str:
        """The prompt and max_new_tokens tokens after it; the same seed gives the same text. stop: looked at
        every STOP_EVERY tokens; when it returns True, Stopped is raised (the text is the same without it)."""
        return self.samples(prompt, 1, max_new_tokens, temperature=temperature, top_k=top_k, seed=seed, stop=stop)[0]

    def samples(self, prompt: str, n: int, max_new_tokens: int = 200, temperature: float = 0.8,
                top_k: int | None = None, seed: int = 0, stop: Callable[[], bool] | None = None) -> list[str]:
        """n texts drawn one after another from one torch.Generator seeded once with `seed` (the first is
        generate()'s text): the LM run's report samples are samples(prompt, 3, 200, temperature=0.8, top_k=50, seed)."""
        check_settings(max_new_tokens, temperature, top_k, seed)
        if not (_is_int(n) and n >= 1):
            raise UserError(f"n must be a whole number of at least 1 (the texts to draw). Got {n!r}")
        if not isinstance(prompt, str):
            raise UserError(f"the prompt must be text. Got {type(prompt).__name__}")
        try:
            prompt.encode("utf-8")
        except UnicodeEncodeError as e:  # a lone surrogate, e.g. "\ud800" in JSON: no character at all
            raise UserError(f"the prompt holds {prompt[e.start]!r} at position {e.start}, half of a UTF-16 pair and "
                            f"no character; send the text as UTF-8") from None
        ids = self.tokenizer.encode(prompt)
        if not ids:
            raise UserError("the prompt is empty after tokenising; give at least one character")
        device = next(self.model.parameters()).device
        idx = torch.tensor([ids], device=device)
        gen = torch.Generator(device=device).manual_seed(seed)  # one generator for all n: each text continues its stream
        with cpu_threads(self.threads):
            return [self.tokenizer.decode(self._continue(idx, max_new_tokens, temperature, top_k, gen, stop)[0].tolist())
                    for _ in range(n)]

    def _continue(self, idx, max_new_tokens, temperature, top_k, gen, stop) -> torch.Tensor:
        """model.generate, in chunks of STOP_EVERY tokens when there is a stop check: each token is drawn from the
        same context and the same generator either way, so the text does not depend on the chunks."""
        chunk = STOP_EVERY if stop is not None else max_new_tokens
        cache = KVCache.for_model(self.model) if self.cache else None  # one text's: it lasts across the chunks
        for done in range(0, max_new_tokens, chunk):
            if stop is not None and stop():
                raise Stopped(f"stopped after {done} of {max_new_tokens} tokens")
            idx = self.model.generate(idx, min(chunk, max_new_tokens - done), temperature=temperature, top_k=top_k,
                                      generator=gen, cache=cache)
        self.recomputed += cache.recomputed if cache else 0
        return idx

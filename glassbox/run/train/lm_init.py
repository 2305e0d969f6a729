"""`--init RUN/model` for a language model: a saved model continues training on a new corpus, with its own tokenizer and
sizes (run/settings.py takes those from its manifest). Its loss on the new corpus's validation text and on its own
original held-out text, before training and after, shows adapting and forgetting side by side.

    parent = Parent.load(cfg)                        # the saved model, its tokenizer, its original held-out text
    before = parent.losses(parent.model, val_ids)    # before a weight moves
    ...                                              # train parent.model on the new corpus
    record = parent.record(before, parent.losses(trained, val_ids))
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from glassbox.config import TrainConfig, default_of
from glassbox.data.corpus import (CORPUS_JSON, VAL_BIN, fingerprint, load_prepared, read_corpus, split_text,
                                  tokenizer_from_dict, val_windows)
from glassbox.export.artifact import load_artifact
from glassbox.train.loop import chance_level, cross_entropy, evaluate


@dataclass
class Parent:
    """The saved model --init names, loaded, and the token ids of its original held-out text (None where that text is
    not at hand, `held_out_from` saying why)."""
    path: str
    manifest: dict
    model: torch.nn.Module
    tokenizer: object
    held_out: np.ndarray | None
    held_out_from: str

    @classmethod
    def load(cls, cfg: TrainConfig) -> "Parent":
        manifest, model = load_artifact(cfg.init)  # its weights' sha256 checked
        tokenizer = tokenizer_from_dict(manifest["preprocessing"])
        held_out, source = original_held_out(cfg, manifest, tokenizer)
        return cls(str(cfg.init), manifest, model.train(), tokenizer, held_out, source)

    def config(self, cfg: TrainConfig) -> dict:
        """The model config this run trains and saves: the saved model's, with this run's dropout."""
        return {**self.manifest["model_config"], "dropout": cfg.dropout}

    def losses(self, model: torch.nn.Module, val_ids, block_size: int) -> dict:
        """Mean next-token loss on every window of the new corpus's validation text and of the original held-out text."""
        device = next(model.parameters()).device
        new = evaluate(model, val_windows(val_ids, block_size), cross_entropy, device=device)[0]
        if self.held_out is None:
            return {"new": new}
        return {"new": new, "original": evaluate(model, val_windows(self.held_out, block_size), cross_entropy,
                                                 device=device)[0]}

    def chance(self, model: torch.nn.Module, val, loss_fn, batch_size: int, device) -> dict:
        """fit's chance level, said of the saved model the run starts from (its weights are not random)."""
        chance = chance_level(model, val, loss_fn, batch_size, device)
        chance["sentence"] = (chance["sentence"].split("; the untrained model's loss is")[0]
                              + f"; the saved model's loss is {chance['untrained_loss']:.4f} before this run trains it")
        return chance

    def record(self, before: dict, after: dict, corpus: dict) -> dict:
        """What summary.json keeps under "init": the saved model, both texts' losses before and after, and the
        characters of the new corpus its tokenizer could not read."""
        cutoff = self.manifest.get("knowledge_cutoff") or {}
        return {"from": self.path, "weights_sha256": self.manifest.get("weights_sha256"),
                "trained_on": cutoff.get("corpus_source"), "knowledge_cutoff": cutoff,
                "new_text": {"before": before["new"], "after": after["new"]},
                "original_text": ({"before": before["original"], "after": after["original"], "source": self.held_out_from}
                                  if self.held_out is not None else None),
                "original_text_missing": None if self.held_out is not None else self.held_out_from,
                "unknown_characters": corpus.get("unknown_characters")}


def original_held_out(cfg: TrainConfig, manifest: dict, tokenizer) -> tuple[np.ndarray | None, str]:
    """The token ids of the saved model's own held-out text and where they came from, in this order: --init-val's file;
    the validation split its run folder wrote (RUN/data, beside RUN/model), when that folder's corpus is the one the
    manifest records; its corpus's recorded path, when the file is still there with the recorded sha256 (split as its
    run split it). Else None, and the one line that says why."""
    cutoff = manifest.get("knowledge_cutoff") or {}
    sha, source = cutoff.get("corpus_sha256"), cutoff.get("corpus_source")
    fraction = cutoff.get("val_fraction", default_of("val_fraction"))  # recorded since --init; before, the default
    if cfg.init_val is not None:
        text = read_corpus(cfg.init_val)
        if fingerprint(text) == sha:  # the very corpus it trained on: its held-out part, as its run split it
            return (encode(split_text(text, fraction)[1], tokenizer),
                    f"the last {fraction:.0%} of {cfg.init_val} (--init-val, the corpus it trained on by its sha256)")
        return encode(text, tokenizer), f"{cfg.init_val} (--init-val)"
    data = Path(cfg.init).parent / "data"
    try:
        if json.loads((data / CORPUS_JSON).read_text(encoding="utf-8")).get("sha256") == sha:
            return np.asarray(load_prepared(data)[2]), f"the validation split its run kept ({data / VAL_BIN})"
    except (OSError, ValueError):
        pass
    if not source or not Path(source).is_file():
        why = f"its run folder's data and its corpus {source} are no longer there"
    elif fingerprint(read_corpus(source)) != sha:
        why = f"{source} has changed since (its sha256 is no longer the one the manifest records)"
    else:
        return (encode(split_text(read_corpus(source), fraction)[1], tokenizer),
                f"the last {fraction:.0%} of {source} (its sha256 is the one the manifest records)")
    return None, (f"the saved model's own held-out text is not at hand ({why}), so what it forgets is not measured; "
                  f"give that text with --init-val FILE")


def encode(text: str, tokenizer) -> np.ndarray:
    """Token ids of held-out text; a character tokenizer leaves out characters it has no token for."""
    ids = tokenizer.encode(text, unknown="drop") if tokenizer.kind == "char" else tokenizer.encode(text)
    return np.asarray(ids, dtype=np.int64)


def words(record: dict) -> str:
    """The run's line about it: the losses before and after on both texts."""
    new, old = record["new_text"], record["original_text"]
    text = (f"continued from {record['from']}: on this corpus's validation text its loss went from {new['before']:.4f} "
            f"to {new['after']:.4f} ({'adapting' if new['after'] < new['before'] else 'not adapting'})")
    if old is None:
        return text + f"; {record['original_text_missing']}"
    change = "forgetting" if old["after"] > old["before"] else "not forgetting"
    return text + (f"; on its own held-out text, {old['source']}, from {old['before']:.4f} to {old['after']:.4f} "
                   f"({change})")

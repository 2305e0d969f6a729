"""Byte-level BPE (GPT-2 style), trained with Hugging Face `tokenizers`: the one subword tokenizer.
Language models use BPE as it is (glassbox.data.corpus); the text classifier's BPEEncoder wraps it,
adding padding and [CLS].

    bpe = BPE.train(texts, vocab_size=2000)   # texts: strings (an iterator is fine)
    ids = bpe.encode("naïve 東京 🙂")           # list[int], every id < bpe.vocab_size
    bpe.decode(ids) == "naïve 東京 🙂"          # always: no normaliser, and every byte has a token
    bpe = BPE.from_dict(bpe.to_dict())        # {"kind": "bpe", "tokenizer_json": "..."}: JSON, no pickles

    enc = BPEEncoder(vocab_size=8000).fit(train_texts)
    x = enc.encode(texts)                     # LongTensor (N, L): [CLS], the text's ids, 0-padding

Ids 0..255 are single bytes, so any text encodes and nothing is ever unknown; the ids after them
are the merges learned from the training text, most frequent first.
"""
from __future__ import annotations

import numpy as np
import torch

from glassbox.errors import UserError

N_BYTES = 256  # the byte alphabet every byte-level vocabulary starts from


class BPE:
    kind = "bpe"

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer  # a tokenizers.Tokenizer

    @classmethod
    def train(cls, texts, vocab_size: int, min_frequency: int = 0) -> "BPE":
        """Learn merges from texts until the vocabulary holds vocab_size tokens, or no pair occurs
        min_frequency times (then it holds fewer: check .vocab_size)."""
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        if vocab_size < N_BYTES:
            raise UserError(f"a byte-level BPE vocabulary needs at least {N_BYTES} tokens (one per byte); "
                            f"got vocab_size={vocab_size}; ask for {N_BYTES} or more (a few thousand is typical)")
        tok = Tokenizer(models.BPE())
        # No prefix space: encoding a text in pieces must give the ids of encoding it whole, and
        # decode must give back the text exactly.
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes, seen in training or not
            show_progress=False)
        tok.train_from_iterator([texts] if isinstance(texts, str) else texts, trainer=trainer)
        return cls(tok)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """encode() of each text, run in parallel by `tokenizers`."""
        return [e.ids for e in self.tokenizer.encode_batch(list(texts))]

    def decode(self, ids) -> str:
        return self.tokenizer.decode(list(ids))

    def to_dict(self) -> dict:
        return {"kind": self.kind, "tokenizer_json": self.tokenizer.to_str()}

    @classmethod
    def from_dict(cls, d: dict) -> "BPE":
        from tokenizers import Tokenizer

        try:
            return cls(Tokenizer.from_str(d["tokenizer_json"]))
        except Exception as e:  # a truncated or hand-edited file: the library's message, on one line
            reason = " ".join(str(e).split())
            raise UserError(f"the saved BPE tokenizer cannot be read ({reason}); re-export the model "
                            f"with this glassbox version") from None


class BPEEncoder:
    """Texts -> (N, L) ids for the text Transformer, on the shared byte-level BPE (glassbox.data.bpe).

    Ids: 0 = padding, 1 = [CLS], and BPE token t is id t + 2. Every row starts with [CLS], so no row
    is all padding, not even an empty text's. Any text encodes (unseen characters fall back to their
    bytes), so there is no [UNK]. A text is encoded after a space, as a word in the middle of a text
    is, so "Free" opening a text gets the tokens of " Free" after another word.
    """

    def __init__(self, vocab_size: int = 8000, max_len: int = 128, min_frequency: int = 2):
        self.target_vocab_size = vocab_size  # most ids, padding and [CLS] included
        self.max_len = max_len  # most ids per text, [CLS] included; longer texts keep their beginning
        self.min_frequency = min_frequency  # a merge must occur this often in the training texts
        self.bpe_ = None
        # The id layout (artifacts written before the shared BPE have another: see from_dict).
        self.cls_id = 1  # starts every row
        self.first_token_id = 2  # the id of BPE token 0
        self.prefix_space = True  # encode " " + text, unless the text is empty or starts with a space

    @property
    def vocab_size(self) -> int:
        """Rows the embedding table needs: every BPE token, padding and [CLS]."""
        self._check_fitted()
        return self.bpe_.vocab_size + self.first_token_id

    def fit(self, texts: list[str]) -> "BPEEncoder":
        least = N_BYTES + self.first_token_id
        if self.target_vocab_size < least:
            raise UserError(f"the transformer's vocabulary needs at least {least} ids (one per byte, padding and "
                            f"[CLS]); got vocab_size={self.target_vocab_size}; ask for {least} or more "
                            f"(a few thousand is typical)")
        self.bpe_ = BPE.train(self._spaced(texts), self.target_vocab_size - self.first_token_id, self.min_frequency)
        return self

    def _spaced(self, texts: list[str]) -> list[str]:
        if not self.prefix_space:
            return list(texts)
        return [" " + t if t and not t.startswith(" ") else t for t in texts]

    def encode(self, texts: list[str]) -> torch.Tensor:
        """(N, L) int64 ids starting with [CLS], L = the longest encoded text (at most max_len), 0-padded."""
        self._check_fitted()
        rows = self.bpe_.encode_batch(self._spaced(texts))
        out = np.zeros((len(rows), min(self.max_len, 1 + max(map(len, rows), default=0))), dtype=np.int64)
        out[:, 0] = self.cls_id
        for i, r in enumerate(rows):
            r = r[: self.max_len - 1]
            out[i, 1: 1 + len(r)] = np.asarray(r, dtype=np.int64) + self.first_token_id
        return torch.from_numpy(out)

    def _check_fitted(self):
        if self.bpe_ is None:
            raise RuntimeError("This BPEEncoder is not fitted yet. Call 'fit' with the training texts first.")

    def to_dict(self) -> dict:
        self._check_fitted()
        return {"type": "bpe", "max_len": self.max_len, "cls_id": self.cls_id,
                "first_token_id": self.first_token_id, "prefix_space": self.prefix_space,
                "tokenizer": self.bpe_.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "BPEEncoder":
        if isinstance(d.get("tokenizer"), str):
            d = _old_bpe_form(d)
        enc = cls(max_len=d["max_len"])
        enc.cls_id, enc.first_token_id, enc.prefix_space = d["cls_id"], d["first_token_id"], d["prefix_space"]
        enc.bpe_ = BPE.from_dict(d["tokenizer"])
        enc.target_vocab_size = enc.vocab_size
        return enc


def _old_bpe_form(d: dict) -> dict:
    """An artifact written before the shared BPE: its tokenizer holds [PAD], [UNK] and [CLS] as ids 0-2,
    lower-cases and adds the leading space itself. It loads as it is, so it encodes as it always did."""
    return {"type": "bpe", "max_len": d["max_len"], "cls_id": 2, "first_token_id": 0, "prefix_space": False,
            "tokenizer": {"kind": "bpe", "tokenizer_json": d["tokenizer"]}}

"""Text classification data: the loader and the two encoders (raw text -> token ids) saved in the artifact.
BPEEncoder lives in glassbox.data.bpe, beside the byte-level BPE it wraps (language models use it too).

    examples = load_text("SMSSpamCollection", text_col="text", label_col="label", columns=["label", "text"])
    enc = HashedNgramEncoder().fit(train_texts)       # fastText-style hashed n-grams seen in training
    ids = enc.encode(texts)                           # LongTensor (N, L), 0 = padding
    enc2 = HashedNgramEncoder.from_dict(enc.to_dict())  # JSON-safe round trip, no pickles

Both encoders reserve id 0 for padding, so models can mask it.
"""
from __future__ import annotations

import base64
import re
import zlib

import numpy as np
import pandas as pd
import torch

from glassbox.data.bpe import BPEEncoder  # noqa: F401 (imported from here by the run code)
from glassbox.data.examples import Examples
from glassbox.data.table import read_table
from glassbox.errors import UserError

_WORD_RE = re.compile(r"\w+|[^\w\s]+")  # runs of letters/digits, or runs of punctuation ("!!", "£")
_LONG_RUN_RE = re.compile(r"([xX])\1{3,}")
# Whole-text tags: how long a text is, how many digits it holds, and whether it has a web address,
# an amount of money or a long number (a phone number, a prize code). Words and their pieces cannot
# say these: "08712460324" and "09061701461" share few character n-grams, but both are long numbers.
_TAG_PATTERNS = (("url", re.compile(r"https?:|www\.|\.com\b|\.co\.uk\b|\.net\b", re.I)),
                 ("money", re.compile(r"[£$€]|\b\d+p\b|\bpounds?\b", re.I)),
                 ("long_number", re.compile(r"\d{5,}")))
_LENGTH_EDGES = np.array([20, 40, 60, 80, 100, 120, 140, 150, 160, 200])  # characters
_DIGIT_EDGES = np.array([1, 3, 6, 11, 16])                                # digits in the text


def normalise_text(text: str) -> str:
    """The content key of a text: whitespace collapsed and lower-cased, so trivial copies share a key."""
    return " ".join(text.split()).lower()


def load_text(path, text_col: str, label_col: str, columns: list[str] | None = None,
              group_cols=()) -> Examples:
    """Read a CSV/TSV/JSONL/Parquet/Arrow file of labelled texts; header-less files name their columns with
    `columns`. Of a Parquet or Arrow file only the text, label and group columns are read."""
    df, lines = read_table(path, columns, usecols=[text_col, label_col, *group_cols])
    known = ", ".join(map(str, df.columns))
    for flag, col in [("--text", text_col), ("--label", label_col)] + [("--group", g) for g in group_cols]:
        if col not in df.columns:
            raise UserError(f"column '{col}' is not in {path}; its columns are: {known}; "
                            f"pass {flag} with one of them (or --columns for a file without a header)")
    texts = [_as_str(t) for t in df[text_col].tolist()]
    if not any(t.strip() for t in texts):
        raise UserError(f"every text in column '{text_col}' of {path} is empty; "
                        f"check that --text names the column that holds the texts")
    raw_labels = [_as_str(v).strip() for v in df[label_col].tolist()]
    missing = [line for line, v in zip(lines, raw_labels) if not v]
    if missing:
        shown = ", ".join(map(str, missing[:5])) + (" ..." if len(missing) > 5 else "")
        raise UserError(f"{len(missing)} rows of {path} have no value in label column '{label_col}' "
                        f"(lines {shown}); fill them in or remove those rows")
    classes = _sorted_classes(set(raw_labels))
    if len(classes) < 2:
        raise UserError(f"label column '{label_col}' of {path} holds only one value ('{classes[0]}'); "
                        f"a classifier needs at least two classes: check --label")
    index = {c: i for i, c in enumerate(classes)}
    return Examples(
        kind="text",
        inputs=texts,
        labels=np.array([index[v] for v in raw_labels], dtype=np.int64),
        classes=classes,
        keys=[normalise_text(t) for t in texts],
        lines=list(lines),
        groups={g: [_as_str(v) for v in df[g].tolist()] for g in group_cols},
        source=str(path),
        meta={"text_col": text_col, "label_col": label_col},
    )


def _as_str(value) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _sorted_classes(values: set[str]) -> list[str]:
    """Numeric labels sort as numbers ("2" before "10"); anything else sorts as text."""
    try:
        return sorted(values, key=float)
    except ValueError:
        return sorted(values)


def _shape(word: str) -> str:
    """Case and digit pattern of a word, letter runs capped at 3: "FREE" -> "XXX", "£1000" -> "£0000"."""
    shape = "".join("X" if c.isupper() else "x" if c.islower() else "0" if c.isdigit() else c for c in word)
    return _LONG_RUN_RE.sub(r"\1\1\1", shape)


def text_tags(text: str) -> list[str]:
    """A text's whole-text tags: its length bucket, its digit-count bucket, and which patterns it holds."""
    tags = [f"len{int(np.searchsorted(_LENGTH_EDGES, len(text), side='right'))}",
            f"digits{int(np.searchsorted(_DIGIT_EDGES, sum(c.isdigit() for c in text), side='right'))}"]
    return tags + [name for name, pattern in _TAG_PATTERNS if pattern.search(text)]


def _crc(s: str) -> int:
    """A stable 32-bit hash (Python's hash() is salted per process, so ids would change between runs)."""
    return zlib.crc32(s.encode("utf-8", "surrogatepass"))


class HashedNgramEncoder:
    """fastText-style features: hashed word n-grams and character n-grams of each word, into `buckets` ids.

    A text starts with its whole-text tags (text_tags(): length and digit-count buckets, web address,
    money, long number). Then, for each word in order: the bigram it ends (word_ngrams=2), the
    lower-cased word, its shape ("FREE" -> "XXX", "08452810075" -> "00000000000": case and digit
    patterns survive lower-casing), and the character n-grams (char_min..char_max) of "<Word>", case
    kept. Each n-gram counts once per text. `fit` keeps the buckets seen in at least `min_count`
    training texts and numbers them 1..V (0 pads), so the embedding table holds only what training can
    learn; unseen or rare n-grams are dropped. Word-level buckets (words, bigrams, shapes) get the
    first ids, 1..word_vocab_, and the rest (character n-grams, tags) the ids after them, so a model
    can pool the two kinds apart (FastTextConfig.word_vocab). A text keeps its first `max_len` ids.
    Texts are hashed in chunks to bound memory.
    """

    CHUNK = 50_000  # texts hashed at a time

    def __init__(self, buckets: int = 2**20, word_ngrams: int = 2, char_min: int = 2, char_max: int = 5,
                 shapes: bool = True, lowercase_chars: bool = False, distinct: bool = True, min_count: int = 2,
                 max_len: int = 1024, tags: bool = True):
        self.buckets = buckets  # hash table size: more buckets, fewer collisions between n-grams
        self.word_ngrams = word_ngrams  # 1: single words only; 2: also pairs of neighbouring words
        self.char_min = char_min  # shortest character n-gram (0 turns character n-grams off)
        self.char_max = char_max  # longest character n-gram
        self.shapes = shapes  # add each word's shape (case and digit pattern) as a feature
        self.lowercase_chars = lowercase_chars  # lower-case words before their character n-grams (False: case counts)
        self.distinct = distinct  # each n-gram once per text (a set, as binary TF-IDF features are)
        self.min_count = min_count  # fit keeps n-grams seen in at least this many training texts
        self.max_len = max_len  # most ids kept per text
        self.tags = tags  # start each text with its whole-text tags (length, digits, web address, money, long number)
        self.kept_ = None  # (buckets,) bool: buckets kept by fit; None before fit (every bucket is kept)
        self.word_vocab_ = 0  # ids 1..word_vocab_ are word-level (words, bigrams, shapes); 0 before fit

    @property
    def vocab_size(self) -> int:
        """Rows the embedding table needs: kept buckets + 1 for padding."""
        return self.buckets if self.kept_ is None else int(self.kept_.sum()) + 1

    def fit(self, texts: list[str]) -> "HashedNgramEncoder":
        doc_freq = np.zeros(self.buckets, dtype=np.int64)
        for lo in range(0, len(texts), self.CHUNK):
            feats, feat_text = self._features(texts[lo:lo + self.CHUNK])
            pairs = np.sort(feat_text * np.int64(self.buckets) + feats)
            pairs = pairs[np.r_[True, pairs[1:] != pairs[:-1]]] if len(pairs) else pairs  # each (text, bucket) once
            doc_freq += np.bincount(pairs % self.buckets, minlength=self.buckets)
        self._set_kept(doc_freq >= self.min_count, self._word_level_buckets(texts))
        return self

    def _word_level_buckets(self, texts: list[str]) -> np.ndarray:
        """(buckets,) bool: the buckets that words, word pairs and shapes of `texts` hash to."""
        words_only = HashedNgramEncoder(buckets=self.buckets, word_ngrams=self.word_ngrams, char_min=0,
                                        shapes=self.shapes, tags=False)
        word = np.zeros(self.buckets, dtype=bool)
        for lo in range(0, len(texts), self.CHUNK):
            word[words_only._features(texts[lo:lo + self.CHUNK])[0]] = True
        return word

    def _set_kept(self, kept: np.ndarray, word: np.ndarray | None = None) -> None:
        """Number the kept buckets: word-level ones 1..word_vocab_ first, then the rest (both in bucket order)."""
        kept[0] = False
        word = np.zeros_like(kept) if word is None else word & kept
        self.kept_, self.word_ = kept, word
        self.word_vocab_ = int(word.sum())
        rest = kept & ~word
        self.remap_ = np.zeros(self.buckets, dtype=np.int64)  # bucket -> id, dropped -> 0
        self.remap_[word] = np.arange(1, self.word_vocab_ + 1)
        self.remap_[rest] = np.arange(self.word_vocab_ + 1, int(kept.sum()) + 1)

    def encode(self, texts: list[str]) -> torch.Tensor:
        """(N, L) int64 ids, L = the most ids of any text (at most max_len), padded with 0."""
        chunks = [self._encode(texts[lo:lo + self.CHUNK]) for lo in range(0, max(1, len(texts)), self.CHUNK)]
        if len(chunks) == 1:
            return torch.from_numpy(chunks[0])
        out = np.zeros((len(texts), max(c.shape[1] for c in chunks)), dtype=np.int64)
        for i, c in enumerate(chunks):
            out[i * self.CHUNK:i * self.CHUNK + len(c), :c.shape[1]] = c
        return torch.from_numpy(out)

    def _encode(self, texts: list[str]) -> np.ndarray:
        feats, feat_text = self._features(texts)
        if self.kept_ is not None:
            feats = self.remap_[feats]
            feats, feat_text = feats[feats > 0], feat_text[feats > 0]
        if self.distinct:  # keep each (text, id) pair's first occurrence, in reading order
            pair = feat_text * np.int64(self.buckets) + feats
            order = np.argsort(pair, kind="stable")
            first = np.sort(order[np.r_[True, pair[order][1:] != pair[order][:-1]]])
            feats, feat_text = feats[first], feat_text[first]
        per_text = np.bincount(feat_text, minlength=len(texts))
        pos = np.arange(len(feats)) - (np.cumsum(per_text) - per_text)[feat_text]
        keep = pos < self.max_len
        out = np.zeros((len(texts), max(1, min(self.max_len, int(per_text.max(initial=0))))), dtype=np.int64)
        out[feat_text[keep], pos[keep]] = feats[keep]
        return out

    def _features(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Every text's bucket ids in reading order (its tags first), flat, and the text each belongs to."""
        feats, feat_text = self._word_features(texts)
        if not self.tags:
            return feats, feat_text
        tags = [text_tags(t) for t in texts]
        tag_text = np.repeat(np.arange(len(texts)), [len(g) for g in tags])
        tag_ids = self._bucket(np.fromiter((_crc("t " + t) for g in tags for t in g), dtype=np.uint64,
                                           count=len(tag_text)) * np.uint64(0x85EBCA77) + np.uint64(2))
        order = np.argsort(np.r_[tag_text, feat_text], kind="stable")  # per text: tags, then its words
        return np.r_[tag_ids, feats][order], np.r_[tag_text, feat_text][order]

    def _word_features(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        words_per_text = [_WORD_RE.findall(t) for t in texts]
        n_words = np.fromiter(map(len, words_per_text), dtype=np.int64, count=len(texts))
        flat = pd.Series([w for ws in words_per_text for w in ws], dtype=object)
        codes, vocab = pd.factorize(flat)  # distinct words are hashed once, however often they occur
        word_hash, own_ptr, own_ids = self._hash_vocab(list(vocab))

        # Per word occurrence (token): the bigram id it closes, then the ids of the word itself.
        n_tok = len(codes)
        tok_text = np.repeat(np.arange(len(texts)), n_words)
        has_bigram = np.zeros(n_tok, dtype=bool)
        if self.word_ngrams >= 2:
            has_bigram[1:] = tok_text[1:] == tok_text[:-1]
        n_own = (own_ptr[1:] - own_ptr[:-1])[codes]
        count = has_bigram + n_own
        start = np.cumsum(count) - count  # where each token's ids begin in the flat list
        feats = np.zeros(int(count.sum()), dtype=np.int64)
        h = word_hash[codes]
        prev = np.roll(h, 1)
        feats[start[has_bigram]] = self._bucket(prev[has_bigram] * np.uint64(1000003) + h[has_bigram])
        tok_rep = np.repeat(np.arange(n_tok), n_own)  # one entry per own id, naming its token
        within = np.arange(len(tok_rep)) - np.repeat(np.cumsum(n_own) - n_own, n_own)
        feats[start[tok_rep] + has_bigram[tok_rep] + within] = own_ids[own_ptr[codes[tok_rep]] + within]
        return feats, np.repeat(tok_text, count)

    def _hash_vocab(self, vocab: list[str]):
        """Hash each distinct word once: a hash for bigrams, and its own feature ids in CSR form (ptr, ids)."""
        lower = [w.lower() for w in vocab]
        word_hash = np.fromiter((_crc(w) for w in lower), dtype=np.uint64, count=len(vocab))
        hashes, ptr = [], [0]
        for w, low in zip(vocab, lower):
            hashes.append(_crc("w " + low))
            if self.shapes:
                hashes.append(_crc("s " + _shape(w)))
            if self.char_min > 0:
                padded = f"<{low if self.lowercase_chars else w}>"
                for n in range(self.char_min, min(self.char_max, len(padded)) + 1):
                    hashes.extend(_crc(padded[i:i + n]) for i in range(len(padded) - n + 1))
            ptr.append(len(hashes))
        own_ids = self._bucket(np.array(hashes, dtype=np.uint64) * np.uint64(0x85EBCA77) + np.uint64(2))
        return word_hash, np.array(ptr, dtype=np.int64), own_ids

    def _bucket(self, h: np.ndarray) -> np.ndarray:
        """Map 64-bit values to ids 1..buckets-1 (0 stays free for padding)."""
        h = h ^ (h >> np.uint64(29))
        return (h % np.uint64(self.buckets - 1)).astype(np.int64) + 1

    def to_dict(self) -> dict:
        return {"type": "hashed_ngrams", "buckets": self.buckets, "word_ngrams": self.word_ngrams,
                "char_min": self.char_min, "char_max": self.char_max, "shapes": self.shapes,
                "lowercase_chars": self.lowercase_chars, "distinct": self.distinct, "min_count": self.min_count,
                "max_len": self.max_len, "tags": self.tags,
                "kept": None if self.kept_ is None else base64.b64encode(np.packbits(self.kept_)).decode(),
                "word": None if self.kept_ is None else base64.b64encode(np.packbits(self.word_)).decode()}

    @classmethod
    def from_dict(cls, d: dict) -> "HashedNgramEncoder":
        # Artifacts written before tags and word-level ids existed have neither: they encode as they always did.
        kept_bits = 8 * len(base64.b64decode(d["kept"])) if d.get("kept") is not None else None
        buckets = d.get("buckets")
        if not (isinstance(buckets, int) and not isinstance(buckets, bool) and 2 <= buckets <= (kept_bits or 2**31)):
            raise UserError(f"the artifact's n-gram buckets {buckets!r} is not a whole number from 2 to the "
                            f"{kept_bits or 2**31:,} its kept n-grams record: the manifest is damaged; export it again")
        enc = cls(**{k: v for k, v in d.items() if k not in ("type", "kept", "word", "tags")}, tags=d.get("tags", False))

        def bits(key: str) -> np.ndarray:
            return np.unpackbits(np.frombuffer(base64.b64decode(d[key]), dtype=np.uint8))[: enc.buckets].astype(bool)

        if d.get("kept") is not None:
            enc._set_kept(bits("kept"), bits("word") if d.get("word") is not None else None)
        return enc

"""Language-model corpora: read the text, split it, tokenize it, store the token ids on disk,
and draw training batches from them.

    text = read_corpus("input.txt")                   # a file, or a folder of text files
    train_text, val_text = split_text(text)           # contiguous 90/10 split, never random lines
    tok = train_tokenizer(train_text, "char")         # or "bpe", 2000: byte-level BPE (data/bpe.py)
    n = write_tokens(train_text, tok, "run/train.bin")
    train = open_tokens("run/train.bin", tok.vocab_size)   # np.memmap: the ids never sit in RAM
    batches = RandomWindows(train, block_size=64, batch_size=12, seed=0)
    x, y = batches.next()                             # int64 (B, T); y is x shifted by one

`prepare_corpus` does all of this in one call and writes tokenizer.json and corpus.json too.
"""
from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from glassbox.data.bpe import BPE
from glassbox.errors import UserError
from glassbox.runtime import distributed

TRAIN_BIN, VAL_BIN, TOKENIZER_JSON, CORPUS_JSON = "train.bin", "val.bin", "tokenizer.json", "corpus.json"


# --- Reading and splitting

def read_corpus(path) -> str:
    """The text of a file, or of every file in a folder (sorted by path, joined with a newline).
    Files must be UTF-8 text; Windows line endings become '\\n' (as Python's text mode does)."""
    text = "\n".join(t for _, t in corpus_files(path))
    if not text.strip():
        raise UserError(f"the corpus {path} is empty; give a text file with some text in it")
    return text


def corpus_files(path) -> list[tuple[str, str]]:
    """(name, text) of the file, or of every file in the folder in the order read_corpus joins them;
    a folder's files are named by their path inside it."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"corpus {path} does not exist; give a text file or a folder of text files")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*")  # hidden files and folders (.git, .DS_Store) left out
                       if p.is_file() and not any(s.startswith(".") for s in p.relative_to(path).parts))
        if not files:
            raise UserError(f"the folder {path} holds no files; put one or more UTF-8 text files in it")
    else:
        return [(path.name, _read_text_file(path))]
    return [(str(f.relative_to(path)), _read_text_file(f)) for f in files]


def _read_text_file(path: Path) -> str:
    from glassbox.data.table import decode_text

    if not path.is_file():  # a device or a pipe: reading it could block or never end
        raise UserError(f"{path} is not a regular file (a device or a pipe); the corpus must be UTF-8 text files")
    data = path.read_bytes()
    if b"\x00" in data[65536:]:
        raise UserError(f"{path} is a binary file (it holds NUL bytes); the corpus must be UTF-8 text")
    return decode_text(data, path, "the corpus must be UTF-8 text").replace("\r\n", "\n")


def split_text(text: str, val_fraction: float = 0.1) -> tuple[str, str]:
    """Train and validation text as two contiguous pieces: the first (1 - val_fraction) of the
    characters, then the rest. Random lines would put near-copies of training text in validation."""
    if not 0.0 < val_fraction < 1.0:
        raise UserError(f"val_fraction must be between 0 and 1 (exclusive); got {val_fraction}")
    n = int(len(text) * (1.0 - val_fraction))
    return text[:n], text[n:]


def fingerprint(text: str) -> str:
    """sha256 of the corpus text: names exactly what the model was trained on."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- Tokenizers: encode(str) -> list[int], decode(list[int]) -> str, vocab_size, to_dict/from_dict

class CharTokenizer:
    """One token per character; the vocabulary is the sorted distinct characters of the training text."""

    kind = "char"

    def __init__(self, chars: str):
        self.chars = chars  # id i is chars[i]
        codes = np.array([ord(c) for c in chars], dtype=np.int64)
        self._order = np.argsort(codes)  # ids in code-point order, so encode can use searchsorted
        self._codes = codes[self._order]

    @classmethod
    def train(cls, text: str) -> "CharTokenizer":
        return cls("".join(sorted(set(text))))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str, unknown: str = "error") -> list[int]:
        """Token ids of text. Characters outside the vocabulary raise a UserError, or are dropped
        with unknown="drop" (used for the validation text, never for a user's prompt)."""
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        pos = np.searchsorted(self._codes, codes).clip(0, max(self.vocab_size - 1, 0))
        known = self._codes[pos] == codes if self.vocab_size else np.zeros(len(codes), bool)
        ids = self._order[pos]
        if not known.all():
            if unknown != "drop":
                bad = sorted(set(chr(c) for c in codes[~known].tolist()))
                shown = ", ".join(repr(c) for c in bad[:10]) + (", ..." if len(bad) > 10 else "")
                raise UserError(
                    f"the prompt holds characters the model never saw: {shown}; "
                    "use only characters from the training corpus"
                )
            ids = ids[known]
        return ids.tolist()

    def decode(self, ids) -> str:
        return "".join(self.chars[i] for i in ids)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "chars": self.chars}

    @classmethod
    def from_dict(cls, d: dict) -> "CharTokenizer":
        return cls(d["chars"])


TOKENIZERS = {"char": CharTokenizer, "bpe": BPE}  # BPE: glassbox.data.bpe, shared with text classification


def tokenizer_from_dict(d: dict):
    """Rebuild a tokenizer saved with `to_dict()` (e.g. from an artifact's tokenizer.json)."""
    if d.get("kind") not in TOKENIZERS:
        raise UserError(f"unknown tokenizer kind {d.get('kind')!r}; known kinds: {', '.join(TOKENIZERS)}")
    return TOKENIZERS[d["kind"]].from_dict(d)


def train_tokenizer(train_text: str, kind: str = "char", vocab_size: int | None = None):
    if kind == "char":
        return CharTokenizer.train(train_text)
    if kind == "bpe":
        vocab_size = 2048 if vocab_size is None else vocab_size
        tok = BPE.train(_chunks(train_text, 1 << 16), vocab_size)
        if tok.vocab_size < vocab_size:  # the model's size is set by --vocab-size: refuse rather than shrink it
            raise UserError(
                f"the training text supports only {tok.vocab_size} BPE tokens (every word is already one token), "
                f"fewer than vocab_size={vocab_size}; ask for vocab_size={tok.vocab_size} or less, or give more text"
            )
        return tok
    raise UserError(f"unknown tokenizer {kind!r}; choose one of: {', '.join(TOKENIZERS)}")


# --- Token ids on disk

def _chunks(text: str, size: int):
    """Pieces of about `size` characters, cut only after a '\\n' that has a non-space character on
    both sides: a boundary that the byte-level pre-tokenizer makes anyway, so encoding piece by
    piece gives exactly the ids of encoding the whole text."""
    start = 0
    while start < len(text):
        cut = text.find("\n", start + size)
        while cut != -1 and cut + 1 < len(text) and (text[cut - 1].isspace() or text[cut + 1].isspace()):
            cut = text.find("\n", cut + 1)
        end = len(text) if cut == -1 else cut + 1
        yield text[start:end]
        start = end


def token_dtype(vocab_size: int):
    """uint16 (2 bytes a token) when every id fits, else uint32."""
    return np.uint16 if vocab_size <= 65536 else np.uint32


def write_tokens(text: str, tokenizer, path, chunk_chars: int = 1 << 20, drop_unknown: bool = False) -> int:
    """Encode text chunk by chunk, appending the ids to a .bin file; returns the token count.
    drop_unknown: leave out characters a CharTokenizer does not know (for the validation text)."""
    dtype, n = token_dtype(tokenizer.vocab_size), 0
    with open(path, "wb") as f:
        for chunk in _chunks(text, chunk_chars):
            ids = tokenizer.encode(chunk, unknown="drop") if drop_unknown else tokenizer.encode(chunk)
            f.write(np.asarray(ids, dtype=dtype).tobytes())
            n += len(ids)
    return n


def open_tokens(path, vocab_size: int) -> np.ndarray:
    """The token ids of a .bin file as a read-only np.memmap (an empty array for an empty file)."""
    dtype = token_dtype(vocab_size)
    if Path(path).stat().st_size == 0:
        return np.zeros(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r")


def check_enough_tokens(n_tokens: int, block_size: int, split: str) -> None:
    if n_tokens < block_size + 1:
        raise UserError(
            f"corpus too small: the {split} split has {n_tokens} tokens, and block_size={block_size} "
            f"needs at least {block_size + 1}; give more text, or lower the block size"
        )


def prepare_corpus(path, folder, tokenizer: str = "char", vocab_size: int | None = None,
                   val_fraction: float = 0.1, block_size: int | None = None, given=None) -> dict:
    """Read, split, train the tokenizer on the training part, and write train.bin, val.bin,
    tokenizer.json and corpus.json into folder. Returns the corpus record (JSON-safe): what the
    model will know about, for the artifact's "knowledge cutoff".

    given: a saved model's tokenizer to use instead (--init). Characters a character tokenizer has no token for are
    left out of both parts, and the record counts them (`unknown_characters`); a corpus more than
    MOST_UNKNOWN of whose characters it cannot read is refused."""
    text = read_corpus(path)
    train_text, val_text = split_text(text, val_fraction)
    tok = given if given is not None else train_tokenizer(train_text, tokenizer, vocab_size)
    unknown = unknown_characters(text, tok) if given is not None else {}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n_train = write_tokens(train_text, tok, folder / TRAIN_BIN, drop_unknown=bool(unknown))
    n_val = write_tokens(val_text, tok, folder / VAL_BIN, drop_unknown=tok.kind == "char")
    if block_size is not None:
        check_enough_tokens(n_train, block_size, "training")
        check_enough_tokens(n_val, block_size, "validation")
    dropped = sorted(set(val_text) - set(tok.chars)) if tok.kind == "char" else []
    record = {
        "source": str(path),
        "sha256": fingerprint(text),
        "characters": {"total": len(text), "train": len(train_text), "val": len(val_text)},
        "tokens": {"train": n_train, "val": n_val},
        "val_fraction": val_fraction,
        "tokenizer": tok.kind,
        "vocab_size": tok.vocab_size,
        "dtype": np.dtype(token_dtype(tok.vocab_size)).name,
        "val_characters_not_in_vocabulary": "".join(dropped),  # dropped from val.bin
        **({"unknown_characters": unknown} if unknown else {}),  # a given tokenizer's: dropped from both
    }
    (folder / TOKENIZER_JSON).write_text(json.dumps(tok.to_dict()))
    (folder / CORPUS_JSON).write_text(json.dumps(record, indent=2))
    return record


MOST_UNKNOWN = 0.1  # a given character tokenizer must read at least 90% of a corpus's characters


def unknown_characters(text: str, tok) -> dict:
    """The characters of text a character tokenizer has no token for: {"characters": them, sorted, "count": how many
    times they occur, "share": of all characters} ({} when there are none, and always for BPE, which reads any text).
    Refused in one line when they are more than MOST_UNKNOWN of the text."""
    if tok.kind != "char":
        return {}
    counts = {c: n for c, n in Counter(text).items() if c not in set(tok.chars)}
    if not counts:
        return {}
    n, shown = sum(counts.values()), ", ".join(repr(c) for c in sorted(counts, key=counts.get, reverse=True)[:8])
    if n > MOST_UNKNOWN * len(text):
        raise UserError(f"{n / len(text):.0%} of the corpus's characters are not among the {tok.vocab_size} the "
                        f"model's tokenizer reads ({shown}, ...): a character model cannot continue on text written "
                        f"mostly in other characters; train a new model on it (without --init)")
    return {"characters": "".join(sorted(counts)), "count": n, "share": n / len(text)}


def load_prepared(folder):
    """(tokenizer, train ids, val ids, record) from a folder written by prepare_corpus."""
    folder = Path(folder)
    tok = tokenizer_from_dict(json.loads((folder / TOKENIZER_JSON).read_text()))
    record = json.loads((folder / CORPUS_JSON).read_text())
    train = open_tokens(folder / TRAIN_BIN, tok.vocab_size)
    val = open_tokens(folder / VAL_BIN, tok.vocab_size)
    return tok, train, val, record


# --- Batches

class RandomWindows:
    """Training batches: batch_size windows of block_size + 1 tokens at random offsets (as
    nanoGPT's get_batch). Has its own generator, so a resumed run draws the same batches.

    batch_size is the global batch: under data-parallel training (world_size processes) every process
    draws the same batch_size offsets and keeps its equal slice, so together they train on the windows
    one process would, with one generator state for all: a checkpoint written by rank 0 resumes any
    number of processes."""

    def __init__(self, ids, block_size: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1):
        check_enough_tokens(len(ids), block_size, "training")
        self.ids, self.block_size, self.batch_size = ids, block_size, batch_size
        self.rank, self.share = rank, distributed.share(batch_size, world_size)
        self.generator = torch.Generator().manual_seed(seed)
        self.steps = 0  # batches drawn so far
        self._window = np.arange(block_size + 1)  # (T + 1,)

    @property
    def epoch(self) -> int:
        """Completed passes over the training tokens (tokens seen / training tokens)."""
        return self.steps * self.batch_size * self.block_size // len(self.ids)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        ix = torch.randint(len(self.ids) - self.block_size, (self.batch_size,), generator=self.generator)
        ix = ix[self.rank * self.share:(self.rank + 1) * self.share]
        w = torch.from_numpy(self.ids[ix.numpy()[:, None] + self._window].astype(np.int64))  # (B, T + 1)
        self.steps += 1
        return w[:, :-1].contiguous(), w[:, 1:].contiguous()  # (B, T), (B, T)

    def state_dict(self) -> dict:
        state = self.generator.get_state().numpy().tobytes()
        return {"generator": base64.b64encode(state).decode("ascii"), "steps": self.steps,
                "block_size": self.block_size, "batch_size": self.batch_size}

    def load_state_dict(self, d: dict) -> None:
        if (d["block_size"], d["batch_size"]) != (self.block_size, self.batch_size):
            raise UserError(
                f"the checkpoint drew batches of {d['batch_size']} x {d['block_size']} tokens, this run "
                f"{self.batch_size} x {self.block_size}; resume with the checkpoint's batch and block size"
            )
        state = np.frombuffer(base64.b64decode(d["generator"]), dtype=np.uint8).copy()
        self.generator.set_state(torch.from_numpy(state))
        self.steps = int(d["steps"])


def val_windows(ids, block_size: int, max_windows: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Validation inputs and targets: non-overlapping windows in order, int64 (N, T) each. With
    max_windows, that many windows spread evenly over the whole validation text."""
    check_enough_tokens(len(ids), block_size, "validation")
    n = (len(ids) - 1) // block_size
    starts = np.arange(n) * block_size
    if max_windows is not None and max_windows < n:
        starts = starts[np.linspace(0, n - 1, max_windows).round().astype(np.int64)]
    w = ids[starts[:, None] + np.arange(block_size + 1)].astype(np.int64)  # (N, T + 1)
    return torch.from_numpy(w[:, :-1].copy()), torch.from_numpy(w[:, 1:].copy())

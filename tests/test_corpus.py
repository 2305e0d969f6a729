"""Language-model corpora: reading, errors, the contiguous split, tokenizers, token files on disk,
and batches that resume exactly."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from glassbox.data.corpus import (
    CharTokenizer, RandomWindows, load_prepared, open_tokens, prepare_corpus, read_corpus, split_text,
    token_dtype, tokenizer_from_dict, train_tokenizer, val_windows, write_tokens,
)
from glassbox.errors import UserError

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SHAKESPEARE = DATA / "tinyshakespeare" / "input.txt"


@pytest.fixture(scope="module")
def shakespeare():
    if not SHAKESPEARE.exists():
        pytest.skip(f"{SHAKESPEARE} not found")
    return read_corpus(SHAKESPEARE)


def test_folder_is_read_sorted_and_joined_with_newlines(tmp_path):
    (tmp_path / "b.txt").write_text("second")
    (tmp_path / "a.txt").write_bytes(b"\xef\xbb\xbffirst\r\nline")  # BOM and Windows line ending
    (tmp_path / ".hidden").write_text("never read")
    assert read_corpus(tmp_path) == "first\nline\nsecond"


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"  \n\n ", "empty"),
    (b"abc\x00def", "binary file"),
    ("caf\u00e9".encode("latin-1"), "not UTF-8"),
])
def test_bad_files_raise_user_errors(tmp_path, content, message):
    path = tmp_path / "corpus.txt"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        read_corpus(path)


def test_binary_file_in_a_folder_is_named(tmp_path):
    (tmp_path / "a.txt").write_text("fine text")
    (tmp_path / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(UserError, match="b.png is a binary file"):
        read_corpus(tmp_path)


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_corpus(tmp_path / "nope.txt")
    with pytest.raises(UserError, match="holds no files"):
        read_corpus(tmp_path)


def test_split_is_contiguous(shakespeare):
    train, val = split_text(shakespeare)
    assert train + val == shakespeare
    assert len(val) == pytest.approx(0.1 * len(shakespeare), abs=1)
    assert val.startswith(shakespeare[len(train):len(train) + 100])


def test_char_tokenizer_round_trip_and_unknown_characters(shakespeare):
    train, val = split_text(shakespeare)
    tok = CharTokenizer.train(train)
    assert tok.vocab_size == len(set(train)) == 65
    assert tok.decode(tok.encode(val)) == val
    again = tokenizer_from_dict(json.loads(json.dumps(tok.to_dict())))
    assert again.encode(val[:1000]) == tok.encode(val[:1000])
    with pytest.raises(UserError, match=r"never saw: '@'; use only"):
        CharTokenizer("abc ").encode("a b@")
    with pytest.raises(UserError, match=r"'@', 'é'; use only characters"):
        CharTokenizer("abc ").encode("a é b@")
    assert CharTokenizer("abc ").encode("a é b@", unknown="drop") == [0, 3, 3, 1]


def test_bpe_round_trip_chunking_and_save(shakespeare):
    train = shakespeare[:200_000]
    tok = train_tokenizer(train, "bpe", vocab_size=500)
    assert tok.vocab_size == 500
    ids = tok.encode(train)
    assert len(ids) < 0.6 * len(train)  # merges do compress
    assert tok.decode(ids) == train
    unseen = "naïve café — 東京 🙂\n\n\tend"  # characters never in the training text: byte fallback
    assert tok.decode(tok.encode(unseen)) == unseen
    again = tokenizer_from_dict(json.loads(json.dumps(tok.to_dict())))
    assert again.encode(unseen) == tok.encode(unseen)


def test_bpe_vocab_sizes_the_corpus_cannot_support():
    with pytest.raises(UserError, match="at least 256"):
        train_tokenizer("some text " * 100, "bpe", vocab_size=100)
    with pytest.raises(UserError, match="supports only"):
        train_tokenizer("to be or not to be\n" * 50, "bpe", vocab_size=5000)


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_token_file_is_compact_and_equals_whole_text_encoding(tmp_path, shakespeare, kind):
    text = shakespeare[:100_000]
    tok = CharTokenizer.train(text) if kind == "char" else train_tokenizer(text, "bpe", 400)
    n = write_tokens(text, tok, tmp_path / "t.bin", chunk_chars=5_000)  # ~20 chunks
    assert (tmp_path / "t.bin").stat().st_size == 2 * n
    ids = open_tokens(tmp_path / "t.bin", tok.vocab_size)
    assert isinstance(ids, np.memmap) and ids.dtype == np.uint16
    assert ids.tolist() == tok.encode(text)
    assert token_dtype(65536) == np.uint16 and token_dtype(65537) == np.uint32


def test_prepare_and_load(tmp_path, shakespeare):
    record = prepare_corpus(SHAKESPEARE, tmp_path, block_size=64)
    assert record["tokens"] == {"train": 1_003_854, "val": 111_540}
    assert record["vocab_size"] == 65 and record["dtype"] == "uint16"
    assert len(record["sha256"]) == 64
    tok, train, val, again = load_prepared(tmp_path)
    assert again == record
    assert tok.decode(train[:14].tolist()) == "First Citizen:"
    assert tok.decode(val.tolist()) == split_text(shakespeare)[1]


def test_too_small_corpus(tmp_path):
    (tmp_path / "tiny.txt").write_text("To be, or not to be: that is the question.\n" * 3)
    with pytest.raises(UserError, match=r"validation split has 13 tokens.*needs at least 65"):
        prepare_corpus(tmp_path / "tiny.txt", tmp_path / "out", block_size=64)
    with pytest.raises(UserError, match="training split has 10 tokens"):
        RandomWindows(np.arange(10, dtype=np.uint16), block_size=16, batch_size=4)


def test_random_windows_shift_epoch_and_exact_resume():
    ids = np.arange(1000, dtype=np.uint16)
    batches = RandomWindows(ids, block_size=16, batch_size=4, seed=3)
    x, y = batches.next()
    assert x.shape == y.shape == (4, 16) and x.dtype == y.dtype == torch.int64
    assert torch.equal(y, x + 1)  # ids count up, so the next token is id + 1
    for _ in range(30):
        batches.next()
    assert batches.epoch == 31 * 4 * 16 // 1000 == 1
    state = json.loads(json.dumps(batches.state_dict()))
    expected = [batches.next() for _ in range(3)]
    resumed = RandomWindows(ids, block_size=16, batch_size=4, seed=999)
    resumed.load_state_dict(state)
    for (x1, y1), (x2, y2) in zip(expected, [resumed.next() for _ in range(3)]):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert resumed.steps == batches.steps == 34
    with pytest.raises(UserError, match="batch and block size"):
        RandomWindows(ids, block_size=8, batch_size=4).load_state_dict(state)


def test_val_windows_are_in_order_and_do_not_overlap():
    ids = np.arange(100, dtype=np.uint16)
    X, Y = val_windows(ids, block_size=10)
    assert X.shape == (9, 10)  # 99 predicted positions fit 9 full windows
    assert torch.equal(X.flatten(), torch.arange(90))
    assert torch.equal(Y, X + 1)
    X, Y = val_windows(ids, block_size=10, max_windows=3)
    assert X[:, 0].tolist() == [0, 40, 80]  # spread over the whole validation text


def test_validation_characters_unknown_to_the_tokenizer_are_dropped_and_recorded(tmp_path):
    (tmp_path / "c.txt").write_text("abcab " * 300 + "xyz@")  # '@', 'x', 'y', 'z' only in the last 10%
    record = prepare_corpus(tmp_path / "c.txt", tmp_path / "out", block_size=8)
    assert record["val_characters_not_in_vocabulary"] == "@xyz"
    assert record["tokens"]["val"] == record["characters"]["val"] - 4
    tok, _, val, _ = load_prepared(tmp_path / "out")
    assert tok.decode(val[-6:].tolist()) == "abcab "

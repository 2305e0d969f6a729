"""The one byte-level BPE (glassbox.data.bpe): any UTF-8 text round-trips, the saved form loads back to
the same ids, artifacts written by the two BPEs it replaced load and encode as they did, and a
vocabulary too small to hold the bytes is refused in one line."""
import json
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from glassbox.data.bpe import BPE, BPEEncoder
from glassbox.data.corpus import read_corpus, split_text, tokenizer_from_dict, train_tokenizer
from glassbox.data.encoders import encoder_from_dict
from glassbox.data.text import load_text
from glassbox.errors import UserError

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SHAKESPEARE = DATA / "tinyshakespeare" / "input.txt"
SMS = DATA / "sms_spam_collection" / "SMSSpamCollection"

HARD = ["", " ", "  two leading spaces", "trailing\n\n", "tab\there\r\nCRLF", "naïve café — ﬁne",  # ligature: NFKC would change it
        "東京タワー", "Привет, мир", "مرحبا بالعالم", "👩‍👩‍👧 family 🏳️‍🌈", "e\u0301 combining", "\u00a0no-break space",
        "NUL\x00byte", "UPPER lower MiXeD"]


@pytest.fixture(scope="module")
def shakespeare():
    if not SHAKESPEARE.exists():
        pytest.skip(f"{SHAKESPEARE} not found")
    return split_text(read_corpus(SHAKESPEARE))


@pytest.fixture(scope="module")
def bpe(shakespeare):
    return BPE.train(shakespeare[0][:200_000], vocab_size=600)


@pytest.fixture(scope="module")
def sms():
    if not SMS.exists():
        pytest.skip(f"{SMS} not found")
    return load_text(SMS, text_col="text", label_col="label", columns=["label", "text"]).inputs


@pytest.mark.parametrize("text", HARD)
def test_hard_strings_round_trip(bpe, text):
    assert bpe.decode(bpe.encode(text)) == text


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_round_trips(bpe, text):
    ids = bpe.encode(text)
    assert all(0 <= i < bpe.vocab_size for i in ids)
    assert bpe.decode(ids) == text


def test_merges_compress_and_the_saved_form_gives_the_same_ids(bpe, shakespeare):
    val = shakespeare[1][:50_000]
    ids = bpe.encode(val)
    assert bpe.vocab_size == 600
    assert len(ids) < 0.55 * len(val)  # 344 merges learned on the training text also compress unseen text
    saved = json.loads(json.dumps(bpe.to_dict()))
    assert set(saved) == {"kind", "tokenizer_json"}
    again = BPE.from_dict(saved)
    assert again.encode(val) == ids
    assert again.encode_batch(HARD) == [bpe.encode(t) for t in HARD]


def test_vocabulary_too_small_for_the_bytes_is_refused_in_one_line(sms):
    with pytest.raises(UserError, match=r"needs at least 256 tokens.*got vocab_size=255") as e:
        BPE.train(["some text"] * 10, vocab_size=255)
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match=r"at least 258 ids \(one per byte, padding and \[CLS\]\); got vocab_size=257") as e:
        BPEEncoder(vocab_size=257).fit(sms[:100])
    assert "\n" not in str(e.value)
    assert BPEEncoder(vocab_size=258).fit(sms[:100]).vocab_size == 258  # the bytes, padding and [CLS]: no merges


def test_encoder_ids_are_cls_then_bpe_ids_shifted_by_two(sms):
    enc = BPEEncoder(vocab_size=1000, max_len=32).fit(sms[:2000])
    assert enc.vocab_size == 1000
    texts = sms[:50] + ["", "Free entry", " Free entry", "東京 🙂 never seen in training"]
    ids = enc.encode(texts)
    assert ids.shape == (54, 32) and ids.dtype == torch.int64  # some SMS fill all 32: longer ones are cut
    assert (ids[:, 0] == enc.cls_id).all() and enc.cls_id == 1
    assert (ids[50, 1:] == 0).all()  # an empty text is [CLS] then padding
    assert 0 < int(ids.max()) < enc.vocab_size
    # A text opens with a space, so its first word has the tokens it has after another word
    assert torch.equal(ids[51], ids[52])
    free = enc.bpe_.encode(" Free entry")
    assert ids[51, 1:1 + len(free)].tolist() == [t + 2 for t in free]
    n = len(enc.bpe_.encode(" 東京 🙂 never seen in training"))
    assert enc.bpe_.decode((ids[53, 1:1 + n] - 2).tolist()) == " 東京 🙂 never seen in training"
    again = encoder_from_dict(json.loads(json.dumps(enc.to_dict())))
    assert again.to_dict() == enc.to_dict() and torch.equal(again.encode(texts), ids)


def old_lm_tokenizer(text: str, vocab_size: int):
    """What glassbox.data.corpus.BPETokenizer.train built before the shared BPE."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator([text], trainer=trainer)
    return tok


def old_classifier_tokenizer(texts: list[str], vocab_size: int):
    """What glassbox.data.text.BPEEncoder.fit built before the shared BPE: [PAD], [UNK], [CLS] as ids 0-2,
    NFKC and lower-casing, and the pre-tokenizer adds the leading space."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=["[PAD]", "[UNK]", "[CLS]"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def test_an_old_language_model_tokenizer_loads_and_encodes_as_it_did(shakespeare):
    train, val = shakespeare[0][:100_000], shakespeare[1][:20_000]
    old = old_lm_tokenizer(train, 500)
    saved = {"kind": "bpe", "tokenizer_json": old.to_str()}  # the old tokenizer.json and manifest "preprocessing"
    tok = tokenizer_from_dict(json.loads(json.dumps(saved)))
    assert tok.vocab_size == 500 and tok.encode(val) == old.encode(val).ids
    assert tok.decode(tok.encode(val)) == val
    # and training today gives that very tokenizer: language models see the ids they always saw
    assert train_tokenizer(train, "bpe", 500).to_dict() == saved


def test_an_old_classifier_encoder_loads_and_encodes_as_it_did(sms):
    old = old_classifier_tokenizer(sms[:2000], 1000)
    saved = {"type": "bpe", "vocab_size": 1000, "max_len": 32, "min_frequency": 2, "tokenizer": old.to_str()}
    enc = encoder_from_dict(json.loads(json.dumps(saved)))
    texts = sms[2000:2200] + ["", "\u00a0starts with a no-break space", "FREE entry", "free entry"]
    rows = [[2] + e.ids[:31] for e in old.encode_batch(texts)]  # the old encode: [CLS] = 2, then the ids
    expected = torch.zeros(len(rows), max(map(len, rows)), dtype=torch.int64)
    for i, r in enumerate(rows):
        expected[i, :len(r)] = torch.tensor(r)
    assert enc.vocab_size == old.get_vocab_size()
    assert torch.equal(enc.encode(texts), expected)
    assert torch.equal(expected[-2], expected[-1])  # it still lower-cases, as the model was trained
    resaved = encoder_from_dict(json.loads(json.dumps(enc.to_dict())))  # re-saved in today's form
    assert torch.equal(resaved.encode(texts), expected)


@pytest.mark.parametrize("saved", [{"kind": "bpe", "tokenizer_json": "{not json"},
                                   {"kind": "bpe", "tokenizer_json": '{"model": {"type": "BPE"}}'},
                                   {"kind": "bpe"}])
def test_an_unreadable_saved_tokenizer_is_refused_in_one_line(saved):
    with pytest.raises(UserError, match=r"the saved BPE tokenizer cannot be read \(.*\); re-export") as e:
        tokenizer_from_dict(saved)
    assert "\n" not in str(e.value)

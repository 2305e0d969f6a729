"""Text classification: the loader on the real SMS Spam Collection, its bad-input errors, the encoders
(stable ids, JSON round trips) and both text models; the BPE encoder is tested in test_bpe.py."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from glassbox.config import KIND_DEFAULTS, TrainConfig
from glassbox.data.encoders import encoder_from_dict
from glassbox.data.split import split_indices
from glassbox.data.text import HashedNgramEncoder, load_text, text_tags
from glassbox.errors import UserError
from glassbox.models.fasttext import FastText, FastTextConfig
from glassbox.models.text_transformer import TextTransformer, TextTransformerConfig
from glassbox.train.loop import fit, predict_logits

ROOT = Path(__file__).resolve().parents[1]
SMS = ROOT.parent / "shared" / "data" / "sms_spam_collection" / "SMSSpamCollection"


@pytest.fixture
def one_thread():
    """Small models train as fast on one thread, and far faster when other processes share the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def sms():
    if not SMS.exists():
        pytest.skip(f"{SMS} not found (the shared data folder sits beside the repository)")
    return load_text(SMS, text_col="text", label_col="label", columns=["label", "text"])


def test_loads_headerless_sms_tsv(sms):
    assert len(sms) == 5574 and sms.kind == "text"
    assert sms.classes == ["ham", "spam"]
    assert np.bincount(sms.labels).tolist() == [4827, 747]
    assert sms.lines[:3] == [1, 2, 3] and sms.lines[-1] == 5574
    assert sms.inputs[1] == "Ok lar... Joking wif u oni..."
    assert sms.keys[1] == "ok lar... joking wif u oni..."


def test_loads_csv_with_header_and_groups(tmp_path):
    p = tmp_path / "reviews.csv"
    p.write_text('text,label,lang\n"Great,  GREAT film",pos,en\nawful,neg,en\n"great, great film",pos,fr\n')
    ex = load_text(p, text_col="text", label_col="label", group_cols=["lang"])
    assert ex.classes == ["neg", "pos"] and ex.lines == [2, 3, 4]
    assert ex.keys[0] == ex.keys[2] == "great, great film"  # whitespace and case do not make a new text
    assert ex.groups == {"lang": ["en", "en", "fr"]}


@pytest.mark.parametrize("content, kwargs, expected", [
    ("text,label\nhi,a\nyo,b\n", {"text_col": "body", "label_col": "label"}, "its columns are: text, label"),
    ("text,label\n ,a\n\"\",b\n", {"text_col": "text", "label_col": "label"}, "every text"),
    ("text,label\nhi,a\nyo,a\n", {"text_col": "text", "label_col": "label"}, "only one value"),
    ("text,label\nhi,a\nyo,b,extra\n", {"text_col": "text", "label_col": "label"}, "line 3 has 3 fields"),
])
def test_bad_input_is_one_clear_user_error(tmp_path, content, kwargs, expected):
    p = tmp_path / "data.csv"
    p.write_text(content)
    with pytest.raises(UserError, match=expected):
        load_text(p, **kwargs)


def test_binary_file_is_a_user_error(tmp_path):
    p = tmp_path / "model.bin"
    p.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(UserError, match="not a text file"):
        load_text(p, text_col="text", label_col="label")


def test_hashed_ngram_features_and_round_trip(sms):
    x = HashedNgramEncoder(max_len=64, tags=False).encode(["hi", "", "Hi", "hi hi"])
    # "hi": the word, its shape, and the char n-grams of "<hi>" (2-grams: 3, 3-grams: 2, 4-grams: 1) = 8
    assert (x[0] > 0).sum() == 8 and (x[1] == 0).all()
    # "Hi": same lower-cased word, other shape ("Xx"), and 5 of its 6 char n-grams hold the capital H
    assert (x[0] != x[2]).sum() == 6 and x[0, 0] == x[2, 0]
    # each n-gram counts once per text: "hi hi" adds only the bigram "hi hi"
    assert (x[3] > 0).sum() == 9
    x = HashedNgramEncoder(lowercase_chars=False, distinct=False, tags=False).encode(["hi hi"])
    assert (x[0] > 0).sum() == 17
    x = HashedNgramEncoder(lowercase_chars=True, tags=False).encode(["hi", "Hi"])
    assert (x[0] != x[1]).sum() == 1 and x[0, 1] != x[1, 1]  # lower-cased chars: only the shape differs
    # tags come first: "hi" and "" both are 0-19 characters with no digit (2 tags); the empty text has only those
    x = HashedNgramEncoder().encode(["hi", ""])
    assert (x[0] > 0).sum() == 10 and (x[1] > 0).sum() == 2 and torch.equal(x[0, :2], x[1, :2])
    enc = HashedNgramEncoder(max_len=256).fit(sms.inputs[:4000])
    ids = enc.encode(sms.inputs)
    assert ids.shape[1] == 256 and 0 <= ids.min() and ids.max() < enc.vocab_size
    again = encoder_from_dict(json.loads(json.dumps(enc.to_dict())))
    assert again.vocab_size == enc.vocab_size and again.word_vocab_ == enc.word_vocab_
    assert torch.equal(again.encode(sms.inputs), ids)


def test_text_tags_name_what_words_cannot():
    assert text_tags("Call 09061701461 to claim £900 at www.prize.com now") == \
        ["len2", "digits4", "url", "money", "long_number"]      # 40-59 characters, 11-15 digits
    assert text_tags("") == ["len0", "digits0"] and text_tags("ok see you at 7") == ["len0", "digits1"]


def test_word_level_ids_come_first(sms):
    enc = HashedNgramEncoder().fit(sms.inputs[:3000])
    words = HashedNgramEncoder(char_min=0, tags=False)._features(["Free entry in 2 a wkly comp"])[0]
    chars = HashedNgramEncoder(tags=False)._features(["Free"])[0][2:]  # "<Free>"'s character n-grams
    word_ids, char_ids = enc.remap_[words], enc.remap_[chars]
    assert 0 < enc.word_vocab_ < enc.vocab_size - 1
    assert ((word_ids >= 1) & (word_ids <= enc.word_vocab_)).all()   # every one of them seen in 3,000 texts
    assert (char_ids[char_ids > 0] > enc.word_vocab_).all()


def test_artifacts_from_before_tags_encode_as_they_did(sms):
    """An encoder saved without tags and word-level ids numbers its buckets in bucket order, as then."""
    enc = HashedNgramEncoder(tags=False).fit(sms.inputs[:2000])
    d = enc.to_dict()
    del d["tags"], d["word"]
    old = encoder_from_dict(d)
    buckets, text_of = HashedNgramEncoder(tags=False)._features(sms.inputs[:50])
    expected = np.where(enc.kept_, np.cumsum(enc.kept_), 0)[buckets]
    got = old.encode(sms.inputs[:50])
    assert old.tags is False and old.word_vocab_ == 0
    for i in range(50):
        assert set(got[i][got[i] > 0].tolist()) == set(expected[(text_of == i) & (expected > 0)].tolist())


def test_hashed_ids_are_stable_across_processes_and_versions():
    """Python's hash() is salted per process; the encoder's ids must not be, or saved models would
    read new texts wrongly. These ids were recorded once; they must never change."""
    ids = HashedNgramEncoder(buckets=1000, tags=False).encode(["Free entry 2 win!!"])[0, :10].tolist()
    assert ids == [362, 954, 646, 849, 473, 43, 20, 75, 767, 608]
    ids = HashedNgramEncoder(buckets=1000).encode(["Free entry 2 win!!"])[0, :4].tolist()
    assert ids == [12, 818, 362, 954]  # the text's two tags, then the same n-grams


def test_fasttext_learns_spam_through_fit(sms, one_thread):
    split = split_indices(sms.keys, sms.labels, (0.8, 0.1, 0.1), seed=0)
    enc = HashedNgramEncoder().fit([sms.inputs[i] for i in split["train"]])
    x, y = enc.encode(sms.inputs), torch.from_numpy(sms.labels)
    tr, va, te = (torch.from_numpy(split[k]) for k in ("train", "val", "test"))
    model = FastText(FastTextConfig(enc.vocab_size, 2, word_vocab=enc.word_vocab_))
    cfg = TrainConfig(**{**KIND_DEFAULTS["text"], "epochs": 5}, quiet=True, device="cpu")
    result = fit(model, (x[tr], y[tr]), (x[va], y[va]), config=cfg)
    pred = predict_logits(result.model, x[te]).argmax(-1).numpy()
    truth = sms.labels[split["test"]]
    tp = ((pred == 1) & (truth == 1)).sum()
    f1 = 2 * tp / ((pred == 1).sum() + (truth == 1).sum())
    # Always answering "spam" scores F1 = 2 * 0.134 / 1.134 = 0.24; a working model is far above that.
    assert f1 > 0.93, f1


def test_fasttext_ignores_padding():
    model = FastText(FastTextConfig(100, 2, dim=8, hidden=16)).eval()
    ids = torch.tensor([[5, 7, 9]])
    padded = torch.tensor([[5, 7, 9, 0, 0, 0]])
    assert torch.allclose(model(ids), model(padded))


def test_two_bags_are_pooled_apart():
    """word_vocab=10: ids 1..10 form the word bag, the rest the character bag, each sum / sqrt(own count)."""
    model = FastText(FastTextConfig(100, 2, dim=4, word_vocab=10)).eval()
    e, head = model.embed.weight.detach(), model.head
    ids = torch.tensor([[3, 42, 7, 0], [55, 0, 0, 0]])
    word = torch.stack([(e[3] + e[7]) / 2 ** 0.5, torch.zeros(4)])
    chars = torch.stack([e[42], e[55]])
    assert torch.allclose(model(ids), head(torch.cat([word, chars], dim=1)), atol=1e-6)
    assert head.in_features == 8


def test_text_transformer_ignores_padding_and_learns(one_thread):
    torch.manual_seed(0)
    cfg = TextTransformerConfig(vocab_size=50, n_classes=2, max_len=16, n_layer=1, n_embd=32, dropout=0.0)
    model = TextTransformer(cfg).eval()
    ids = torch.tensor([[2, 5, 7, 9]])
    assert torch.allclose(model(ids), model(torch.tensor([[2, 5, 7, 9, 0, 0]])), atol=1e-5)
    # Class = whether token 10 occurs: a few dozen AdamW steps must learn it.
    x = torch.randint(11, 50, (256, 8))
    x[:, 0] = 2
    y = torch.randint(0, 2, (256,))
    x[y == 1, 3] = 10
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1, loss.item()


def test_free_text_in_a_table_is_recognised(sms):
    import pandas as pd

    from glassbox.data.kinds.table import free_text_columns

    n = 500
    frame = pd.DataFrame({"message": sms.inputs[:n], "kind": ["a", "b"] * (n // 2),
                          "amount": [str(1000.5 + i) for i in range(n)]})
    assert free_text_columns(frame) == ["message"]   # not the category, not the long distinct numbers

"""A text corpus for a next-token language model (`--task lm`): a text file or a folder of them, no labels. It has no
Examples: the language-model run reads it as token ids (glassbox/data/corpus.py::prepare_corpus), and a client sends
`glassbox serve` a prompt as text."""
from __future__ import annotations

from glassbox.config import TrainConfig


class Corpus:
    name, plural, wire = "corpus", "lines of text", "text"
    described = "a text corpus: --task lm"
    encoder_types = ()             # its artifact holds a tokenizer, not an encoder
    settings = frozenset()         # its own settings belong to its model (the GPT: --tokenizer, --block-size, ...)
    fold = None                    # no labels, no label-error check
    slow_to_parse = False
    guesses_regression = False
    # Its audit is audit/corpus.py's (repeated lines, near-copied passages, validation text in training), on lines
    # read from the files, not Examples: the Examples audit's words and checks below are never asked of it.
    counted, identical = "lines", "once whitespace and case are ignored"
    audit_checks = frozenset()
    never_missing = ""
    shows_copied_input = True
    chance_matches = False

    def detect(self, data: str, cfg: TrainConfig) -> bool:
        return cfg.task == "lm"

    def prepare(self, data: str, cfg: TrainConfig, folder, tokenizer=None) -> dict:
        """Split the corpus, train the tokenizer on its training part (or use `tokenizer`, a saved model's) and write
        the token ids into `folder`."""
        from glassbox.data.corpus import prepare_corpus

        return prepare_corpus(data, folder, tokenizer=cfg.tokenizer,
                              vocab_size=cfg.vocab_size if cfg.tokenizer == "bpe" else None,
                              val_fraction=cfg.val_fraction, block_size=cfg.block_size, given=tokenizer)

"""The report's sections for a next-token language model: summary, perplexity and samples,
and the memorisation checks of memorization.json."""
from __future__ import annotations

import math

from glassbox.report.html import count, esc, is_number, num, para, pct, processes, seconds, table
from glassbox.report.load import Run
from glassbox.report.worries import top_worries


def _ppl(loss) -> str:
    return f"{math.exp(loss):,.2f}" if is_number(loss) and loss < 700 else "–"


def what_was_trained(run: Run) -> str:
    s = run.summary
    tokens = ((s.corpus or {}).get("tokens") or {}).get("train")
    unit = "character" if s.tokenizer == "char" else "token"
    return (f"A {(s.model or 'language model').upper()} with {count(s.n_params)} weights learned to "
            f"predict the next {unit} of {s.data or 'its text'}, from {count(tokens)} training tokens "
            f"({s.tokenizer or ''} tokenizer, {count(s.vocab_size)} tokens in its vocabulary), in "
            f"{count(s.steps)} steps ({seconds(s.train_seconds)}){processes(s)}.")


def summary(run: Run) -> str:
    s, chance = run.summary, run.summary.chance
    v = s.vocab_size
    how_good = (f"On validation text it never trained on, its perplexity is {num(s.perplexity, 2)}: on average "
                f"it is as unsure as if it were choosing among that many tokens. A uniform guess over its "
                f"{count(v)}-token vocabulary has perplexity {count(v)}. It names the next token right "
                f"{pct(s.val_accuracy)} of the time (always the most common token: "
                f"{pct(chance.majority_accuracy)}).")
    items = "".join(f"<li>{esc(w)}</li>" for w in top_worries(s, run.audit, run.memorization))
    rows = [["training text", num(s.train_loss), _ppl(s.train_loss), "–"],
            ["validation text", num(s.val_loss), _ppl(s.val_loss), pct(s.val_accuracy)],
            [f"uniform guess over {count(v)} tokens (chance, ln V)", num(s.chance_loss),
             _ppl(s.chance_loss), pct(1 / v) if v else "–"],
            [f"the saved model it started from ({s.init.get('from')})" if s.init else
             "the untrained model (random weights)", num(chance.untrained_loss),
             _ppl(chance.untrained_loss), pct(chance.untrained_accuracy)]]
    return (para(what_was_trained(run), "lead") + para(how_good, "lead")
            + "<h3>What to worry about most</h3>"
            + (f'<ol class="worries">{items}</ol>' if items else para("Nothing in this run stands out."))
            + "<h3>Scores at a glance</h3>"
            + table(["", "loss", "perplexity", "next-token accuracy"], rows, {1, 2, 3}))


def continued(run: Run) -> str:
    """--init: the saved model's loss on this corpus and on its own held-out text, before this run and after."""
    init = run.summary.init
    if not isinstance(init, dict):
        return ""
    new, old = init.get("new_text") or {}, init.get("original_text")
    html = para(f"This run did not start from random weights: it continued training the saved model {esc(init.get('from'))} "
                f"(trained on {esc(init.get('trained_on'))}), with its tokenizer and sizes. The loss on this corpus's "
                f"validation text shows what it adapted to; the loss on its own held-out text, what it forgot.", "lead")
    rows = [["this corpus's validation text", num(new.get("before")), num(new.get("after")), _change(new)]]
    if isinstance(old, dict):
        rows.append([f"its own held-out text ({esc(old.get('source'))})", num(old.get("before")), num(old.get("after")),
                     _change(old)])
    html += table(["", "loss before", "loss after", "change"], rows, {1, 2, 3})
    if not isinstance(old, dict) and init.get("original_text_missing"):
        html += para(esc(init["original_text_missing"]))
    unknown = init.get("unknown_characters")
    if isinstance(unknown, dict):
        html += para(f"Its tokenizer has no token for {count(len(unknown.get('characters') or ''))} of this corpus's "
                     f"characters ({esc(', '.join(repr(c) for c in (unknown.get('characters') or '')[:20]))}): they "
                     f"were left out, {count(unknown.get('count'))} characters ({pct(unknown.get('share'))} of the "
                     f"text).")
    return html


def _change(row: dict) -> str:
    before, after = row.get("before"), row.get("after")
    return f"{after - before:+.4f}" if is_number(before) and is_number(after) else "–"


def samples(run: Run) -> str:
    s = run.summary
    texts = [t for t in s.samples or [] if isinstance(t, str)]
    if not texts and not is_number(s.perplexity):
        return ""
    html = para(f"Perplexity {num(s.perplexity, 2)} on validation text (training text: "
                f"{num(s.train_perplexity, 2)}); it read {count(s.tokens_per_second)} tokens per "
                f"second while training.")
    if texts:
        html += para(f"{len(texts)} samples the model wrote, each starting from the same few characters of "
                     f"validation text. They show the style it picked up, not facts:")
        html += "".join(f"<pre>{esc(t)}</pre>" for t in texts)
    return html


def memorisation(run: Run) -> str:
    m = run.memorization
    if not m:
        sentence = run.summary.memorization
        return para(sentence) if sentence is not None else ""
    html = para(m.get("summary") or m.get("sentence") or "")
    gen = {row.get("n"): row for row in (m.get("novelty") or {}).get("by_n") or []}
    ref = {row.get("n"): row for row in (m.get("novelty_of_held_out_text") or {}).get("by_n") or []}
    if gen:
        html += "<h3>Does generated text copy the training text?</h3>"
        html += para("The share of the generated text's character n-grams that appear word for word somewhere in the "
                     "training text, next to the same share for real validation text of the same length (some sharing "
                     "is just language).")
        rows = [[f"{n} characters", pct(row.get("share")), pct((ref.get(n) or {}).get("share")), count(row.get("ngrams"))]
                for n, row in gen.items()]
        html += table(["stretch length", "generated text", "held-out human text", "stretches checked"], rows, {1, 2, 3})
        copied = [e for e in (m.get("novelty") or {}).get("examples") or [] if isinstance(e, str)]
        if copied:
            html += para("Copied stretches:") + "".join(f"<pre>{esc(e)}</pre>" for e in copied)
    ext = m.get("extraction") or {}
    if ext.get("train"):
        html += "<h3>Does it recite training text when given its start?</h3>"
        html += para(f"Given {ext.get('prefix_len')} tokens of a passage, does greedy decoding continue it exactly for "
                     f"the next {ext.get('suffix_len')}? Unseen validation text is the baseline; the difference is "
                     f"the memorisation signal.")
        rows = [[name, pct((ext.get(key) or {}).get("rate")), pct((ext.get(key) or {}).get("token_match")),
                 count((ext.get(key) or {}).get("n"))] for name, key in [("training text", "train"),
                                                                          ("validation text", "val")]]
        diff, err = ext.get("difference"), ext.get("difference_stderr")
        rows.append(["difference", f"{100 * diff:.1f} ± {100 * err:.1f} points" if is_number(diff) and is_number(err)
                     else "–", "", ""])
        html += table(["prefix from", "continued exactly", "tokens matching", "passages"], rows, {1, 2, 3})
        for e in [e for e in ext.get("examples") or [] if isinstance(e, dict)][:3]:
            html += para(f"Recited ({e.get('split')} text): given") + f"<pre>{esc(e.get('prefix'))}</pre>"
            html += para("it wrote exactly") + f"<pre>{esc(e.get('continuation'))}</pre>"
    return html

"""`glassbox serve` attacked as a hostile client on loopback would: slow bodies, long inputs, decompression bombs,
a foreign Host header, numbers no model can read, a table row with two rows in it, a prompt that is half a
character, a shutdown that cuts a generation short; and any input at all, per kind of data (hypothesis). Every case
runs against a real server process; each answers a status and one line, never 500, and well-behaved clients with the
token keep being served."""
import base64
import io
import json
import math
import signal
import statistics
import socket
import struct
import time
import zlib

import httpx
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glassbox.cli import main
from glassbox.data.tabular import load_tabular
from glassbox.data.text import load_text
from glassbox.infer.batcher import Batcher
from tests.conftest import shared
from tests.serving import running_server, tail, tiny_artifact

TOKEN = "an-attack-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ADULT = ["age", "workclass", "fnlwgt", "education", "education_num", "marital", "occupation", "relationship", "race",
         "sex", "gain", "loss", "hours", "country", "income"]
ANY_CHARACTER = st.characters(exclude_categories=())  # lone surrogates and control characters too
ANY = settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def sms(tmp_path_factory):
    """A text server with a token, 8 request slots, 2 s to send a body, inputs of at most 2,000 characters."""
    lines = shared("sms_spam_collection", "SMSSpamCollection").read_text(encoding="utf-8").splitlines()[:1000]
    folder = tmp_path_factory.mktemp("attack_sms")
    (folder / "train.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    model = tiny_artifact(load_text(folder / "train.tsv", "text", "label", columns=["label", "text"]),
                          folder / "model", steps=10)
    (folder / "token").write_text(TOKEN)
    with running_server(model, "--token-file", str(folder / "token"), "--max-concurrent", "8", "--body-timeout-s",
                        "2", "--max-input-chars", "2000", "--max-batch-chars", "4000") as (proc, url):
        yield url


def post_json(url: str, body: dict, headers: dict | None = None) -> httpx.Response:
    """POST body as JSON with every non-ASCII character escaped: a lone surrogate travels as \\ud800, as any JSON
    library may send it."""
    return httpx.post(url, content=json.dumps(body), headers={"Content-Type": "application/json", **(headers or {})},
                      timeout=30)


def slow_body(url: str, path: str, token: bool) -> socket.socket:
    """A connection that promises a 100,000-byte body, sends one byte of it, and waits."""
    host, port = url.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)))
    auth = f"Authorization: Bearer {TOKEN}\r\n".encode() if token else b""
    s.sendall(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Type: application/json\r\nContent-Length: 100000"
              b"\r\n\r\n{" % (path.encode(), auth))
    return s


def status_of(s: socket.socket) -> int:
    s.settimeout(10)
    return int(s.recv(4096).split(b" ", 2)[1])


def test_slow_bodies_lock_no_one_out(sms):
    """Finding 1 and 5: 60 tokenless slow bodies on the open probe and on /predict hold no slot; 8 slow bodies with
    the token hold the 8 slots for --body-timeout-s at most (then 408), and the probes answer throughout."""
    with httpx.Client(timeout=30) as client:
        strangers = [slow_body(sms, "/health", token=False) for _ in range(30)] + \
                    [slow_body(sms, "/predict", token=False) for _ in range(30)]
        time.sleep(0.3)
        asks = [client.post(sms + "/predict", json={"inputs": ["win a free phone now"]}, headers=AUTH)
                for _ in range(5)]
        assert [a.status_code for a in asks] == [200] * 5
        assert client.get(sms + "/health").status_code == 200 and client.get(sms + "/ready").status_code == 200
        assert client.get(sms + "/metrics", headers=AUTH).status_code == 200
        assert [status_of(s) for s in strangers[30:]] == [401] * 30     # refused before a byte of body is read
        held = [slow_body(sms, "/predict", token=True) for _ in range(8)]
        time.sleep(0.3)
        start = time.perf_counter()
        busy = client.post(sms + "/predict", json={"inputs": ["hello"]}, headers=AUTH)
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"  # --max-concurrent, as it should
        assert client.get(sms + "/health").status_code == 200 and client.get(sms + "/ready").status_code == 200
        assert [status_of(s) for s in held] == [408] * 8
        assert time.perf_counter() - start < 3                             # --body-timeout-s 2 freed the slots
        assert client.post(sms + "/predict", json={"inputs": ["hello"]}, headers=AUTH).status_code == 200
        for s in strangers + held:
            s.close()


def test_an_input_is_bounded_before_work_is_done_on_it(sms):
    """Finding 2: a text over --max-input-chars is refused with 413 at once; /info shows every bound."""
    with httpx.Client(timeout=30) as client:
        info = client.get(sms + "/info", headers=AUTH).json()["limits"]
        assert info["max_input_chars"] == 2000 and info["max_batch_chars"] == 4000 and info["body_timeout_s"] == 2
        assert info["max_image_pixels"] == 25_000_000 and info["decode_threads"] == 2
        start = time.perf_counter()
        long = client.post(sms + "/predict", json={"inputs": ["ok", "spam " * 400 + "!"]}, headers=AUTH)
        assert long.status_code == 413 and time.perf_counter() - start < 1
        assert long.json()["detail"] == "input 2 is a text of 2,001 characters; the limit is 2,000 (--max-input-chars)"
        assert client.post(sms + "/predict", json={"inputs": ["spam " * 400]}, headers=AUTH).status_code == 200


def test_a_forward_pass_holds_at_most_max_batch_cost():
    """The model thread's work per batch is bounded by the inputs' characters, not only by their count; one input
    over the budget goes alone, and every input is answered once, in order."""
    import asyncio

    seen = []
    texts = ["a" * n for n in (10, 3000, 1500, 2600, 5000, 1, 1, 1)]

    async def go():
        batcher = Batcher(lambda batch: seen.append([len(t) for t in batch]) or [len(t) for t in batch], 64, 0.05,
                          100, cost=len, max_batch_cost=4000)
        batcher.start()
        answers = await asyncio.gather(*batcher.submit(texts))
        await batcher.stop()
        return answers
    assert asyncio.run(go()) == [len(t) for t in texts]
    assert seen == [[10, 3000], [1500], [2600], [5000], [1, 1, 1]]


def test_a_foreign_host_header_is_refused(sms):
    """Finding 7: on loopback the server answers loopback names only (DNS rebinding)."""
    port = sms.rsplit(":", 1)[1]
    with httpx.Client(timeout=30) as client:
        for host in ("evil.example", "evil.example:" + port, "127.0.0.1.evil.example"):
            refused = client.get(sms + "/health", headers={"Host": host})
            assert refused.status_code == 400 and "127.0.0.1, localhost, ::1 only" in refused.json()["detail"]
        for host in ("127.0.0.1:" + port, "localhost:" + port, "LOCALHOST", "[::1]:" + port):
            assert client.get(sms + "/health", headers={"Host": host}).status_code == 200


@ANY
@given(inputs=st.lists(st.text(ANY_CHARACTER, max_size=300), min_size=1, max_size=5))
def test_any_text_is_answered_or_refused_in_one_line(sms, inputs):
    answer = post_json(sms + "/predict", {"inputs": inputs}, AUTH)
    assert answer.status_code in (200, 413, 422), (inputs, answer.text)
    if answer.status_code == 200:
        for p in answer.json()["predictions"]:
            assert math.isclose(sum(p["probabilities"].values()), 1, abs_tol=1e-4)


@pytest.fixture(scope="module")
def adult(tmp_path_factory):
    """A table server on 2,000 real Adult rows; a real row from elsewhere in the file to ask it about."""
    lines = shared("uci_adult", "adult.data").read_text().splitlines()
    folder = tmp_path_factory.mktemp("attack_adult")
    (folder / "train.csv").write_text(",".join(ADULT) + "\n" + "\n".join(lines[:2000]) + "\n")
    ex = load_tabular(folder / "train.csv", "income")
    model = tiny_artifact(ex, folder / "model", steps=20, lr=0.05)
    row = lines[5000].rsplit(",", 1)[0]
    with running_server(model, "--max-input-chars", "300000", "--max-batch-chars", "300000") as (proc, url):
        yield model, url, row.split(",")


def training_ages() -> list[float]:
    return [float(line.split(",")[0]) for line in shared("uci_adult", "adult.data").read_text().splitlines()[:2000]]


def ask(url, inputs):
    return httpx.post(url + "/predict", json={"inputs": inputs}, timeout=30)


def test_table_inputs_that_broke_the_server_are_refused_in_one_line(adult, capsys):
    """Finding 9: a field over csv's 131,072 characters, a number of 1e50 (NaN probabilities before), a line break
    that hid a second row: each 422 with its reason; the well-formed row still 200."""
    model, url, row = adult
    assert ask(url, [",".join(row)]).status_code == 200
    cases = {"field": ",".join([row[0], "x" * 140_000, *row[2:]]),
             "huge": ",".join(["1e50", *row[1:]]),
             "tiny": ",".join(["-1e300", *row[1:]]),
             "two rows": ",".join(row) + "\n" + ",".join(row)}
    answers = {name: ask(url, [text]) for name, text in cases.items()}
    assert {name: a.status_code for name, a in answers.items()} == dict.fromkeys(cases, 422)
    assert "not one CSV row (field larger than field limit" in answers["field"].json()["detail"]
    ages = training_ages()  # the standardisation the message quotes, recomputed from the training rows
    mean, sd = sum(ages) / len(ages), statistics.pstdev(ages)
    assert answers["huge"].json()["detail"] == (f"column 'age' has '1e50' in an input, {(1e50 - mean) / sd:.2g} standard "
                                                f"deviations from the training values (mean {mean:.4g}, sd {sd:.4g}); "
                                                f"the model cannot read a value that far out: check it")
    assert "-1e300" in answers["tiny"].json()["detail"]
    assert answers["two rows"].json()["detail"] == "input 1 holds 2 rows (a line break outside quotes); send one row " \
                                                   "per input"
    far = ",".join(["5000000", *row[1:]])  # 373,000 sd out, within what the model's arithmetic holds: answered, finite
    probabilities = ask(url, [far]).json()["predictions"][0]["probabilities"]
    assert all(math.isfinite(p) for p in probabilities.values())
    from glassbox.errors import UserError
    from glassbox.infer.predictor import Predictor

    predictor = Predictor(model)  # the Python API past the parser: outputs that are not numbers are refused, not NaN
    frame = predictor.encoder.frame(pd.DataFrame([row], columns=predictor.encoder.columns))
    frame.loc[0, "age"] = "1e50"
    with pytest.raises(UserError, match=r"^input 1 drove the model's outputs beyond what 32-bit numbers hold"):
        predictor.predict(frame)
    capsys.readouterr()
    assert main(["predict", str(model), ",".join(["1e50", *row[1:]]), "--json"]) == 2  # the CLI: one line, exit 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "standard deviations" in err and "Traceback" not in err


@ANY
@given(values=st.lists(st.one_of(st.text(max_size=20), st.floats(width=64).map(repr), st.integers().map(str)),
                       min_size=1, max_size=16))
def test_any_table_row_is_answered_or_refused_in_one_line(adult, values):
    model, url, row = adult
    line = ",".join(values)
    answer = ask(url, [line])
    assert answer.status_code in (200, 413, 422), (line, answer.text)
    if answer.status_code == 200:
        assert all(math.isfinite(p) for p in answer.json()["predictions"][0]["probabilities"].values())
    mixed = ",".join(v if i % 2 else row[i] for i, v in enumerate((values * 14)[:14]))  # real values and strange ones
    answer = ask(url, [mixed])
    assert answer.status_code in (200, 422), (mixed, answer.text)
    if answer.status_code == 200:
        assert all(math.isfinite(p) for p in answer.json()["predictions"][0]["probabilities"].values())


def bomb_png(side: int) -> bytes:
    """A grayscale PNG of side x side black pixels: a few hundred KB that decode to side² bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    packer, row = zlib.compressobj(9), b"\0" * (side + 1)
    pixels = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)) + \
        chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    from glassbox.data.builtin import load_builtin

    ex = load_builtin("digits")
    model = tiny_artifact(ex.subset(list(range(600))), tmp_path_factory.mktemp("attack_digits") / "model", steps=10)
    with running_server(model, "--max-image-pixels", "1000000") as (proc, url):
        yield ex, url, proc


def png_of(pixels) -> str:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


def test_a_decompression_bomb_is_refused_from_its_header(digits):
    """Finding 4: a 152 KB PNG of 12,500 x 12,500 (156 million pixels, below Pillow's own limit) was decoded; its
    header now refuses it with 413 before a pixel is decoded, at once."""
    ex, url, proc = digits
    bomb = bomb_png(12_500)
    assert len(bomb) < 200_000
    start = time.perf_counter()
    answers = [ask(url, [base64.b64encode(bomb).decode()]) for _ in range(4)]
    assert time.perf_counter() - start < 2  # decoding one took seconds and a GB
    assert [a.status_code for a in answers] == [413] * 4
    assert answers[0].json()["detail"] == ("input 1: the image is 12,500 x 12,500 pixels (156,250,000); the limit is "
                                           "1,000,000 (--max-image-pixels): send it smaller")
    assert ask(url, [png_of(ex.inputs[700][0])]).status_code == 200


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.binary(max_size=2000))
def test_any_bytes_as_an_image_are_answered_or_refused_in_one_line(digits, data):
    ex, url, proc = digits
    for sent in (base64.b64encode(data).decode(), base64.b64encode(b"\x89PNG\r\n\x1a\n" + data).decode()):
        assert ask(url, [sent]).status_code in (200, 413, 422)


@pytest.fixture(scope="module")
def lm(tiny_lm_run):
    with running_server(tiny_lm_run / "model", "--max-input-chars", "500") as (proc, url):
        yield url


@ANY
@given(prompt=st.text(ANY_CHARACTER, max_size=60))
def test_any_prompt_is_answered_or_refused_in_one_line(lm, prompt):
    answer = post_json(lm + "/generate", {"prompt": prompt, "max_new_tokens": 5})
    assert answer.status_code in (200, 422), (prompt, answer.text)


def test_prompts_half_a_character_or_too_long_are_refused(lm, tiny_lm_run, capsys):
    """Finding 9: a lone surrogate was a 500 (and a traceback from `glassbox generate`)."""
    half = post_json(lm + "/generate", {"prompt": "ROMEO:\ud800", "max_new_tokens": 5})
    assert half.status_code == 422 and "half of a UTF-16 pair" in half.json()["detail"]
    long = httpx.post(lm + "/generate", json={"prompt": "a" * 501}, timeout=30)
    assert long.status_code == 413 and "(--max-input-chars)" in long.json()["detail"]
    assert main(["generate", str(tiny_lm_run / "model"), "--prompt", "ROMEO:\udc80"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "half of a UTF-16 pair" in err


def test_a_generation_cut_by_drain_gets_503_and_no_traceback(tiny_lm_run):
    """Finding 9: when --drain-s ran out, a generation in flight got 500 and the log a traceback. Six generations of
    2,000 tokens (about a second each, one at a time) and SIGTERM at once with --drain-s 1: those finished in time are
    answered, the rest get 503 saying why; the log holds no traceback; the server exits 0."""
    from concurrent.futures import ThreadPoolExecutor

    with running_server(tiny_lm_run / "model", "--drain-s", "1", "--timeout-s", "60") as (proc, url):
        def long():
            return httpx.post(url + "/generate", json={"prompt": "ROMEO:", "max_new_tokens": 2000}, timeout=60)
        with ThreadPoolExecutor(6) as pool:
            asks = [pool.submit(long) for _ in range(6)]
            time.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            answers = [a.result() for a in asks]
        assert proc.wait(timeout=30) == 0
        cut = [r for r in answers if r.status_code == 503]
        assert {r.status_code for r in answers} <= {200, 503} and len(cut) >= 1, [r.status_code for r in answers]
        assert all("--drain-s ran out" in r.json()["detail"] and r.headers["retry-after"] == "1" for r in cut)
        log = tail(proc.log)
        assert "Traceback" not in log and "Exception in ASGI application" not in log


def test_the_bounds_are_refused_in_one_line_when_they_cannot_work(capsys, tiny_lm_run):
    assert main(["serve", str(tiny_lm_run / "model"), "--max-input-chars", "5000", "--max-batch-chars", "4000"]) == 2
    assert "--max-input-chars (5000) is larger than --max-batch-chars (4000)" in capsys.readouterr().err
    assert main(["serve", str(tiny_lm_run / "model"), "--body-timeout-s", "0"]) == 2
    assert "--body-timeout-s must be a number of at least 0.001" in capsys.readouterr().err


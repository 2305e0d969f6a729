"""`glassbox serve` as a team would run it, tested as real processes over loopback: concurrent callers each get
exactly their own answers from shared forward passes that never exceed --max-batch-size; every bound answers
its status code; the token; Prometheus metrics counted against what the test sent; thousands of requests leave
the artifact untouched; abandoned inputs never reach the model; images come as bytes, never as server paths;
`predict --url` prints what a local predict prints. (SIGTERM: tests/test_generator.py, on a generation in flight.)"""
import base64
import json
import math
import os
import random
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glassbox.cli import main
from glassbox.data.text import load_text
from glassbox.infer.predictor import Predictor
from tests.conftest import shared
from tests.serving import metric, running_server, tiny_artifact

TOKEN = "a-test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def sms(tmp_path_factory):
    """A fastText SMS spam model trained on 1,000 real messages, and 600 other messages to ask it about."""
    lines = shared("sms_spam_collection", "SMSSpamCollection").read_text(encoding="utf-8").splitlines()[:1600]
    folder = tmp_path_factory.mktemp("serve_sms")
    (folder / "train.tsv").write_text("\n".join(lines[:1000]) + "\n", encoding="utf-8")
    ex = load_text(folder / "train.tsv", "text", "label", columns=["label", "text"])
    model = tiny_artifact(ex, folder / "model", steps=10)  # a fastText step over its large embedding is slow on a CPU
    return model, [line.split("\t", 1)[1] for line in lines[1000:]]


@pytest.fixture(scope="module")
def server(sms, tmp_path_factory):
    token_file = tmp_path_factory.mktemp("token") / "token"
    token_file.write_text(TOKEN + "\n")
    with running_server(sms[0], "--token-file", str(token_file), "--max-batch-size", "8", "--max-inputs", "40",
                        "--max-body-bytes", "100000") as (proc, url):
        yield url


def post(client, url, inputs, headers=AUTH):
    return client.post(url + "/predict", json={"inputs": inputs}, headers=headers)


def test_concurrent_callers_each_get_exactly_their_own_answers(sms, server):
    model, texts = sms
    local = Predictor(model)
    rng = random.Random(0)
    asks = [rng.sample(texts, rng.randint(1, 40)) for _ in range(80)]  # 80 requests, 1 to 40 inputs each
    with httpx.Client(timeout=60) as client, ThreadPoolExecutor(24) as pool:
        before = client.get(server + "/metrics", headers=AUTH).text
        answers = list(pool.map(lambda ask: post(client, server, ask), asks))
        after = client.get(server + "/metrics", headers=AUTH).text
    assert [a.status_code for a in answers] == [200] * len(asks)
    for ask, answer in zip(asks, answers):
        assert answer.json()["predictions"] == local.predict(ask)  # its own answers, in its order, to the digit
    served = metric(after, "glassbox_batch_size_count") - metric(before, "glassbox_batch_size_count")
    inputs = metric(after, "glassbox_batch_size_sum") - metric(before, "glassbox_batch_size_sum")
    never_above = metric(after, "glassbox_batch_size_bucket", le="8.0") - metric(before, "glassbox_batch_size_bucket", le="8.0")
    assert inputs == sum(map(len, asks))           # every input went through the model once
    assert never_above == served                    # no forward pass held more than --max-batch-size 8
    alone = sum(math.ceil(len(ask) / 8) for ask in asks)  # forward passes if no two requests shared one
    assert served < alone                               # concurrent requests shared forward passes
    assert metric(after, "glassbox_requests_total", route="/predict", status="200") == len(asks)


def test_every_bound_and_the_token_answer_their_status(server):
    with httpx.Client(timeout=30) as client:
        for path in ("/predict", "/info", "/metrics"):
            assert client.request("POST" if path == "/predict" else "GET", server + path).status_code == 401
        wrong = post(client, server, ["hi"], headers={"Authorization": "Bearer " + TOKEN[:-1] + "X"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        assert TOKEN not in wrong.text
        assert client.get(server + "/health").status_code == 200 and client.get(server + "/ready").json()["ready"]
        info = client.get(server + "/info", headers=AUTH).json()
        assert info["limits"]["max_batch_size"] == 8 and info["limits"]["max_inputs"] == 40 and info["token_required"]
        too_many = post(client, server, ["hi"] * 41)
        assert too_many.status_code == 413 and "--max-inputs" in too_many.json()["detail"]
        too_big = post(client, server, ["x" * 100_000])
        assert too_big.status_code == 413 and "--max-body-bytes" in too_big.json()["detail"]
        assert post(client, server, []).status_code == 422
        assert client.post(server + "/predict", json={"inputs": [1]}, headers=AUTH).status_code == 422
        metrics = client.get(server + "/metrics", headers=AUTH).text
    assert metric(metrics, "glassbox_requests_total", route="/predict", status="413") == 2
    assert metric(metrics, "glassbox_requests_total", route="/predict", status="401") == 2
    assert metric(metrics, "glassbox_model_load_seconds") > 0


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.recursive(st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=30),
                         lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.sampled_from(["inputs", "x"]),
                                                                                    inner, max_size=2), max_leaves=12))
def test_no_request_body_makes_the_server_fail(server, body):
    answer = httpx.post(server + "/predict", content=json.dumps(body), headers={**AUTH, "Content-Type": "application/json"})
    assert answer.status_code in (200, 413, 422), (body, answer.status_code, answer.text)
    if answer.status_code == 200:
        assert len(answer.json()["predictions"]) == len(body["inputs"])


def test_thousands_of_requests_leave_the_weights_and_the_artifact_as_they_were(sms, server):
    model, texts = sms
    files = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in model.iterdir()}
    with httpx.Client(timeout=60) as client:
        probe = post(client, server, texts[:40]).json()
        with ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(lambda i: post(client, server, [texts[i % len(texts)]]).status_code, range(2000)))
        assert codes == [200] * 2000
        assert post(client, server, texts[:40]).json() == probe  # the same answers, to the last digit
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in model.iterdir()} == files  # nothing written


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """A tiny CNN on scikit-learn's 8x8 digits (as `glassbox train digits` builds it), 10 other digits as PNG files,
    and a server whose batches wait up to 3 s to fill 10 inputs and whose requests time out after 1 s: a request of
    10 inputs is answered at once, a smaller one waits and times out."""
    from PIL import Image

    from glassbox.data.builtin import load_builtin

    ex = load_builtin("digits")
    folder = tmp_path_factory.mktemp("serve_digits")
    model = tiny_artifact(ex.subset(list(range(1200))), folder / "model", steps=30)
    paths = [str(folder / f"digit{i}.png") for i in range(1500, 1510)]
    for i, path in zip(range(1500, 1510), paths):
        Image.fromarray(ex.inputs[i][0]).save(path)
    with running_server(model, "--max-wait-ms", "3000", "--max-batch-size", "10", "--max-queue", "10",
                        "--max-inputs", "10", "--timeout-s", "1") as (_, url):
        yield model, paths, url


def test_images_come_as_bytes_and_a_path_is_never_opened(digits, capsys):
    model, paths, url = digits
    with httpx.Client(timeout=30) as client:
        answer = client.post(url + "/predict", json={"inputs": as_base64(paths)})
        assert answer.json()["predictions"] == Predictor(model).predict(Predictor(model).parse(paths))
        existing, missing = paths[0], paths[0].replace("digit1500", "digitXXXX")
        refusals = [client.post(url + "/predict", json={"inputs": [p]}) for p in (existing, missing, "/etc/passwd")]
        assert [r.status_code for r in refusals] == [422] * 3
        assert refusals[0].json() == refusals[1].json()        # no telling whether a file exists
        assert "never opens a path" in refusals[0].json()["detail"]
    assert main(["predict", "--url", url, *paths]) == 0
    remote = capsys.readouterr()
    assert main(["predict", str(model), *paths]) == 0
    assert capsys.readouterr() == remote                          # the same lines, on stdout and on stderr


def as_base64(paths: list[str]) -> list[str]:
    return [base64.b64encode(open(p, "rb").read()).decode() for p in paths]


def test_abandoned_inputs_never_reach_the_model(digits):
    """Inputs whose request ran out of time or whose caller hung up are dropped before the forward pass; a full
    queue refuses at once with Retry-After."""
    model, paths, url = digits
    images = as_base64(paths)
    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(1) as pool:
        before = client.get(url + "/metrics").text
        start = time.perf_counter()
        late = pool.submit(post, client, url, images[:8], {})     # 8 inputs wait for company
        while metric(client.get(url + "/metrics").text, "glassbox_queue_depth") < 8:
            time.sleep(0.02)
        full = post(client, url, images[:5], {})                   # 8 + 5 > --max-queue 10
        assert full.status_code == 503 and full.headers["retry-after"] == "1"
        hang_up(url, images[0])                                    # the 9th input's caller leaves
        assert late.result().status_code == 504 and 1 <= time.perf_counter() - start < 3
        while metric(client.get(url + "/metrics").text, "glassbox_queue_depth") > 0:
            time.sleep(0.05)
        ok = post(client, url, images, {})                         # a full batch goes at once
        after = client.get(url + "/metrics").text
    assert ok.status_code == 200 and ok.json()["predictions"] == Predictor(model).predict(Predictor(model).parse(paths))
    change = {name: metric(after, name, **labels) - metric(before, name, **labels) for name, labels in [
        ("glassbox_inputs_dropped_total", {}), ("glassbox_batch_size_sum", {}),
        ("glassbox_requests_total", {"route": "/predict", "status": "499"})]}
    assert change == {"glassbox_inputs_dropped_total": 9,         # 8 timed out + 1 abandoned, none computed
                      "glassbox_batch_size_sum": 10,              # the model saw only the last request's inputs
                      "glassbox_requests_total": 1}               # the caller that hung up


def hang_up(url: str, text: str) -> None:
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps({"inputs": [text]}).encode()
    with socket.create_connection((host, int(port))) as s:
        s.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                  % (len(body), body))
        time.sleep(0.3)


def test_predict_url_prints_what_local_predict_prints(sms, server, capsys):
    model, texts = sms
    for flags in ([], ["--json"]):
        assert main(["predict", "--url", server, *flags, *texts[:50]]) == 2  # no token
        assert "needs a token" in capsys.readouterr().err
        os.environ["GLASSBOX_TOKEN"] = TOKEN
        try:
            assert main(["predict", "--url", server, *flags, *texts[:50]]) == 0  # 50 inputs: two requests of <= 40
        finally:
            del os.environ["GLASSBOX_TOKEN"]
        remote = capsys.readouterr()
        assert main(["predict", str(model), *flags, *texts[:50]]) == 0
        assert capsys.readouterr() == remote


def test_predict_url_tells_a_wrong_token_from_none(server, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("GLASSBOX_TOKEN", raising=False)
    assert main(["predict", "--url", server, "free prize now"]) == 2
    assert "needs a token" in capsys.readouterr().err
    (tmp_path / "token").write_text(TOKEN[:-1] + "X\n")
    assert main(["predict", "--url", server, "--token-file", str(tmp_path / "token"), "free prize now"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refused the token given (401)" in err[0] and TOKEN[:-1] not in err[0], err


@pytest.mark.parametrize("flags, needle", [
    (["--host", "0.0.0.0"], "--insecure"),                                  # other machines, no token
    (["--token-file", "/nonexistent/token"], "is not a file"),
    (["--max-batch-size", "0"], "--max-batch-size must be a whole number of at least 1"),
    (["--timeout-s", "nan"], "--timeout-s must be a number"),
    (["--max-inputs", "50", "--max-queue", "10"], "could never be queued"),
])
def test_serve_refuses_in_one_line_before_loading_anything(flags, needle, capsys, tmp_path):
    assert main(["serve", str(tmp_path / "no-artifact-needed"), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("glassbox: error:") and needle in err[0], err


def test_a_short_token_is_refused_and_not_echoed(tmp_path, capsys):
    (tmp_path / "token").write_text("short secret")
    assert main(["serve", str(tmp_path), "--token-file", str(tmp_path / "token")]) == 2
    err = capsys.readouterr().err
    assert "at least 16 characters" in err and "short secret" not in err

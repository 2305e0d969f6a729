"""`glassbox predict --url` against hostile servers over loopback (stdlib http.server in a thread, answering what a
test tells it to): a redirect never carries the token to another origin, and a Retry-After of any shape is read as
RFC 9110 says, within a bound. (A wrong token against the real `glassbox serve`: tests/test_serve.py.)"""
from __future__ import annotations

import email.utils
import json
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from glassbox.cli import main
from glassbox.errors import UserError
from glassbox.infer.client import Server

TOKEN = "a-client-test-token-0123456789"
INFO = {"task": "classify", "input": "text", "limits": {"max_inputs": 8}, "probabilities": "as the model gives them",
        "calibrated": False}


@contextmanager
def hostile_server(answer):
    """A server on a free loopback port whose every answer is answer(handler) -> (status, headers, body); yields
    (its URL, the requests it got as (method, path, Authorization header))."""
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def reply(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append((self.command, self.path, self.headers.get("Authorization")))
            status, headers, body = answer(self)
            data = json.dumps(body).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", "Content-Length": str(len(data)),
                                **headers}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = reply

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def predictions(handler):
    if handler.path == "/info":
        return 200, {}, INFO
    return 200, {}, {"predictions": [{"label": "spam", "probability": 0.9, "probabilities": {"spam": 0.9}}],
                     "calibrated": False}


@pytest.mark.parametrize("code", [301, 302, 307, 308])
def test_the_token_never_follows_a_redirect_to_another_origin(code, capsys, monkeypatch):
    monkeypatch.setenv("GLASSBOX_TOKEN", TOKEN)
    with hostile_server(predictions) as (elsewhere, reached), \
            hostile_server(lambda h: (code, {"Location": elsewhere + h.path}, {})) as (url, asked):
        assert main(["predict", "--url", url, "free prize now"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"a redirect to '{elsewhere}/info'" in err[0] and "does not follow redirects" in err[0]
    assert asked == [("GET", "/info", f"Bearer {TOKEN}")]  # the server given as --url got the token
    assert reached == []  # the other origin got nothing, the token least of all


def busy_once(retry_after: str):
    """503 with this Retry-After to the first request, then the model's info."""
    calls = []

    def answer(handler):
        calls.append(time.monotonic())
        if len(calls) == 1:
            return 503, {"Retry-After": retry_after}, {"detail": "busy"}
        return 200, {}, INFO
    return answer, calls


def in_a_thread(f, timeout: float):
    """f() run in a thread: its result, or the exception it raised; fails if it is still running after timeout."""
    out = {}

    def run():
        try:
            out["result"] = f()
        except Exception as e:  # noqa: BLE001 (the test looks at what was raised)
            out["error"] = e
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"still waiting after {timeout} s"
    if "error" in out:
        raise out["error"]
    return out["result"]


# not delay-seconds (digits) nor an HTTP-date: the default short wait (1 s); a date one second ahead: about that
@pytest.mark.parametrize("value,low,high", [("abc", 0.9, 3), ("-5", 0.9, 3), ("nan", 0.9, 3), ("1e9", 0.9, 3),
                                            ("0", 0, 0.9), ("2", 1.9, 4), ("date+1", 0, 3),
                                            ("Sun, 06 Nov 1994 08:49:37 GMT", 0, 0.9)])
def test_retry_after_is_read_as_rfc_9110_says_and_bounded(value, low, high):
    if value == "date+1":
        value = email.utils.formatdate(time.time() + 1.5, usegmt=True)
    answer, calls = busy_once(value)
    with hostile_server(answer) as (url, _):
        server = in_a_thread(lambda: Server(url, None), timeout=10)
    assert server.info == INFO and len(calls) == 2
    assert low <= calls[1] - calls[0] <= high


def test_a_retry_after_past_the_bound_is_refused_at_once():
    answer, calls = busy_once("86400")
    with hostile_server(answer) as (url, _):
        start = time.monotonic()
        with pytest.raises(UserError, match="asks to be called again in 86400 s; glassbox waits at most 30 s"):
            in_a_thread(lambda: Server(url, None), timeout=10)
    assert time.monotonic() - start < 2 and len(calls) == 1

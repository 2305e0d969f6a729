"""The door every HTTP request passes first (plain ASGI, so it costs microseconds): the Host header (400), the
token (401), the number of requests held at once (503), the body size (413, before a byte is parsed) and the time
its sender takes (408); and every answer is counted.

The probes and the metrics (UNGATED) carry no body and cost microseconds: they are answered outside the count of
requests held, so no number of busy or slow clients makes /health or /ready fail."""
from __future__ import annotations

import asyncio
import json
import time

from glassbox.infer.auth import OPEN_PATHS, authorized
from glassbox.runtime.ports import host_allowed
from glassbox.infer.limits import Limits
from glassbox.infer.metrics import ServeMetrics

CLIENT_GONE = 499  # the status counted for a caller that left before its answer (nginx's code for it)
UNGATED = (*OPEN_PATHS, "/metrics")  # answered without reading a body and without counting against --max-concurrent


class BodyTooLarge(Exception):
    pass


class Gate:
    def __init__(self, app, limits: Limits, metrics: ServeMetrics, token: str | None, routes: set[str],
                 hosts: list[str] | None = None):
        self.app, self.limits, self.metrics, self.routes = app, limits, metrics, routes
        self.hosts = hosts  # the Host names answered (None: any; runtime/ports.py allowed_hosts)
        self.token = token.encode() if token else None
        self.held = 0  # requests between their first byte and their answer
        metrics.watch_in_flight(lambda: self.held)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":  # lifespan: start and stop the batcher
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), CLIENT_GONE

        async def counted_send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            refusal = self.refusal(scope)
            if refusal:
                return await answer(counted_send, *refusal)
            if scope["path"] in UNGATED:
                return await self.app(scope, receive, counted_send)
            self.held += 1
            try:
                body = await asyncio.wait_for(read_body(scope, receive, self.limits.max_body_bytes),
                                              self.limits.body_timeout_s)
            except BodyTooLarge:
                return await answer(counted_send, 413, f"the request body is larger than {self.limits.max_body_bytes:,} "
                                                       f"bytes (--max-body-bytes); send fewer or smaller inputs",
                                    [(b"connection", b"close")])
            except asyncio.TimeoutError:  # TimeoutError itself from Python 3.11
                return await answer(counted_send, 408, f"the request body did not arrive within "
                                                       f"{self.limits.body_timeout_s:g} s (--body-timeout-s); send it "
                                                       f"at once", [(b"connection", b"close")])
            finally:
                self.held -= 1
            if body is not None:  # None: the caller left while sending
                self.held += 1
                try:
                    await self.app(scope, replay(body, receive), counted_send)
                finally:
                    self.held -= 1
        finally:
            route = scope["path"] if scope["path"] in self.routes else "other"  # unknown paths share one label
            self.metrics.observe(route, status, time.perf_counter() - start)

    def refusal(self, scope) -> tuple | None:
        if self.hosts is not None and not host_allowed(scope["headers"], self.hosts):
            return 400, (f"this server answers requests for {', '.join(self.hosts)} only (the Host header names "
                         f"another); use one of those names in the URL"), [(b"connection", b"close")]
        if self.token is not None and scope["path"] not in OPEN_PATHS and not authorized(scope["headers"], self.token):
            return 401, "a bearer token is required: send the header 'Authorization: Bearer TOKEN'", \
                [(b"www-authenticate", b"Bearer")]
        if scope["path"] in UNGATED:
            return None
        if self.held >= self.limits.max_concurrent:
            return 503, (f"the server holds {self.held} requests, its limit (--max-concurrent); retry after a "
                         f"second"), [(b"retry-after", b"1")]
        return None


async def read_body(scope, receive, limit: int) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise BodyTooLarge  # refused before it is read
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes, receive):
    """The body already read, then the connection itself (so the app still hears when the caller leaves)."""
    sent = False

    async def receive_again():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return receive_again


async def answer(send, status: int, detail: str, headers: list | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})

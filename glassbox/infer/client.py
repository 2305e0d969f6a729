"""`glassbox predict --url URL ...`: the same inputs and the same output as a local predict, answered by a running
`glassbox serve`. Images are sent as their bytes (base64), never as paths; a long list goes in requests of at most
the server's --max-inputs; a busy server (503) is asked again after the Retry-After it gives, within a bound.

The token goes to the --url's server only: a redirect is never followed (it could lead anywhere, token and all)."""
from __future__ import annotations

import datetime
import email.utils
import json
import math
import re
import time
import urllib.error
import urllib.request

from glassbox.data.kinds import for_wire
from glassbox.errors import UserError
from glassbox.infer.auth import TOKEN_ENV

RETRIES = 5  # 503s in a row before giving up
MAX_WAIT_S = 30.0  # the most a client waits in all for a busy server, whatever Retry-After asks
DEFAULT_WAIT_S = 1.0  # the wait when Retry-After is absent or not what RFC 9110 allows


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # a 3xx is then raised as an HTTPError, and refused


OPENER = urllib.request.build_opener(NoRedirects)


class Server:
    def __init__(self, url: str, token: str | None):
        if not url.startswith(("http://", "https://")):
            raise UserError(f"--url {url} must start with http:// or https://, e.g. http://127.0.0.1:8000")
        self.url, self.token = url.rstrip("/"), token
        self.info = self.call("GET", "/info")
        if self.info.get("task") not in ("classify", "regression"):
            raise UserError(f"the model at {self.url} is {'a language model' if self.info.get('task') == 'lm' else 'not a classifier'}"
                            f", not a classifier; use 'glassbox generate'")

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        waited = 0.0
        for attempt in range(RETRIES + 1):
            request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
            try:
                with OPENER.open(request, timeout=300) as r:
                    return json.loads(r.read())
            except urllib.error.HTTPError as e:
                if e.code == 503 and attempt < RETRIES:
                    wait = retry_after(e.headers.get("Retry-After"))
                    if waited + wait > MAX_WAIT_S:
                        raise UserError(f"{self.url} is busy (503) and asks to be called again in {wait:.0f} s; "
                                        f"glassbox waits at most {MAX_WAIT_S:g} s in all: try again later") from None
                    time.sleep(wait)
                    waited += wait
                    continue
                raise UserError(refusal(self.url + path, e, token_sent=bool(self.token))) from None
            except (urllib.error.URLError, OSError) as e:
                reason = getattr(e, "reason", e)
                raise UserError(f"cannot reach {self.url} ({reason}); is 'glassbox serve' running there?") from None
        raise AssertionError("unreachable")

    def predict(self, inputs: list[str]) -> tuple[list[dict], bool]:
        step, out, calibrated = self.info["limits"]["max_inputs"], [], False
        for i in range(0, len(inputs), step):
            answer = self.call("POST", "/predict", {"inputs": inputs[i:i + step]})
            out += answer["predictions"]
            calibrated = answer["calibrated"]
        return out, calibrated


def retry_after(value: str | None) -> float:
    """Seconds a 503's Retry-After asks for (RFC 9110, 10.2.3): delay-seconds (digits only) or an HTTP-date (a date
    past is 0); anything else (-5, 1e9, nan, abc) is not a delay the RFC allows: DEFAULT_WAIT_S."""
    value = (value or "").strip()
    if re.fullmatch(r"[0-9]+", value):
        return float(value) if len(value) < 16 else math.inf
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return DEFAULT_WAIT_S
    if when.tzinfo is None:  # "-0000": HTTP-dates are GMT
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, when.timestamp() - time.time())


def refusal(where: str, e, token_sent: bool) -> str:
    try:
        detail = json.loads(e.read()).get("detail")
    except (ValueError, AttributeError):
        detail = None
    if 300 <= e.code < 400:
        return (f"{where} answered {e.code}, a redirect to {e.headers.get('Location')!r}; glassbox does not follow "
                f"redirects (its token must reach no other server): give --url the address 'glassbox serve' listens on")
    if e.code == 401 and token_sent:
        return (f"{where} refused the token given (401): it is not the one the server was started with; check "
                f"--token-file or ${TOKEN_ENV}")
    if e.code == 401:
        return f"{where} needs a token: set ${TOKEN_ENV} or give --token-file"
    return f"the server answered {e.code} ({detail if isinstance(detail, str) else json.dumps(detail)})"


def wire_inputs(info: dict, raw: list[str]) -> list[str]:
    """What the server takes for what the user typed (its kind of data's `client_inputs`: an image path becomes the
    file's bytes, base64-encoded)."""
    return for_wire(info.get("input")).client_inputs(raw)


def file_rows(info: dict, file: str) -> tuple[list[str], list[str]] | None:
    """--file read as the server's kind of data reads a file of its own (a table with a header: its rows as typed,
    and the feature values in training order, as CSV); None: one input per line."""
    return for_wire(info.get("input")).client_file(file, info.get("columns") or [])

"""`glassbox predict --url URL ...`: the same inputs and the same output as a local predict, answered by a running
`glassbox serve`. Images are sent as their bytes (base64), never as paths; a long list goes in requests of at most
the server's --max-inputs; a busy server (503) is asked again after the Retry-After it gives."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from glassbox.data.kinds import for_wire
from glassbox.errors import UserError

RETRIES = 5  # 503s in a row before giving up


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
        for attempt in range(RETRIES + 1):
            request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
            try:
                with urllib.request.urlopen(request, timeout=300) as r:
                    return json.loads(r.read())
            except urllib.error.HTTPError as e:
                if e.code == 503 and attempt < RETRIES:
                    time.sleep(float(e.headers.get("Retry-After") or 1))
                    continue
                raise UserError(refusal(self.url + path, e)) from None
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


def refusal(where: str, e) -> str:
    try:
        detail = json.loads(e.read()).get("detail")
    except (ValueError, AttributeError):
        detail = None
    if e.code == 401:
        return f"{where} needs a token: set GLASSBOX_TOKEN or give --token-file"
    return f"the server answered {e.code} ({detail if isinstance(detail, str) else json.dumps(detail)})"


def wire_inputs(info: dict, raw: list[str]) -> list[str]:
    """What the server takes for what the user typed (its kind of data's `client_inputs`: an image path becomes the
    file's bytes, base64-encoded)."""
    return for_wire(info.get("input")).client_inputs(raw)


def file_rows(info: dict, file: str) -> tuple[list[str], list[str]] | None:
    """--file read as the server's kind of data reads a file of its own (a table with a header: its rows as typed,
    and the feature values in training order, as CSV); None: one input per line."""
    return for_wire(info.get("input")).client_file(file, info.get("columns") or [])

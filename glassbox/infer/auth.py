"""An optional bearer token: read from a file (--token-file) or GLASSBOX_TOKEN, compared in constant time, never
logged or echoed. Without one the server listens on loopback only, unless the user says --insecure."""
from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import os
import socket
from pathlib import Path

from glassbox.errors import UserError

TOKEN_ENV = "GLASSBOX_TOKEN"
OPEN_PATHS = ("/health", "/ready")  # liveness and readiness probes answer without a token and reveal no data


def read_token(token_file: str | None) -> str | None:
    """The token from --token-file, else from $GLASSBOX_TOKEN, else None (no token)."""
    if token_file:
        path = Path(token_file)
        if not path.is_file():
            raise UserError(f"--token-file {path} is not a file; write the token into a file and give its path")
        token = path.read_text(encoding="utf-8", errors="replace").strip()
        where = f"--token-file {path}"
    else:
        token = os.environ.get(TOKEN_ENV, "").strip()
        if not token:
            return None
        where = f"${TOKEN_ENV}"
    if len(token) < 16 or any(c.isspace() for c in token):
        raise UserError(f"the token in {where} must be at least 16 characters without spaces; "
                        f"make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'")
    return token


def is_loopback(host: str) -> bool:
    """True when every address `host` names is a loopback address (127.0.0.0/8, ::1, localhost)."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):
        return False  # serve() reports the bad address itself, in one line
    return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)


def check_exposure(host: str, token: str | None, insecure: bool, what: str = "query the model") -> None:
    if token is None and not insecure and not is_loopback(host):
        raise UserError(f"--host {host} would let other machines {what} without a token; give "
                        f"--token-file FILE (or ${TOKEN_ENV}), or --insecure if the network is trusted")


def authorized(headers: list[tuple[bytes, bytes]], token: bytes, basic: bool = False) -> bool:
    """True when the request carries `Authorization: Bearer <token>` (compared in constant time); with basic, also
    `Authorization: Basic` whose password is the token (what a browser sends once it has asked a person)."""
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, given = value.partition(b" ")
            if basic and scheme.lower() == b"basic":
                try:
                    given = base64.b64decode(given.strip(), validate=True).partition(b":")[2]
                except binascii.Error:
                    return False
            elif scheme.lower() != b"bearer":
                return False
            return hmac.compare_digest(given.strip(), token)
    return False

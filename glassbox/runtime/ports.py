"""Before a server starts (`glassbox serve`, `glassbox board`): a port out of range, already in use or on a host that
cannot be reached is said now, in one line, not as uvicorn's traceback."""
from __future__ import annotations

import socket

from glassbox.errors import UserError


def check_port(port: int) -> None:
    """Refuse a port number TCP does not have."""
    if not 0 < port < 65536:
        raise UserError(f"--port must be between 1 and 65535. Got {port}")


def check_can_listen(host: str, port: int) -> None:
    """Bind (host, port) and let it go at once; refuse, saying why, when that fails."""
    try:
        with socket.create_server((host, port)):
            pass
    except (OSError, UnicodeError) as e:
        raise UserError(f"cannot listen on {host}:{port} ({getattr(e, 'strerror', None) or e}); "
                        f"choose another --port or --host") from None


LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1"]


def allowed_hosts(host: str) -> list[str] | None:
    """The Host headers a server listening on `host` answers: on loopback, loopback names only, so a web page
    elsewhere cannot reach it through a name of its own that resolves here (DNS rebinding); on a named address, that
    name too; on every address (0.0.0.0, ::), any (None)."""
    if host in ("0.0.0.0", "::", ""):
        return None
    return LOOPBACK_NAMES if host in LOOPBACK_NAMES else [host, *LOOPBACK_NAMES]


def host_allowed(headers: list[tuple[bytes, bytes]], hosts: list[str]) -> bool:
    """Whether a request's Host header (its port aside) is one of `hosts`; a request without one is refused."""
    for name, value in headers:
        if name == b"host":
            host = value.decode("latin-1").strip().lower()
            if host.startswith("["):  # [::1]:8000
                host = host[1:].partition("]")[0]
            elif host.count(":") == 1:
                host = host.partition(":")[0]
            return host in hosts
    return False

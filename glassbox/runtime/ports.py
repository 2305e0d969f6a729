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

"""`glassbox serve RUN/model`: the frozen artifact over HTTP (read-only)."""
from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="serve a frozen artifact over HTTP (read-only)")
    p.add_argument("artifact", help="the artifact folder, RUN/model")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8000, help="port to listen on")
    p.set_defaults(func=run)


def run(args) -> None:
    from glassbox.infer.server import serve

    serve(args.artifact, host=args.host, port=args.port)

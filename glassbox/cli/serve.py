"""`glassbox serve RUN/model`: the frozen artifact over HTTP (read-only), batched and bounded."""
from __future__ import annotations

from dataclasses import fields


def add_parser(sub) -> None:
    from glassbox.infer.limits import FLAG_HELP, Limits

    p = sub.add_parser("serve", help="serve a frozen artifact over HTTP (read-only)")
    p.add_argument("artifact", help="the artifact folder, RUN/model")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (another than loopback needs a token "
                                                       "or --insecure)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on")
    p.add_argument("--token-file", help="a file holding the bearer token clients must send (or set $GLASSBOX_TOKEN)")
    p.add_argument("--insecure", action="store_true", help="allow a non-loopback --host without a token")
    for f in fields(Limits):
        default = f.default
        p.add_argument("--" + f.name.replace("_", "-"), type=int if f.type == "int" else float, default=default,
                       help=f"{FLAG_HELP[f.name]} (default {default})")
    p.set_defaults(func=run)


def run(args) -> None:
    from glassbox.infer.limits import Limits
    from glassbox.infer.server import serve

    limits = Limits(**{f.name: getattr(args, f.name) for f in fields(Limits)})
    serve(args.artifact, host=args.host, port=args.port, limits=limits, token_file=args.token_file,
          insecure=args.insecure)

"""`glassbox board [RUNS_DIR]`: a live local page of every run under a folder (read-only)."""
from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("board", help="a live local web page of the runs under a folder: curves, status, compare")
    p.add_argument("runs_dir", nargs="?", default="runs", help="the folder holding run folders (default runs/)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only; another "
                                                       "needs a token or --insecure)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on")
    p.add_argument("--token-file", help="a file holding the token the page asks for (or set $GLASSBOX_TOKEN)")
    p.add_argument("--insecure", action="store_true", help="allow a non-loopback --host without a token")
    p.set_defaults(func=run)


def run(args) -> None:
    from glassbox.board.app import serve

    serve(args.runs_dir, host=args.host, port=args.port, token_file=args.token_file, insecure=args.insecure)

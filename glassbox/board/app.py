"""The board's web app: the page (static/: plain HTML, JS and SVG, nothing fetched from elsewhere) and the JSON it
polls. Every answer is read from the run folders at the moment it is asked for; a run deleted while shown is a 404
that says so, never a server error."""
from __future__ import annotations

import html
from pathlib import Path

from glassbox.errors import UserError
from glassbox.infer.auth import authorized, check_exposure, is_loopback, read_token
from glassbox.runtime.files import json_safe
from glassbox.runtime.ports import allowed_hosts

STATIC = Path(__file__).resolve().parent / "static"

# Every answer says what a browser may run and load. The board's own pages: only its own files (static/), no inline
# script or style. A run's report.html is a file anyone who can write the run folder could have written: it may use
# its inline style and data: images, and is sandboxed with no script at all, so no page can run a stranger's script.
BOARD_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
             "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
REPORT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox; frame-ancestors 'none'; "
              "base-uri 'none'; form-action 'none'")


class Guard:
    """Plain ASGI around the board: with a token, a request without it gets 401 (a browser then asks for it: any user
    name, the token as the password; a script sends `Authorization: Bearer TOKEN`); every answer, a refusal too,
    carries the Content-Security-Policy and X-Content-Type-Options: nosniff."""

    def __init__(self, app, token: str | None):
        self.app, self.token = app, token.encode() if token else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        policy = (REPORT_CSP if scope["path"] == "/report" else BOARD_CSP).encode()

        async def with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"content-security-policy", policy),
                                                  (b"x-content-type-options", b"nosniff")]}
            await send(message)

        if self.token is not None and not authorized(scope["headers"], self.token, basic=True):
            body = b'{"detail": "this board needs its token: any user name, the token as the password"}'
            await with_headers({"type": "http.response.start", "status": 401, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b'Basic realm="glassbox board", charset="UTF-8"'),
                (b"cache-control", b"no-store")]})
            return await with_headers({"type": "http.response.body", "body": body})
        await self.app(scope, receive, with_headers)


def make_app(root: str | Path, hosts: list[str] | None = None, token: str | None = None):
    """The board's app for the runs under `root`; `hosts`: the Host headers it answers (None: any); `token`: the
    token every request must carry (None: none)."""
    from fastapi import FastAPI, Query
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles

    from glassbox.board.detail import differing_settings, metrics_since, run_detail
    from glassbox.board.runs import MAX_FILE_BYTES, RunIndex, Unreadable, read_json, read_run_file

    index = RunIndex(Path(root))
    app = FastAPI(title="glassbox board", description=f"the runs under {root}, read-only")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if hosts is not None:  # any other Host header: 400, before any route runs
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts)
    app.add_middleware(Guard, token=token)  # added last: the outermost, so its headers are on every answer

    def answer(content, status: int = 200) -> JSONResponse:
        return JSONResponse(json_safe(content), status_code=status, headers={"Cache-Control": "no-store"})

    def gone(run_id: str) -> JSONResponse:
        return answer({"detail": f"no run {run_id!r} under {root} now: its folder was deleted or moved",
                       "gone": True}, 404)

    @app.exception_handler(OSError)
    async def vanished(request, exc):  # a file removed between listing and reading it
        return answer({"detail": f"a run file could not be read ({exc.strerror or exc}); it was probably deleted "
                                 f"while being read", "gone": True}, 404)

    @app.get("/", response_class=HTMLResponse)
    def page():
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    @app.get("/api/runs")
    def runs():
        rows = index.rows()
        message = None if rows else (f"no runs under {root} yet: start one with glassbox train DATA --out "
                                     f"{Path(root) / 'NAME'}; this page shows it as soon as it starts")
        return answer({"root": str(root), "runs": rows, "message": message})

    @app.get("/api/run")
    def run(id: str = Query(...)):
        folder = index.folder(id)
        if folder is None:
            return gone(id)
        return answer(run_detail(folder, index.row(folder)))

    @app.get("/api/metrics")
    def metrics(id: str = Query(...), offset: int = Query(0, ge=0)):
        folder = index.folder(id)
        if folder is None:
            return gone(id)
        return answer(metrics_since(folder / "metrics.jsonl", offset))

    @app.get("/api/compare")
    def compare(id: list[str] = Query(...)):
        folders = [index.folder(i) for i in id]
        missing = [i for i, f in zip(id, folders) if f is None]
        if missing:
            return gone(", ".join(missing))
        configs = []
        for folder in folders:
            try:
                configs.append(read_json(folder / "config.json") or {})
            except Unreadable:
                configs.append({})
        return answer({"ids": id, "settings": differing_settings(configs)})

    @app.get("/report", response_class=HTMLResponse)
    def report(id: str = Query(...)):
        folder = index.folder(id)
        try:
            page, size = read_run_file(folder / "report.html") if folder is not None else (None, 0)
        except (FileNotFoundError, Unreadable):  # absent, or a link or a pipe in its place: never followed
            page = None
        if page is None or size > MAX_FILE_BYTES:
            return HTMLResponse(f"<p>No report.html in run {html.escape(repr(id))} (yet): it is written when the run "
                                f"finishes.</p>", status_code=404)  # the id as text, never as markup
        return HTMLResponse(page)

    return app


def serve(root: str | Path, host: str = "127.0.0.1", port: int = 8000, token_file: str | None = None,
          insecure: bool = False) -> None:
    import uvicorn

    from glassbox.board.runs import find_runs
    from glassbox.runtime.ports import check_can_listen, check_port

    root = Path(root)
    if not root.exists():
        raise UserError(f"runs folder not found: {root}; give the folder your runs are in (glassbox board RUNS_DIR)")
    if not root.is_dir():
        raise UserError(f"{root} is a file, not a folder; give the folder your runs are in (glassbox board RUNS_DIR)")
    check_port(port)
    token = read_token(token_file)
    check_exposure(host, token, insecure, what="read these runs, their settings and reports (which quote training "
                                               "examples),")
    app = make_app(root, allowed_hosts(host), token)
    check_can_listen(host, port)
    print(f"glassbox board: http://{host}:{port}/ shows the {len(find_runs(root))} runs under {root} "
          f"(read-only; Ctrl-C stops it)", flush=True)
    if token is not None:
        print("the page asks for the token: any user name, the token as the password (a script sends "
              "'Authorization: Bearer TOKEN'); over plain HTTP it crosses the network readable", flush=True)
    elif not is_loopback(host):
        print(f"note: on {host} anyone who reaches this port can read these runs, their settings and reports (which "
              f"quote training examples): --insecure was given", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")

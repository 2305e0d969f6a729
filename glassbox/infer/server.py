"""Serve a frozen artifact over HTTP (FastAPI). The server holds a read-only Predictor (a classifier) or
Generator (a language model): no route can train, and the weights never change while it runs.

Every input goes through one bounded queue (batcher.py): a classifier's inputs from concurrent requests share a
forward pass; a language model generates one request at a time. Bounds (limits.py), the token (auth.py) and the
counts (metrics.py) are checked in gate.py before a route sees the request."""

import asyncio
import time
from contextlib import asynccontextmanager
from pathlib import Path

from glassbox.config import RANGES
from glassbox.errors import TooLarge, UserError
from glassbox.infer import inputs as units_of
from glassbox.infer.batcher import Batcher, QueueFull
from glassbox.infer.gate import CLIENT_GONE, Gate
from glassbox.infer.limits import Limits
from glassbox.infer.metrics import CONTENT_TYPE, ServeMetrics

MAX_SEED = RANGES["seed"][1]  # the seeds `glassbox train` and `generate` accept
ROUTES = {"/predict", "/generate", "/info", "/health", "/ready", "/metrics", "/docs", "/openapi.json"}


def load_model(artifact: str | Path):
    """The Predictor or Generator (either checks the weights' sha256), and the seconds it took."""
    from glassbox.export.artifact import read_manifest

    start = time.perf_counter()
    if read_manifest(artifact).get("task") == "lm":
        from glassbox.infer.generator import Generator

        model = Generator(artifact)
    else:
        from glassbox.infer.predictor import Predictor

        model = Predictor(artifact)
    return model, time.perf_counter() - start


def make_app(artifact: str | Path, limits: Limits = Limits(), token: str | None = None,
             hosts: list[str] | None = None):
    """The ASGI app: FastAPI behind the gate. Use it inside `with TestClient(app)` or uvicorn (its lifespan
    starts the batcher). `hosts`: the Host names it answers (None: any)."""
    from fastapi import FastAPI

    model, load_seconds = load_model(artifact)
    is_lm = model.manifest["task"] == "lm"
    if is_lm:
        batcher = Batcher(lambda jobs: [generate_one(model, job) for job in jobs], 1, 0.0, limits.max_queue)
    else:
        batcher = Batcher(lambda batch: model.predict(units_of.join(model, batch)), limits.max_batch_size,
                          limits.max_wait_ms / 1000, limits.max_queue, cost=units_of.cost_of(model),
                          max_batch_cost=limits.max_batch_chars)
    metrics = ServeMetrics(batcher.max_batch_size, lambda: batcher.depth, load_seconds)
    batcher.on_batch, batcher.on_dropped = metrics.batch_size.observe, metrics.dropped.inc

    @asynccontextmanager
    async def lifespan(app):
        batcher.start()
        yield
        await batcher.stop()

    manifest = model.manifest
    app = FastAPI(title="glassbox", description=f"{manifest['architecture']} model, read-only", lifespan=lifespan)
    add_common_routes(app, model, limits, metrics, token is not None)
    (add_generate_route if is_lm else add_predict_route)(app, model, batcher, limits)
    return Gate(app, limits, metrics, token, ROUTES, hosts)


def add_common_routes(app, model, limits: Limits, metrics: ServeMetrics, token_required: bool) -> None:
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response

    manifest = model.manifest
    info = {k: manifest.get(k) for k in ("task", "architecture", "classes", "weights_sha256", "created",
                                          "training_data_fingerprint", "temperature", "knowledge_cutoff")}
    if manifest["task"] != "lm":  # what a client sends, and what the probabilities are
        info["input"] = units_of.input_kind(model)
        info["columns"] = getattr(model.encoder, "columns", None) if info["input"] == "table" else None
        info["probabilities"] = model.how_scaled()
        info["calibrated"] = model.calibrated
    if manifest["task"] == "regression":  # what a value's interval is: its nominal level and half-width
        info["interval"], info["label"] = manifest.get("interval"), (manifest.get("data_format") or {}).get("label")
    info["limits"], info["token_required"] = limits.to_dict(), token_required

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request, exc):
        # FastAPI's own answer echoes the input back, and an input such as NaN cannot be written as JSON
        return JSONResponse(status_code=422, content={"detail": [
            {"loc": [str(part) for part in e.get("loc", ())], "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()]})

    @app.get("/health")
    def health():
        """Liveness: the process answers."""
        return {"status": "ok", "weights_sha256": manifest["weights_sha256"]}

    @app.get("/ready")
    def ready():
        """Readiness: the artifact is loaded and its weights matched the sha256 in its manifest."""
        return {"ready": True, "weights_sha256": manifest["weights_sha256"], "load_seconds": metrics.load_seconds}

    @app.get("/info")
    def get_info():
        return info

    @app.get("/metrics")
    def get_metrics():
        return Response(metrics.text(), media_type=CONTENT_TYPE)


def add_predict_route(app, predictor, batcher: Batcher, limits: Limits) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from fastapi import Request
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, Field

    # images are decoded by a few threads of their own: other requests are not held while Pillow works, and the
    # memory decoding takes stays below decode_threads x --max-image-pixels however many requests arrive
    decoders = ThreadPoolExecutor(limits.decode_threads, thread_name_prefix="glassbox-decode") \
        if units_of.slow_to_parse(predictor) else None

    def parse(raw: list[str]) -> list:
        return units_of.units(predictor, raw, limits.max_input_chars, limits.max_image_pixels)

    class PredictRequest(BaseModel):
        inputs: list[str] = Field(..., description="CSV rows of feature values, texts, or images as base64 of "
                                                   "their file bytes (never a path)")

    @app.post("/predict")
    async def predict(req: PredictRequest, request: Request):
        if not req.inputs:
            return refuse(422, "give at least one input")
        if len(req.inputs) > limits.max_inputs:
            return refuse(413, f"{len(req.inputs)} inputs in one request; the limit is {limits.max_inputs} "
                               f"(--max-inputs): split them over several requests")
        try:
            batch = (await asyncio.get_running_loop().run_in_executor(decoders, parse, req.inputs) if decoders
                     else parse(req.inputs))
        except TooLarge as e:
            return refuse(413, str(e))
        except UserError as e:
            return refuse(422, str(e))
        try:
            answers = await answer_in_time(request, batcher, batch, limits.timeout_s)
        except UserError as e:  # outputs that are not numbers: said, never sent as NaN (the inputs shared a batch)
            return refuse(422, str(e))
        if isinstance(answers, JSONResponse):
            return answers
        return JSONResponse({"predictions": answers, "calibrated": predictor.calibrated})


class Job:
    """One /generate request as the model thread sees it; `stopped` is set when its caller no longer waits."""

    def __init__(self, settings: dict):
        self.settings, self.stopped = settings, False


def generate_one(generator, job: Job):
    from glassbox.infer.generator import Stopped

    try:
        return generator.generate(**job.settings, stop=lambda: job.stopped)
    except (UserError, Stopped) as e:  # a prompt the tokenizer cannot take; or nobody waits any more
        return e


def add_generate_route(app, generator, batcher: Batcher, limits: Limits) -> None:
    from fastapi import Request
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, Field

    class GenerateRequest(BaseModel):
        prompt: str
        max_new_tokens: int = Field(100, ge=1, le=2000)
        temperature: float = Field(0.8, ge=0, allow_inf_nan=False)
        top_k: int | None = Field(None, ge=1)
        seed: int = Field(0, ge=0, le=MAX_SEED)

    @app.post("/generate")
    async def generate(req: GenerateRequest, request: Request):
        if len(req.prompt) > limits.max_input_chars:
            return refuse(413, f"the prompt is {len(req.prompt):,} characters; the limit is {limits.max_input_chars:,} "
                               f"(--max-input-chars)")
        job = Job(req.model_dump())
        try:
            answers = await answer_in_time(request, batcher, [job], limits.timeout_s)
        finally:  # refused, or cancelled at the end of --drain-s: a generation still running ends at its next look
            job.stopped = True
        if isinstance(answers, JSONResponse):
            return answers
        if isinstance(answers[0], Exception):
            return refuse(422, str(answers[0]))
        return JSONResponse({"text": answers[0]})


async def answer_in_time(request, batcher: Batcher, inputs: list, timeout_s: float):
    """The answers to `inputs`, in order; or the refusal: 503 (queue full), 504 (deadline), 499 (caller gone).
    Refused inputs still queued are cancelled, so the batcher drops them before the model."""
    try:
        futures = batcher.submit(inputs)
    except QueueFull as e:
        return refuse(503, f"the server is busy: {e} (--max-queue); retry after a second", {"Retry-After": "1"})
    answers = asyncio.gather(*futures)
    gone = asyncio.ensure_future(disconnected(request))
    try:
        done, _ = await asyncio.wait({answers, gone}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:  # the server is stopping and --drain-s has run out: drop what is still queued,
        answers.cancel()            # and tell the caller so (not a 500 with a traceback in the log)
        return refuse(503, "the server is stopping and --drain-s ran out before this answer; send it again once "
                           "the server is back", {"Retry-After": "1", "Connection": "close"})
    finally:
        gone.cancel()
    if answers in done:
        return answers.result()
    answers.cancel()
    if gone in done:
        return refuse(CLIENT_GONE, "the caller left before its answer")
    return refuse(504, f"no answer within {timeout_s:g} s (--timeout-s); its inputs not yet computed were dropped")


async def disconnected(request) -> None:
    """Returns when the caller closes the connection (the ASGI server says http.disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def refuse(status: int, detail: str, headers: dict | None = None):
    from fastapi.responses import JSONResponse

    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def serve(artifact: str | Path, host: str = "127.0.0.1", port: int = 8000, limits: Limits = Limits(),
          token_file: str | None = None, insecure: bool = False) -> None:
    import gc
    import signal

    import uvicorn

    from glassbox.infer.auth import check_exposure, read_token
    from glassbox.runtime.ports import allowed_hosts, check_can_listen, check_port

    check_port(port)
    token = read_token(token_file)
    check_exposure(host, token, insecure)
    app = make_app(artifact, limits, token, allowed_hosts(host))  # a bad artifact fails here, before the port is taken
    check_can_listen(host, port)
    # uvicorn drains on SIGTERM (no new connections, in-flight requests get drain_s), then raises the signal
    # again under the handler it found: this one, so a drained server exits 0 instead of dying of the signal
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    # The ~220,000 objects of torch, FastAPI and the model live as long as the server: out of the collector's
    # sight, a full collection no longer walks them (it took ~300 ms here, a request's p99 on its own)
    gc.freeze()
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=limits.drain_s)

"""Serve a frozen artifact over HTTP (FastAPI). The server holds a read-only Predictor (a classifier) or
Generator (a language model): no route can train, and the weights never change while it runs."""

from pathlib import Path

from glassbox.config import RANGES
from glassbox.errors import UserError

MAX_SEED = RANGES["seed"][1]  # the seeds `glassbox train` and `generate` accept


def make_app(artifact: str | Path):
    from fastapi import FastAPI, HTTPException
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, Field

    from glassbox.export.artifact import read_manifest

    manifest = read_manifest(artifact)
    app = FastAPI(title="glassbox", description=f"{manifest['architecture']} model, read-only")

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request, exc):
        # FastAPI's own answer echoes the input back, and an input such as NaN cannot be written as JSON
        return JSONResponse(status_code=422, content={"detail": [
            {"loc": [str(part) for part in e.get("loc", ())], "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()]})
    info = {k: manifest.get(k) for k in ("task", "architecture", "classes", "weights_sha256", "created",
                                          "training_data_fingerprint", "temperature", "knowledge_cutoff")}

    class PredictRequest(BaseModel):
        inputs: list[str] = Field(..., description="CSV rows of feature values, image paths, or texts")

    class GenerateRequest(BaseModel):
        prompt: str
        max_new_tokens: int = Field(100, ge=1, le=2000)
        temperature: float = Field(0.8, ge=0, allow_inf_nan=False)
        top_k: int | None = Field(None, ge=1)
        seed: int = Field(0, ge=0, le=MAX_SEED)

    @app.get("/health")
    def health():
        return {"status": "ok", "weights_sha256": manifest["weights_sha256"]}

    @app.get("/info")
    def get_info():
        return info

    if manifest["task"] == "lm":
        from glassbox.infer.generator import Generator

        generator = Generator(artifact)

        @app.post("/generate")
        def generate(req: GenerateRequest):
            try:
                text = generator.generate(req.prompt, req.max_new_tokens, temperature=req.temperature,
                                          top_k=req.top_k, seed=req.seed)
            except UserError as e:  # a prompt the tokenizer cannot take, or an empty one
                raise HTTPException(status_code=422, detail=str(e)) from None
            return {"text": text}
    else:
        from glassbox.infer.predictor import Predictor

        predictor = Predictor(artifact)

        @app.post("/predict")
        def predict(req: PredictRequest):
            if not req.inputs:
                raise HTTPException(status_code=422, detail="give at least one input")
            try:
                results = predictor.predict(predictor.parse(req.inputs))
            except UserError as e:
                raise HTTPException(status_code=422, detail=str(e)) from None
            return {"predictions": results, "calibrated": predictor.calibrated}

    return app


def serve(artifact: str | Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    import socket

    import uvicorn

    if not 0 < port < 65536:
        raise UserError(f"--port must be between 1 and 65535. Got {port}")
    app = make_app(artifact)  # a bad artifact fails here, before the port is taken
    try:  # find out now, in one line, if the address cannot be used
        with socket.create_server((host, port)):
            pass
    except (OSError, UnicodeError) as e:
        raise UserError(f"cannot listen on {host}:{port} ({getattr(e, 'strerror', None) or e}); "
                        f"choose another --port or --host") from None

    uvicorn.run(app, host=host, port=port, log_level="info")

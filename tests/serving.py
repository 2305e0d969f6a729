"""Helpers for the server tests: a small real artifact trained in seconds (the run's own encoder and model
builders, a plain loop, the real exporter; no audit, which would cost ~20 s), and a real `glassbox serve`
process on a free loopback port."""
from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import torch
import torch.nn.functional as F

from glassbox.config import TrainConfig
from glassbox.export.artifact import save_artifact
from glassbox.models.registry import build_model
from glassbox.run.model_for_data import make_encoder, model_config
from glassbox.runtime.threads import forward_flops
from tests.conftest import subprocess_env


def tiny_artifact(ex, out: Path, steps: int = 40, lr: float = 0.2, seed: int = 0) -> Path:
    """Train the model `glassbox train` would pick for these examples for a few steps, and export it."""
    encoder = make_encoder(ex, TrainConfig())
    arch, config = model_config(ex, encoder, TrainConfig())
    torch.manual_seed(seed)
    model = build_model(arch, config)
    x, y = encoder.encode(ex.inputs), torch.from_numpy(ex.labels)
    for _ in range(steps):  # plain SGD, written out: the model only has to be a real trained one
        idx = torch.randint(len(y), (64,))
        loss = F.cross_entropy(model(x[idx]), y[idx])
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                if p.grad is not None:
                    p -= lr * p.grad
    # one prediction's FLOPs, as a run's export records them (the server's first request would count them otherwise)
    flops = forward_flops(model.eval(), x[:1])
    return save_artifact(out, model, arch, config, task="classify", classes=ex.classes, encoder=encoder.to_dict(),
                         data_fingerprint=ex.fingerprint(), extra={"inference_flops": flops})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(artifact: Path, *flags: str, env: dict | None = None):
    """`glassbox serve ARTIFACT FLAGS` as its own process; yields (process, base URL) once /health answers."""
    port = free_port()
    log = tempfile.TemporaryFile()  # not a pipe: a full pipe would stall a server that logs every request
    proc = subprocess.Popen([sys.executable, "-m", "glassbox", "serve", str(artifact), "--port", str(port), *flags],
                            stdout=subprocess.DEVNULL, stderr=log, env=subprocess_env(**(env or {})))
    proc.log = log  # what it wrote on stderr: tail(proc.log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            assert proc.poll() is None, f"the server exited with {proc.returncode}: {tail(log)}"
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.time() < deadline, "the server did not answer within 90 s"
                time.sleep(0.1)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        log.close()


def tail(log) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")[-2000:]


def metric(text: str, name: str, **labels) -> float:
    """One sample's value from Prometheus text, parsed by prometheus-client's own parser (0 if absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0

"""The Generator is the one place text comes from: its text is the model's own sampling for the seed, the
CLI and a real server process write the same text, the weights never change, a classifier is refused,
and a Generator over the model a run just trained redraws that run's report samples exactly."""
import hashlib
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from glassbox.cli import main
from glassbox.data.corpus import load_prepared, tokenizer_from_dict
from glassbox.errors import UserError
from glassbox.export.artifact import load_artifact
from glassbox.infer.generator import MAX_NEW_TOKENS, Generator, Stopped
from tests.conftest import TINY_LM_SEED, subprocess_env
from tests.killing import stopped_on_exit

SEED = TINY_LM_SEED


@pytest.fixture
def lm_run(tiny_lm_run):
    return tiny_lm_run


def weights_hash(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode() + t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def test_text_is_the_models_own_sampling_and_the_weights_never_change(lm_run):
    g = Generator(lm_run / "model")
    before = weights_hash(g.model)
    threads = torch.get_num_threads()
    text = g.generate("ROMEO:", max_new_tokens=40, temperature=0.8, top_k=10, seed=3)

    manifest, model = load_artifact(lm_run / "model")  # the same sampling, written out here
    tok = tokenizer_from_dict(manifest["preprocessing"])
    ids = model.generate(torch.tensor([tok.encode("ROMEO:")]), 40, temperature=0.8, top_k=10,
                         generator=torch.Generator().manual_seed(3))
    assert text == tok.decode(ids[0].tolist())
    assert text.startswith("ROMEO:") and len(text) == len("ROMEO:") + 40  # a char tokenizer: one token, one character
    assert g.generate("ROMEO:", max_new_tokens=40, temperature=0.8, top_k=10, seed=3) == text
    assert g.generate("ROMEO:", max_new_tokens=40, temperature=0.8, top_k=10, seed=4) != text
    assert weights_hash(g.model) == before == weights_hash(model)
    assert not any(p.requires_grad for p in g.model.parameters())
    assert g.threads == 1 and torch.get_num_threads() == threads  # a tiny model: one thread, and the count comes back


def test_a_generator_over_the_trained_model_redraws_the_runs_samples(lm_run):
    summary = json.loads((lm_run / "summary.json").read_text())
    tok, _, val_ids, _ = load_prepared(lm_run / "data")
    _, model = load_artifact(lm_run / "model")
    model.train()  # as the run leaves it after training; the weights stay trainable
    before = weights_hash(model)
    g = Generator.from_model(model, tok)
    samples = g.samples(tok.decode(val_ids[:8].tolist()), 3, 200, temperature=0.8, top_k=50, seed=SEED)
    assert samples == summary["samples"] and len(set(samples)) == 3  # three draws from one seeded stream
    assert samples[0] == g.generate(tok.decode(val_ids[:8].tolist()), 200, temperature=0.8, top_k=50, seed=SEED)
    assert weights_hash(model) == before and all(p.requires_grad for p in model.parameters())
    assert g.info is None  # no artifact, no knowledge cutoff to tell


@pytest.mark.parametrize("settings, needle", [
    ({"top_k": 0}, "--top-k must be at least 1"),
    ({"temperature": -0.1}, "--temperature must be a number of at least 0"),
    ({"temperature": float("nan")}, "--temperature must be a number of at least 0"),
    ({"temperature": float("inf")}, "--temperature must be a number of at least 0"),
    ({"seed": -1}, "--seed must be between 0 and 4,294,967,295"),
    ({"seed": 2**32}, "--seed must be between 0 and 4,294,967,295"),
    ({"max_new_tokens": 0}, "--max-new-tokens must be between 1 and 100,000. Got 0"),
    ({"max_new_tokens": MAX_NEW_TOKENS + 1}, "Got 100,001"),
    ({"max_new_tokens": 2.5}, "Got 2.5"),
    ({"prompt": ""}, "the prompt is empty after tokenising"),
    ({"prompt": "ROMEO§"}, "'§'"),
])
def test_bad_settings_are_refused_in_one_line(lm_run, settings, needle):
    g = Generator(lm_run / "model")
    kwargs = {"prompt": "ROMEO:", "max_new_tokens": 5, **settings}
    with pytest.raises(UserError) as e:
        g.generate(**kwargs)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_a_classifier_artifact_is_refused(digits_csv, tmp_path, capsys):
    out = tmp_path / "digits"
    assert main(["train", str(digits_csv), "--label", "digit", "--max-steps", "5", "--quiet", "--out", str(out)]) == 0
    with pytest.raises(UserError, match="is a classify model, not a language model; use 'glassbox predict'"):
        Generator(out / "model")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def test_a_real_server_and_the_cli_write_the_same_text(lm_run, capsys):
    model = lm_run / "model"
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "glassbox", "serve", str(model), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=subprocess_env())
    with stopped_on_exit(server):
        deadline = time.time() + 60
        while True:  # wait until it answers
            assert server.poll() is None, f"the server exited with {server.returncode}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError):
                assert time.time() < deadline, "the server did not answer within 60 s"
                time.sleep(0.2)
        body = {"prompt": "ROMEO:", "max_new_tokens": 60, "temperature": 0.9, "top_k": 20, "seed": 11}
        text = post(f"http://127.0.0.1:{port}/generate", body)["text"]
        long_text, answered, signalled = generation_through_sigterm(server, port)
        assert answered > signalled                     # the generation was in flight when SIGTERM came ...
        assert server.wait(timeout=60) == 0             # ... and finished before the server exited, with 0
        with pytest.raises(urllib.error.URLError):      # and no new request is taken
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5)
    assert long_text == Generator(model).generate(**LONG)
    assert main(["generate", str(model), "--prompt", "ROMEO:", "--max-new-tokens", "60", "--temperature", "0.9",
                 "--top-k", "20", "--seed", "11"]) == 0
    assert capsys.readouterr().out == text + "\n"
    assert text == Generator(model).generate("ROMEO:", 60, temperature=0.9, top_k=20, seed=11)


LONG = {"prompt": "ROMEO:", "max_new_tokens": 600, "temperature": 0.8, "seed": 5}


def generation_through_sigterm(server: subprocess.Popen, port: int) -> tuple[str, float, float]:
    """Ask for a long generation, send SIGTERM while it runs; its text, when it came, when the signal went."""
    with ThreadPoolExecutor(1) as pool:
        started = threading.Event()

        def ask():
            started.set()
            return post(f"http://127.0.0.1:{port}/generate", LONG)["text"], time.perf_counter()
        answer = pool.submit(ask)
        started.wait()
        while in_flight(port) < 1:  # the generation (a scrape of /metrics is answered outside the count)
            assert not answer.done(), "the generation was answered before the test saw it in flight"
            time.sleep(0.01)
        signalled = time.perf_counter()
        server.send_signal(signal.SIGTERM)
        text, answered = answer.result()
    return text, answered, signalled


def test_a_stop_check_leaves_the_text_alone_and_stops_within_16_tokens(lm_run):
    g = Generator(lm_run / "model")
    looks = []
    assert g.generate("ROMEO:", 50, seed=2, stop=lambda: looks.append(1) and False) == g.generate("ROMEO:", 50, seed=2)
    assert len(looks) == 4                                     # tokens 0, 16, 32, 48: a look every 16
    with pytest.raises(Stopped, match="after 16 of 2000 tokens"):
        g.generate("ROMEO:", 2000, stop=lambda: len(looks) > 4 or looks.append(1))


def in_flight(port: int) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        families = text_string_to_metric_families(r.read().decode())
        return next(f.samples[0].value for f in families if f.name == "glassbox_requests_in_flight")


def test_info_tells_the_knowledge_cutoff_and_refuses_a_prompt(lm_run, capsys):
    model = lm_run / "model"
    assert main(["generate", str(model), "--info"]) == 0
    info = capsys.readouterr().out
    assert info == Generator(model).info + "\n"
    corpus = json.loads((lm_run / "summary.json").read_text())["corpus"]
    assert f"trained on {corpus['tokens']['train']:,} tokens" in info and corpus["sha256"][:16] in info
    assert main(["generate", str(model), "--info", "--prompt", "ROMEO:"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["glassbox: error: --info describes the model and generates nothing; give --info or --prompt, not both"]

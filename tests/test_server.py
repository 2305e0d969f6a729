"""The HTTP server answers from the frozen artifact and cannot change it; a language model's artifact
generates over HTTP as `glassbox generate` does, and each command refuses the other kind of artifact."""
import json
import socket
import time

import pytest
import torch
from fastapi.testclient import TestClient

from glassbox.cli import main
from glassbox.infer.server import make_app
from glassbox.run.train.start import train as run


@pytest.fixture(scope="module")
def digits_run(digits_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("server_digits") / "r"
    run(str(digits_csv), label="digit", out=str(out), max_steps=40, quiet=True)
    return out


@pytest.fixture
def lm_run(tiny_lm_run):
    return tiny_lm_run


def test_predict_over_http(digits_run, digits_csv):
    before = (digits_run / "model" / "model.safetensors").read_bytes()
    with TestClient(make_app(digits_run / "model")) as client:  # `with`: the app's lifespan starts its batcher
        answer_rows(client, digits_csv)
    assert (digits_run / "model" / "model.safetensors").read_bytes() == before


def answer_rows(client, digits_csv):
    assert client.get("/health").json()["status"] == "ok"
    info = client.get("/info").json()
    assert info["classes"] == [str(i) for i in range(10)]
    rows = [r.rsplit(",", 1)[0] for r in digits_csv.read_text().splitlines()[1:21]]
    labels = [r.rsplit(",", 1)[1] for r in digits_csv.read_text().splitlines()[1:21]]
    out = client.post("/predict", json={"inputs": rows}).json()
    assert len(out["predictions"]) == 20
    assert sum(p["label"] == y for p, y in zip(out["predictions"], labels)) >= 14
    bad = client.post("/predict", json={"inputs": ["1,2,3"]})
    assert bad.status_code == 422 and "64" in bad.json()["detail"]
    assert client.post("/generate", json={"prompt": "1,2"}).status_code == 404  # a classifier does not generate


def test_a_small_model_predicts_on_one_thread_and_leaves_the_count_alone(digits_run, digits_csv):
    from glassbox.infer.predictor import Predictor

    rows = [r.rsplit(",", 1)[0] for r in digits_csv.read_text().splitlines()[1:6]]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        p = Predictor(digits_run / "model")
        first = p.predict_proba(p.parse(rows))
        assert p.threads == 1 and torch.get_num_threads() == 2
        torch.set_num_threads(1)  # the same answers whatever the count
        assert torch.allclose(first, p.predict_proba(p.parse(rows)), atol=1e-6)
    finally:
        torch.set_num_threads(before)


def test_generate_over_http_is_what_the_cli_writes(lm_run, capsys):
    model = lm_run / "model"
    before = (model / "model.safetensors").read_bytes()
    with TestClient(make_app(model)) as client:
        generate_over_http(client, lm_run, capsys)
    assert (model / "model.safetensors").read_bytes() == before


def generate_over_http(client, lm_run, capsys):
    model, manifest = lm_run / "model", json.loads((lm_run / "model" / "manifest.json").read_text())
    assert client.get("/health").json() == {"status": "ok", "weights_sha256": manifest["weights_sha256"]}
    info = client.get("/info").json()
    assert info["task"] == "lm" and info["architecture"] == "gpt" and info["classes"] is None
    assert info["knowledge_cutoff"]["corpus_sha256"] == json.loads((lm_run / "summary.json").read_text())["data_fingerprint"]
    body = {"prompt": "ROMEO:", "max_new_tokens": 40, "temperature": 0.8, "top_k": 10, "seed": 3}
    texts = [client.post("/generate", json=body).json()["text"] for _ in range(2)]
    other = client.post("/generate", json={**body, "seed": 4}).json()["text"]
    assert texts[0] == texts[1] != other                       # the seed decides the sample
    assert texts[0].startswith("ROMEO:") and len(texts[0]) == len("ROMEO:") + 40  # one character per token
    assert main(["generate", str(model), "--prompt", "ROMEO:", "--max-new-tokens", "40", "--temperature", "0.8",
                 "--top-k", "10", "--seed", "3"]) == 0
    assert capsys.readouterr().out == texts[0] + "\n"          # the same text as the command line
    greedy = [client.post("/generate", json={"prompt": "ROMEO:", "max_new_tokens": 20, "temperature": 0, "seed": s})
              .json()["text"] for s in (1, 2)]
    assert greedy[0] == greedy[1]                              # temperature 0: the likeliest token, whatever the seed
    for bad, needle in [({"prompt": "ROMEO§"}, "'§'"), ({"prompt": ""}, "empty"),
                        ({"prompt": "a", "max_new_tokens": 0}, "max_new_tokens"), ({"prompt": "a", "top_k": 0}, "top_k"),
                        ({"prompt": "a", "temperature": -1}, "temperature")]:
        answer = client.post("/generate", json=bad)
        assert answer.status_code == 422 and needle in answer.text, (bad, answer.text)
    assert client.post("/predict", json={"inputs": ["x"]}).status_code == 404  # a language model does not classify


def one_line_error(capsys, *needles) -> None:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("glassbox: error:"), lines
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize("flags, needle", [(["--top-k", "0"], "--top-k must be at least 1"),
                                           (["--temperature", "-1"], "--temperature must be a number of at least 0"),
                                           (["--temperature", "nan"], "--temperature must be a number of at least 0"),
                                           (["--temperature", "inf"], "--temperature must be a number of at least 0"),
                                           (["--max-new-tokens", "0"], "--max-new-tokens must be between 1 and"),
                                           (["--max-new-tokens", "100001"], "--max-new-tokens must be between 1 and")])
def test_generate_refuses_settings_that_cannot_work(lm_run, capsys, flags, needle):
    assert main(["generate", str(lm_run / "model"), "--prompt", "ROMEO:", *flags]) == 2
    one_line_error(capsys, needle)


def test_each_command_refuses_the_other_kind_of_artifact(lm_run, digits_run, digits_csv, capsys):
    classifier, lm = str(digits_run / "model"), str(lm_run / "model")
    assert main(["generate", classifier, "--prompt", "1,2"]) == 2
    one_line_error(capsys, "is a classify model, not a language model", "glassbox predict")
    assert main(["predict", lm, "ROMEO:"]) == 2
    one_line_error(capsys, "is a language model, not a classifier", "glassbox generate")
    assert main(["eval", lm, str(digits_csv), "--label", "digit"]) == 2
    one_line_error(capsys, "is a language model, not a classifier")


def test_predict_url_with_a_table_file_prints_what_local_predict_prints(digits_run, digits_csv, tmp_path, capsys):
    """A CSV file with a header (columns in another order, an extra column): the client sends the feature
    values in the training order, and the server answers as the artifact does locally."""
    import threading

    import uvicorn

    lines = digits_csv.read_text().splitlines()[:31]
    rows = [line.split(",") for line in lines]
    shuffled = tmp_path / "rows.csv"
    shuffled.write_text("\n".join(",".join(["note", *reversed(r)]) for r in rows) + "\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(make_app(digits_run / "model"), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "the server thread ended before it started listening"
            time.sleep(0.05)
        assert main(["predict", "--url", f"http://127.0.0.1:{port}", "--file", str(shuffled)]) == 0
        remote = capsys.readouterr()
    finally:
        server.should_exit = True
        thread.join()
    assert main(["predict", str(digits_run / "model"), "--file", str(shuffled)]) == 0
    assert capsys.readouterr() == remote and len(remote.out.splitlines()) == 30


def test_a_server_refuses_weights_changed_after_export(digits_run, tmp_path, capsys):
    import shutil

    model = shutil.copytree(digits_run / "model", tmp_path / "model")
    weights = bytearray((model / "model.safetensors").read_bytes())
    weights[-1] ^= 1
    (model / "model.safetensors").write_bytes(bytes(weights))
    assert main(["serve", str(model)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sha256" in err[0] and "refusing to load" in err[0], err


def test_a_generation_past_its_deadline_answers_504(lm_run):
    from glassbox.infer.limits import Limits

    with TestClient(make_app(lm_run / "model", Limits(timeout_s=0.05))) as client:
        late = client.post("/generate", json={"prompt": "ROMEO:", "max_new_tokens": 2000})
        assert late.status_code == 504 and "--timeout-s" in late.json()["detail"]
        metrics = client.get("/metrics").text
    assert 'glassbox_requests_total{route="/generate",status="504"} 1.0' in metrics

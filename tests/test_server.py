"""The HTTP server answers from the frozen artifact and cannot change it."""
import torch
from fastapi.testclient import TestClient

from glassbox.infer.server import make_app
from glassbox.pipeline import run


def test_predict_over_http(tmp_path, digits_csv):
    run(str(digits_csv), label="digit", out=str(tmp_path / "r"), max_steps=40, quiet=True)
    before = (tmp_path / "r" / "model" / "model.safetensors").read_bytes()
    client = TestClient(make_app(tmp_path / "r" / "model"))
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
    assert (tmp_path / "r" / "model" / "model.safetensors").read_bytes() == before


def test_a_small_model_predicts_on_one_thread_and_leaves_the_count_alone(tmp_path, digits_csv):
    from glassbox.infer.predictor import Predictor

    run(str(digits_csv), label="digit", out=str(tmp_path / "r"), max_steps=10, quiet=True)
    rows = [r.rsplit(",", 1)[0] for r in digits_csv.read_text().splitlines()[1:6]]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        p = Predictor(tmp_path / "r" / "model")
        first = p.predict_proba(p.parse(rows))
        assert p.threads == 1 and torch.get_num_threads() == 2
        torch.set_num_threads(1)  # the same answers whatever the count
        assert torch.allclose(first, p.predict_proba(p.parse(rows)), atol=1e-6)
    finally:
        torch.set_num_threads(before)

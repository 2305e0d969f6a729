"""examples/how_training_works.ipynb runs in a real Jupyter kernel on real data (UCI Adult), without an error: the Run
shows its report inline, the model beats the chance level, and training draws one progress bar in place of a line
per step."""
import re

import pytest

from tests.conftest import ROOT, SHARED, shared, subprocess_env

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
KernelManager = pytest.importorskip("jupyter_client").KernelManager


def outputs(cell, kind: str | None = None) -> list:
    return [o for o in cell.get("outputs", []) if kind is None or o.output_type == kind]


def test_the_example_notebook_runs_and_shows_the_run(tmp_path, monkeypatch):
    shared("uci_adult", "adult.data")
    for key, value in subprocess_env(GLASSBOX_SHARED_DATA=str(SHARED)).items():  # the kernel is a process of its own
        monkeypatch.setenv(key, value)
    notebook = nbformat.read(ROOT / "examples" / "how_training_works.ipynb", as_version=4)
    assert not any(outputs(c) for c in notebook.cells if c.cell_type == "code")  # kept without outputs
    # The kernel talks over Unix sockets in tmp_path, not TCP ports that another test's server could take first.
    kernel = KernelManager(kernel_name="python3", transport="ipc", ip=str(tmp_path / "kernel"))
    nbclient.NotebookClient(notebook, km=kernel, timeout=240,
                            resources={"metadata": {"path": str(tmp_path)}}).execute()  # raises on an error cell
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert not [o for c in code for o in outputs(c, "error")]

    training = next(c for c in code if "glassbox.train(" in c.source)
    bars = [o.data["text/plain"] for o in outputs(training, "display_data") if "<progress" in o.data.get("text/html", "")]
    assert [b.split(" [")[0] for b in bars] == ["audit: label check, fold models", "training"], bars
    done = re.search(r"\] (\d+)/(\d+)", bars[1])
    assert done and done[1] == done[2] and int(done[2]) >= 100  # redrawn to its last step, in one output
    printed = "".join(o.text for o in outputs(training, "stream") if o.name == "stdout")
    assert printed.count("\n") < 120 and printed.count("step ") <= 2 * 25  # an evaluation a line, not a step a line

    shown = next(c for c in code if c.source.strip() == "run")
    html = outputs(shown, "execute_result")[0].data["text/html"]
    assert html.startswith('<div class="glassbox-run">')
    assert "What to worry about most" in html and "Learning curves" in html and "&lt;=50K" in html

    chance = next(c for c in code if "s.chance.majority_accuracy" in c.source)
    text = "".join(o.text for o in outputs(chance, "stream"))
    majority = float(re.search(r"always '<=50K': +accuracy ([\d.]+)", text)[1])
    accuracy = float(re.search(r"the trained model, on test: +accuracy ([\d.]+)", text)[1])
    assert 0.7 < majority < 0.8 and accuracy > 0.8 and accuracy > majority + 0.04, text
    assert list(tmp_path.glob("runs/*-dataframe/data.parquet"))  # the run folder keeps the DataFrame it trained on

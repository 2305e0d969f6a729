"""glassbox from Python (a script or a notebook): `glassbox.train` takes what the command line takes, and data in
memory too, and returns a `Run`: the finished run's folder, typed summary, model and report.

    run = glassbox.train(frame, label="income")       # a DataFrame; or a path, (X, y), (texts, labels)
    run.summary.test_accuracy                          # the typed summary.json (report/summary.py)
    run.predict(frame.head(3))                         # the frozen model (infer/predictor.py)
    run                                                # in Jupyter: the report's summary and curves
    run = glassbox.Run.open("runs/adult")              # a finished run, later
"""
from __future__ import annotations

import atexit
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from glassbox.errors import UserError
from glassbox.run.in_memory import is_in_memory, stage


def train(data=None, **settings) -> "Run":
    """Train end to end (as `glassbox train` does) on a path, a built-in name, a DataFrame (with label="COL"), a pair
    (X, y) of arrays or tensors, or a pair (texts, labels); `settings` are the command line's settings by their
    Python names (label="income", max_steps=200). Returns the finished Run."""
    from glassbox.run.train.start import start_run
    from glassbox.runtime import distributed

    sources = {}
    if isinstance(data, os.PathLike):
        data = os.fspath(data)
    if is_in_memory(data):
        staged = stage(data, settings)
        if settings.get("resume"):  # the run reads its own copy; the data given must be the same
            staged.discard()
            check_same_data(staged.record, settings.get("out"))
            data = None
        else:
            settings = {**staged.settings, **settings}
            sources = {"data": f"glassbox.train: {staged.record['type']} in memory",
                       **{key: "the pair (inputs, labels) given to glassbox.train" for key in staged.settings}}
            data = staged
    run_dir, _ = start_run(data, sources=sources, **settings)
    run = Run(run_dir)
    if distributed.current().is_main:
        run.summary  # noqa: B018 (read now: a run that wrote no summary says so here, in one line)
    return run


def check_same_data(record: dict, out) -> None:
    """--resume of a run trained on in-memory data: refuse data other than that it started on."""
    path = Path(str(out)) / "config.json" if out else None
    if path is None or not path.is_file():
        return  # no run to resume: start_run says so
    try:
        kept = (json.loads(path.read_text(encoding="utf-8")).get("data_source") or {}).get("in_memory") or {}
    except (OSError, ValueError, AttributeError):
        return  # a damaged config.json: start_run says so
    if not kept:
        raise UserError(f"the run in {out} trained on {json.loads(path.read_text())['data']}, not on data given in "
                        f"memory; resume it with glassbox.train(out={str(out)!r}, resume=True)")
    if kept.get("content_sha256") != record["content_sha256"]:
        raise UserError(f"this {record['type']} is not the one the run in {out} started on (sha256 of its content "
                        f"{record['content_sha256'][:12]}..., then {str(kept.get('content_sha256'))[:12]}...); resume "
                        f"continues on the same data: give that data, or none (the run reads its copy)")


class Run:
    """A finished training run: its folder and files, its typed summary, its frozen model and its report.

    path            the run folder; report_path, model_path: report.html and the artifact folder in it
    summary         summary.json, typed: ClassifierSummary, RegressionSummary or LMSummary (report/summary.py)
    config          config.json: every setting, where each came from, and the record of the data it trained on
    metrics, audit  metrics.jsonl (one evaluation each) and audit.json
    predictor       the frozen model, read-only (glassbox.load(run.model_path))
    predict(inputs) its predictions; report() the page; board() a live page of the run
    """

    def __init__(self, path):
        self.path = Path(path)
        self._loaded = None      # the report's reading of the folder (report/load.py), on first use
        self._predictor = None
        self.board_process = None  # the `glassbox board` process board() started

    @classmethod
    def open(cls, path) -> "Run":
        """A finished run's folder (a UserError, in one line, for anything else)."""
        run = cls(path)
        run.summary  # noqa: B018
        return run

    @property
    def loaded(self):
        if self._loaded is None:
            from glassbox.report.load import load_run

            self._loaded = load_run(self.path)
        return self._loaded

    @property
    def summary(self):
        return self.loaded.summary

    @property
    def metrics(self) -> list[dict]:
        return self.loaded.metrics

    @property
    def audit(self) -> dict | None:
        return self.loaded.audit

    @property
    def config(self) -> dict:
        return json.loads((self.path / "config.json").read_text(encoding="utf-8"))

    @property
    def report_path(self) -> Path:
        return self.path / "report.html"

    @property
    def model_path(self) -> Path:
        return self.path / "model"

    @property
    def predictor(self):
        """The frozen model (a classifier or a regression): infer/predictor.py's Predictor."""
        if self._predictor is None:
            from glassbox.infer.predictor import Predictor

            if not (self.model_path / "manifest.json").is_file():
                raise UserError(f"{self.path} saved no model ({self.summary.stop_reason or 'no artifact'}): there is "
                                f"nothing to predict with; see its report")
            self._predictor = Predictor(self.model_path)
        return self._predictor

    def predict(self, inputs) -> list[dict]:
        """Predictions for a list of inputs: texts, image paths, or a table's rows, as a DataFrame, a list of dicts,
        a 2-D array (a model trained on arrays) or CSV lines. Each is {"label", "probability", "probabilities"}
        (a regression: {"value", "interval", "level"})."""
        import numpy as np
        import pandas as pd

        if isinstance(inputs, (str, dict)) or not hasattr(inputs, "__len__"):
            raise UserError("give a list of inputs, e.g. run.predict([x]) for one")
        p = self.predictor
        columns = getattr(p.encoder, "columns", None)  # a table's feature columns
        if isinstance(inputs, (list, tuple)) and inputs and all(isinstance(x, dict) for x in inputs):
            inputs = pd.DataFrame(list(inputs))
        if not isinstance(inputs, pd.DataFrame) and (columns is None or all(isinstance(x, str) for x in inputs)):
            return p.predict(p.parse(list(inputs)))  # texts, image paths, a table's CSV lines
        if columns is None:
            raise UserError("this model does not read a table's rows; give a list of its inputs (texts or image paths)")
        if not isinstance(inputs, pd.DataFrame):
            x = inputs.detach().cpu().numpy() if hasattr(inputs, "detach") else np.asarray(inputs)
            if x.ndim != 2 or x.shape[1] != len(columns):
                raise UserError(f"the inputs have shape {tuple(x.shape)}; the model takes rows of {len(columns)} "
                                f"values ({', '.join(columns[:5])}{', ...' if len(columns) > 5 else ''})")
            inputs = pd.DataFrame(x, columns=columns)
        from glassbox.data.kinds import for_encoder
        from glassbox.data.table import arrow_text
        from glassbox.run.in_memory import arrow_table

        # The rows as text exactly as training read a table given in memory (typed values -> text: 1.0 as "1").
        rows = arrow_text(arrow_table(inputs.reset_index(drop=True)), "the inputs")
        return p.predict(for_encoder(p.manifest["preprocessing"]["type"]).model_inputs(p.encoder, rows))

    def report(self, browser: bool = False) -> Path:
        """report.html (made again where it is missing); browser=True also opens it in the web browser."""
        if not self.report_path.is_file():
            from glassbox.report import write_report

            write_report(self.path)
        if browser:
            import webbrowser

            webbrowser.open(self.report_path.resolve().as_uri())
        return self.report_path

    def board(self, port: int | None = None, host: str = "127.0.0.1") -> str:
        """Start `glassbox board` on this run's folder, in a process of its own, and return its address (port: a free
        one unless given). The board stops when this Python process ends, or with run.board_process.terminate()."""
        port = port or free_port(host)
        root = str(Path(__file__).resolve().parents[2])  # this glassbox, also where it runs from a checkout
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        errors = tempfile.TemporaryFile(mode="w+")
        process = subprocess.Popen([sys.executable, "-m", "glassbox", "board", str(self.path), "--host", host,
                                    "--port", str(port)], stdout=subprocess.DEVNULL, stderr=errors, env=env)
        atexit.register(process.terminate)
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection((host, port), timeout=0.5).close()
                self.board_process = process
                return f"http://{host}:{port}/"
            except OSError:
                time.sleep(0.1)
        process.terminate()
        errors.seek(0)
        said = errors.read().strip().splitlines()
        raise UserError(f"glassbox board did not start on {host}:{port}: "
                        f"{said[-1] if said else 'no answer within 60 s'}")

    def _repr_html_(self) -> str:
        """In Jupyter: the report's summary, what to worry about most, and the learning curves (report/inline.py)."""
        from glassbox.report.inline import inline_report

        return inline_report(self.path)

    def __repr__(self) -> str:
        return f"glassbox.Run({str(self.path)!r})"


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]

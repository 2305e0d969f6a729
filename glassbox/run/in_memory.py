"""Data given to `glassbox.train` in memory: a pandas DataFrame, or a pair (inputs, labels) of arrays or of texts.

It is written as a Parquet file and read back through the same reader, kinds, audit and split as a file on disk
(data/table.py), so a DataFrame and the same table as a CSV train the same model. The file moves into the run
folder (RUN/data.parquet) once there is one: --resume, `glassbox eval`, `explain` and `curve` read it there, and
config.json's data record says what it was a copy of.

    staged = stage(frame, {"label": "income"})    # None for a path: a file or folder is read where it is
    staged.settings                               # the settings the data implies: a pair's label (and text) column
    staged.keep_in(run_dir)                       # -> RUN/data.parquet
"""
from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from glassbox.errors import UserError
from glassbox.run.folder import IN_MEMORY_COPY

LABEL, TEXT = "label", "text"  # the columns a pair's labels and texts get
PAIR = "give in-memory data as a DataFrame with label='COL', or as a pair: glassbox.train((X, y)) or ((texts, labels))"


@dataclass
class Staged:
    """In-memory data written to a Parquet file, waiting for its run folder."""
    path: Path                       # the Parquet file (in a temporary folder until keep_in)
    record: dict                     # what it was: config.json keeps it beside the file's own sha256
    settings: dict = field(default_factory=dict)   # the label (and text) column a pair's data implies
    folder: Path | None = None       # the temporary folder, until the file moves out of it

    def keep_in(self, run_dir: Path) -> Path:
        """Move the file into the run folder; returns its new path, absolute: config.json names it, and --resume
        finds it from any working directory."""
        kept = Path(run_dir).resolve() / IN_MEMORY_COPY
        shutil.move(str(self.path), kept)
        self.discard()
        self.path = kept
        self.record["copy"] = str(kept)
        self.record["words"] += f"; written to {kept} (Parquet), which the run reads"
        return kept

    def discard(self) -> None:
        """Remove the temporary folder (with the file, where it never moved into a run folder)."""
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


def is_in_memory(data) -> bool:
    """Whether `data` is not a path or a built-in name (str, os.PathLike) but data itself."""
    import os

    return data is not None and not isinstance(data, (str, os.PathLike))


def stage(data, settings: dict) -> Staged:
    """Write in-memory data as Parquet; refuse, in one line, what is ambiguous or what glassbox cannot read."""
    import pandas as pd

    if "labels" in settings:
        raise UserError(f"labels= is not a setting; {PAIR}")
    if settings.get("columns"):
        raise UserError("columns= names the columns of a header-less file; in-memory data has its own column names: "
                        "drop columns=")
    if settings.get("task") == "lm":
        raise UserError("a language model (task='lm') trains on a text corpus: give its file or folder")
    if isinstance(data, pd.DataFrame):
        if not settings.get("resume"):  # a resumed run has its settings already
            _check_columns(data, settings)
        return _write(data, "DataFrame", "a pandas DataFrame", {})
    if isinstance(data, tuple) and len(data) == 2:
        for key in (LABEL, TEXT):
            if settings.get(key):
                raise UserError(f"a pair (inputs, labels) names its own columns ('{LABEL}'"
                                f"{f', {TEXT!r}' if key == TEXT else ''}); drop {key}=")
        return _pair(*data)
    if isinstance(data, tuple):
        raise UserError(f"a tuple of {len(data)} items: {PAIR}")
    if isinstance(data, list) and data and all(isinstance(t, str) for t in data):
        raise UserError(f"a list of {len(data):,} texts needs their labels: glassbox.train((texts, labels))")
    what = type(data).__name__
    raise UserError(f"glassbox.train cannot read a {what}: give a path (a file or folder), a DataFrame with "
                    f"label='COL', or a pair (inputs, labels)")


def _check_columns(frame, settings: dict) -> None:
    """The label (and text, group) columns a DataFrame's run names are its columns."""
    names = [str(c) for c in frame.columns]
    if not settings.get("label"):
        raise UserError(f"a DataFrame needs label='COL' naming the column to predict; its columns are: "
                        f"{', '.join(names)}")
    group = settings.get("group") or []
    for key, value in [("label", settings["label"]), ("text", settings.get("text")),
                       *[("group", g) for g in ([group] if isinstance(group, str) else group)]]:
        if value is not None and str(value) not in names:
            raise UserError(f"{key}={value!r} is not a column of the DataFrame; its columns are: {', '.join(names)}")


def _pair(inputs, labels) -> Staged:
    """(X, y): a 2-D array of numbers (numpy or torch) or a DataFrame of features, or a sequence of texts; and one
    label per example."""
    import pandas as pd

    y = _as_numpy(labels)
    if y.ndim != 1:
        raise UserError(f"the labels have shape {tuple(y.shape)}; give one label per example (class names or numbers), "
                        f"e.g. y.ravel() for a column, y.argmax(1) for one-hot rows")
    if _texts(inputs):
        texts = list(inputs)
        _same_length(len(texts), len(y))
        frame = pd.DataFrame({TEXT: pd.Series(texts, dtype=object), LABEL: y})
        return _write(frame, "texts", f"{len(texts):,} texts and their labels", {"text": TEXT, "label": LABEL})
    if isinstance(inputs, pd.DataFrame):
        if LABEL in inputs.columns:
            raise UserError(f"the inputs already have a column '{LABEL}'; give the DataFrame whole with "
                            f"label='{LABEL}' instead of a pair")
        _same_length(len(inputs), len(y))
        frame = inputs.reset_index(drop=True).assign(**{LABEL: y})
        return _write(frame, "DataFrame and labels", "a pandas DataFrame of inputs and their labels", {"label": LABEL})
    x = _as_numpy(inputs)
    if x.ndim == 1:
        raise UserError(f"the inputs are 1-D ({len(x):,} values); give a 2-D array (examples x features), e.g. "
                        f"X.reshape(-1, 1) for one feature, or a list of str for texts")
    if x.ndim > 2:
        raise UserError(f"the inputs have shape {tuple(x.shape)}; in memory glassbox takes a table (examples x features) "
                        f"or texts: save images as files in a folder per class and give the folder")
    if x.dtype.kind not in "biuf":
        raise UserError(f"the inputs are an array of {x.dtype}; give numbers (examples x features), a list of str for "
                        f"texts, or a DataFrame for mixed columns")
    _same_length(len(x), len(y))
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])]).assign(**{LABEL: y})
    return _write(frame, "arrays", f"arrays: inputs {x.shape[0]:,} x {x.shape[1]:,} ({x.dtype}) and their labels",
                  {"label": LABEL})


def _texts(inputs) -> bool:
    """A list, tuple, Series or 1-D array of str: texts. One that mixes texts with other values is refused."""
    import pandas as pd

    if isinstance(inputs, (list, tuple, pd.Series)) or (isinstance(inputs, np.ndarray) and inputs.ndim == 1):
        values = list(inputs)
        strings = sum(isinstance(v, str) for v in values)
        if strings and strings < len(values):
            raise UserError(f"the inputs mix {strings:,} texts with {len(values) - strings:,} other values; give texts "
                            f"(str) only, or numbers as a 2-D array")
        return strings > 0
    return False


def _as_numpy(values) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor
        return values.detach().cpu().numpy()
    return np.asarray(values)


def _same_length(n_inputs: int, n_labels: int) -> None:
    if n_inputs != n_labels:
        raise UserError(f"{n_inputs:,} inputs but {n_labels:,} labels; give one label per example")
    if n_inputs == 0:
        raise UserError("the inputs are empty; give examples to train on")


def _write(frame, kind: str, described: str, settings: dict) -> Staged:
    """The frame as RUN/data.parquet-to-be, in a temporary folder; `record` says what it was."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = arrow_table(frame)
    rows, cols = table.num_rows, table.num_columns
    if rows == 0:
        raise UserError("the DataFrame has no rows; give examples to train on")
    folder = Path(tempfile.mkdtemp(prefix="glassbox-"))
    path = folder / f"{kind.split()[0].lower()}.parquet"  # its stem names a new run's folder: runs/<time>-dataframe
    try:
        pq.write_table(table, path)
    except (pa.ArrowException, OSError) as e:
        shutil.rmtree(folder, ignore_errors=True)
        raise UserError(f"cannot write the {kind} as Parquet ({' '.join(str(e).split())[:160]})") from None
    digest = content_sha256(table)
    record = {"type": kind, "rows": rows, "columns": cols, "content_sha256": digest,
              "words": f"{described} given to glassbox.train, {rows:,} rows x {cols:,} columns (sha256 of its "
                       f"content {digest[:12]}...)"}
    return Staged(path, record, settings, folder)


def arrow_table(frame):
    """A DataFrame as an Arrow table, column by column, without its index: a column of mixed Python values (numbers
    and text) becomes text, as a CSV would hold it; duplicate column names are refused."""
    import pyarrow as pa

    from glassbox.data.table import _json_field

    names = [str(c) for c in frame.columns]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise UserError(f"the DataFrame has repeated column names: {', '.join(dup)}; give each column a unique name")
    arrays = []
    for name, (_, column) in zip(names, frame.items()):
        try:
            arrays.append(pa.array(column, from_pandas=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            missing = column.isna().to_numpy()
            arrays.append(pa.array([None if m else _json_field(v) for v, m in zip(column.tolist(), missing)],
                                   pa.string()))
    return pa.table(arrays, names=names)


def content_sha256(table) -> str:
    """sha256 of a table's column names, types and values (Arrow's IPC stream of it): the same data gives the same
    digest whatever file it is written to."""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema.remove_metadata()) as writer:
        writer.write_table(table.replace_schema_metadata(None).combine_chunks())
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()

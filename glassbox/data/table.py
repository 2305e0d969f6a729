"""Read a CSV, TSV, JSONL, Parquet or Arrow IPC (Feather) file into a table of strings, keeping each row's line
number (a Parquet or Arrow file's row number).

Every way a file can be wrong ends in one UserError that names the file, the line and the fix. A Parquet or Arrow
file's typed values become the text a CSV would hold (`_json_field`: 1.0 as "1", true as "true", null as ""), so the
same table reads the same in every format; only the columns asked for are read from it."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pandas as pd

from glassbox.errors import UserError

COMMENT_PREFIXES = ("|",)  # UCI-style leading comment lines, e.g. adult.test's "|1x3 Cross validator"


def check_data_file(p: Path) -> None:
    """A UserError unless `p` is a regular file."""
    if not p.exists():
        raise UserError(f"file not found: {p}; check the path")
    if p.is_dir():
        raise UserError(f"{p} is a folder, not a data file; give a CSV, TSV, JSONL or Parquet file")
    if not p.is_file():  # a device or a pipe: reading it could block or never end
        raise UserError(f"{p} is not a regular file (a device or a pipe); give a CSV, TSV, JSONL or Parquet file")


def read_text_file(path: str | Path) -> str:
    """The file's text, or a UserError if it is missing, empty, binary or not UTF-8."""
    p = Path(path)
    check_data_file(p)
    raw = p.read_bytes()
    if not raw.strip():
        raise UserError(f"{p} is empty; give a file with a header row and at least two examples")
    return decode_text(raw, p, "give a CSV, TSV or JSONL text file")


UTF16_32 = [(b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16")]


def decode_text(raw: bytes, p, binary_hint: str = "give a text file") -> str:
    """UTF-8 text (a BOM allowed), or a UserError naming what the bytes are instead."""
    for bom, name in UTF16_32:
        if raw.startswith(bom):
            raise UserError(f"{p} is {name} text; re-save it as UTF-8 (e.g. iconv -f {name} -t UTF-8)")
    head = raw[:65536]
    if b"\x00" in head:
        # UTF-16 without a byte-order mark: ASCII characters leave a NUL in every other byte
        if len(head) >= 4 and (head[1::2].count(0) > 0.4 * len(head[1::2]) or head[0::2].count(0) > 0.4 * len(head[0::2])):
            raise UserError(f"{p} looks like UTF-16 text; re-save it as UTF-8 (e.g. iconv -f UTF-16 -t UTF-8)")
        raise UserError(f"{p} is a binary file, not a text file (it holds NUL bytes); {binary_hint}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise UserError(f"{p} is not UTF-8 text (byte 0x{raw[e.start]:02x} on line {line}); re-save it as UTF-8 "
                        f"(e.g. iconv -f latin1 -t UTF-8)") from None


def read_table(path: str | Path, columns: list[str] | None = None,
               usecols: list[str] | None = None) -> tuple[pd.DataFrame, list[int]]:
    """Rows of a CSV/TSV/JSONL/Parquet/Arrow file as a DataFrame of str, and the 1-based line number of each row.

    `columns` names the columns of a header-less file; without it the first row is the header. `usecols`: the only
    columns the caller reads; a Parquet or Arrow file loads just those (a text file is read whole)."""
    p = Path(path)
    check_data_file(p)
    binary = columnar_format(p)
    if binary:
        return _read_columnar(p, binary, columns, usecols)
    text = read_text_file(p)
    if p.suffix.lower() in (".jsonl", ".ndjson") or (p.suffix.lower() == ".json" and text.lstrip().startswith("{")):
        return _read_jsonl(p, text, columns)
    return _read_delimited(p, text, columns)


def _read_jsonl(p: Path, text: str, columns) -> tuple[pd.DataFrame, list[int]]:
    rows, lines = [], []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            raise UserError(f"{p} line {i} is not valid JSON; each line of a JSONL file must be one JSON object") from None
        if not isinstance(obj, dict):
            raise UserError(f"{p} line {i} is not a JSON object; each line must look like {{\"col\": value, ...}}")
        rows.append({k: _json_field(v) for k, v in obj.items()})
        lines.append(i)
    df = pd.DataFrame(rows).fillna("")
    if columns:
        df.columns = columns[: len(df.columns)]
    return df, lines


def _json_field(v) -> str:
    """A JSON value as the text a CSV would hold: 1 and 1.0 alike ("1"), true as "true", lists and objects as JSON."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return str(int(v))
    if isinstance(v, (list, dict)):
        return json.dumps(v, ensure_ascii=False, default=str)  # default: a Parquet list of dates, say
    return str(v)


# Parquet and Arrow IPC (Feather v2) files: known by their first bytes, else by their name.
COLUMNAR_SUFFIXES = {".parquet": "Parquet", ".pq": "Parquet", ".feather": "Arrow", ".arrow": "Arrow",
                     ".arrows": "Arrow", ".ipc": "Arrow"}


def columnar_format(p: Path) -> str | None:
    """'Parquet' or 'Arrow' where the file is one (or is named as one), else None: a text file."""
    with open(p, "rb") as f:
        head = f.read(6)
    if head.startswith(b"PAR1"):
        return "Parquet"
    if head == b"ARROW1":
        return "Arrow"
    return COLUMNAR_SUFFIXES.get(p.suffix.lower())


def _read_columnar(p: Path, fmt: str, columns, usecols) -> tuple[pd.DataFrame, list[int]]:
    """A Parquet or Arrow IPC file's rows as text, reading only `usecols` where the file has them all (a column the
    caller asks for and the file lacks: every column is read, so the caller's refusal lists them)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fix = ("it may be cut short or not a Parquet file at all; write it again (pandas: DataFrame.to_parquet)"
           if fmt == "Parquet" else "it may be cut short or not an Arrow file at all; write it again "
           "(pandas: DataFrame.to_feather)")
    try:
        if fmt == "Parquet":
            names = pq.read_schema(p).names
            wanted = usecols if usecols and set(usecols) <= set(names) else None
            table = pq.read_table(p, columns=wanted)
        else:
            table = _read_arrow(p)
            wanted = usecols if usecols and set(usecols) <= set(table.column_names) else None
            table = table.select(wanted) if wanted else table
    except (pa.ArrowException, OSError, ValueError) as e:
        why = " ".join(str(e).split())[:160]
        raise UserError(f"{p} cannot be read as {fmt} ({why}); {fix}") from None
    names = table.column_names
    if len(set(names)) != len(names):
        dup = sorted({h for h in names if names.count(h) > 1})
        raise UserError(f"{p} has repeated column names: {', '.join(dup)}; give each column a unique name")
    if table.num_rows == 0:
        raise UserError(f"{p} holds no rows; give a file with at least two examples")
    df = arrow_text(table, p)
    if columns and not set(columns) <= set(names):  # names for a header-less file: by position, as for JSONL
        df.columns = list(columns[: len(names)]) + names[len(columns):]
    return df, list(range(1, table.num_rows + 1))


def _read_arrow(p: Path):
    """An Arrow IPC file (Feather v2), memory-mapped so that columns never selected are not read; else the IPC
    stream format."""
    import pyarrow as pa

    try:
        return pa.ipc.open_file(pa.memory_map(str(p))).read_all()
    except pa.ArrowInvalid:
        return pa.ipc.open_stream(pa.memory_map(str(p))).read_all()


def arrow_text(table, where) -> pd.DataFrame:
    """An Arrow table's values as text, each column as `_column_text` writes it (`where`: the file, for a message)."""
    names = table.column_names
    return pd.DataFrame({name: _column_text(table.column(name), name, where) for name in names}, columns=names)


def _column_text(column, name: str, p) -> list[str]:
    """One Arrow column's values as the text a CSV would hold (`_json_field`); a float32 value as its shortest
    float32 form (0.1, not 0.10000000149011612)."""
    import numpy as np
    import pyarrow as pa

    kind = column.type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind):
        raise UserError(f"column '{name}' of {p} holds bytes, not text or numbers; store text as strings (UTF-8)")
    values = column.to_pylist()
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return ["" if v is None else v for v in values]
    if pa.types.is_floating(kind) and kind.bit_width < 64:
        narrow = np.float32 if kind.bit_width == 32 else np.float16
        return ["" if v is None else _narrow_float(narrow(v)) for v in values]
    return [_json_field(v) for v in values]


def _narrow_float(v) -> str:
    return str(int(v)) if v.is_integer() and abs(v) < 2**24 else str(v)


def _sniff_delimiter(p: Path, sample: str) -> str:
    if p.suffix.lower() == ".tsv":
        return "\t"
    if p.suffix.lower() == ".csv":
        return ","
    first = [ln for ln in sample.splitlines()[:20] if ln and not ln.startswith(COMMENT_PREFIXES)]
    tabs = sum(ln.count("\t") for ln in first)
    commas = sum(ln.count(",") for ln in first)
    return "\t" if tabs >= max(1, commas / 4) else ","


def _read_delimited(p: Path, text: str, columns) -> tuple[pd.DataFrame, list[int]]:
    delim = _sniff_delimiter(p, text[:20000])
    # A comma file whose fields are separated by ", " (UCI style): skip the space after each comma.
    reader = csv.reader(io.StringIO(text), delimiter=delim, skipinitialspace=(delim == ","),
                        quoting=csv.QUOTE_NONE if delim == "\t" else csv.QUOTE_MINIMAL)
    header = list(columns) if columns else None
    rows, lines = [], []
    start = 1
    try:
        for rec in reader:
            line = start
            start = reader.line_num + 1
            if not rec or all(not f.strip() for f in rec):
                continue
            if not rows and rec[0].startswith(COMMENT_PREFIXES) and (header is None or columns):
                continue  # a comment line before the data
            if header is None:
                header = [h.strip() for h in rec]
                continue
            if len(rec) != len(header) and columns:
                raise UserError(f"{p} line {line} has {len(rec)} fields but --columns names {len(header)} "
                                f"({','.join(header)}); name every field of a row, in order")
            if len(rec) != len(header):
                raise UserError(
                    f"{p} line {line} has {len(rec)} fields but the header has {len(header)}; "
                    f"fix that row (a stray '{'TAB' if delim == chr(9) else delim}' or a missing value?)"
                )
            rows.append(rec)  # values exactly as in the file: text keeps its own whitespace
            lines.append(line)
    except csv.Error as e:
        raise UserError(f"{p} line {reader.line_num} cannot be parsed ({e}); fix the quoting on that line") from None
    if header is None or not rows:
        raise UserError(f"{p} has a header but no data rows; add examples below the header")
    if len(set(header)) != len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        if _looks_like_data(header):
            raise UserError(f"{p} seems to have no header row (its first row, {', '.join(header[:4])}, ..., looks like "
                            f"data); name the columns with --columns a,b,c,...")
        raise UserError(f"{p} has repeated column names: {', '.join(dup)}; give each column a unique name")
    return pd.DataFrame(rows, columns=header), lines


def require_column(df: pd.DataFrame, name: str, what: str, path) -> None:
    """Fail with the list of columns when `name` is not one of them."""
    if name not in df.columns:
        if _looks_like_data([str(c) for c in df.columns]):
            raise UserError(f"{what} column '{name}' not found in {path}: the file seems to have no header row (its "
                            f"first row, {', '.join(map(str, df.columns[:4]))}, ..., looks like data); name the columns "
                            f"with --columns a,b,c,...")
        raise UserError(
            f"{what} column '{name}' not found in {path}; the columns are: {', '.join(map(str, df.columns))}"
        )


def _looks_like_data(names: list[str]) -> bool:
    """Column names that are numbers (two or more) are a data row read as the header."""
    return sum(_looks_numeric(n) for n in names) >= 2


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False

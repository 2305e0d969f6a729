"""Files that are whole or absent: written to a temporary name, fsynced, renamed over the old one.
A kill at any moment leaves the previous version intact. The one writer for run folders, checkpoints
and artifacts."""
from __future__ import annotations

import hashlib
import json
import math
import os
import threading
from pathlib import Path


def atomic_write(path: str | Path, data: bytes) -> None:
    """`data` as the whole of `path`. The temporary name is this process's own, so processes writing the same file
    at once (two runs sharing the cache of the machine's matmul peak) each rename a whole file over it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")  # each thread's own, too
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # a full disk, a folder in the way, Ctrl-C: no half-written temporary file is left behind
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def json_safe(value):
    """JSON has no NaN or infinity (Python's json writes them, and other readers refuse the file): such numbers
    become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k if isinstance(k, str) else str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def json_text(obj, **how) -> str:
    """`obj` as standard JSON text: non-finite numbers as null; never NaN or Infinity."""
    return json.dumps(json_safe(obj), allow_nan=False, **how)


def write_json(path: str | Path, obj) -> None:
    """`obj` as indented JSON, atomically (non-finite numbers as null)."""
    atomic_write(path, (json_text(obj, indent=1) + "\n").encode())


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()

"""The practical peak of this machine: FLOP/s of a large square matmul, measured and cached. MFU in the cost
ledger is measured against it (glassbox/evaluate/cost.py)."""
from __future__ import annotations

import json
import math
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from glassbox.runtime.files import write_json
from glassbox.runtime.threads import cpu_threads

PEAK_TARGET_SECONDS = 0.25     # each timed repeat of the peak matmul runs about this long
PEAK_REPEATS = 5               # the peak is the fastest of this many repeats
PEAK_CHECK_REPEATS = 1         # each later run checks the cached peak with this many repeats...
PEAK_CHECK_SECONDS = 0.1       # ...of about this long each (at least one product), and keeps the higher value
PEAK_MAX_AGE_SECONDS = 86_400  # a cached peak older than a day is measured again in full (and kept if higher)
PEAK_MAX_N = 8192              # largest square matrix tried (3 of them: 768 MiB in float32)


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cache_dir() -> Path:
    """Where glassbox keeps measurements of this machine: $GLASSBOX_CACHE_DIR or ~/.cache/glassbox."""
    return Path(os.environ.get("GLASSBOX_CACHE_DIR") or Path.home() / ".cache" / "glassbox")


def _time_matmuls(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor, count: int) -> float:
    sync = torch.cuda.synchronize if a.device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(count):
        torch.matmul(a, b, out=out)
    sync()
    return time.perf_counter() - start


def measure_matmul_peak(device="cpu", dtype=torch.float32, refresh: bool = False, threads: int | None = None) -> float:
    """FLOP/s of a large square matmul on this device: the practical peak MFU is measured against.

    The first time: the size doubles until one product takes 50 ms (or reaches PEAK_MAX_N); each of
    PEAK_REPEATS repeats then runs enough products to last about PEAK_TARGET_SECONDS; the fastest repeat
    counts (other work on the machine only ever slows a repeat down). After that, each call (each run) checks
    briefly at the same size (PEAK_CHECK_REPEATS repeats of about PEAK_CHECK_SECONDS) and the cache keeps the
    highest value ever measured, so a first measurement on a busy machine is replaced by the next quiet one
    instead of sticking; a full measurement runs again when the cache is older than PEAK_MAX_AGE_SECONDS or
    with refresh=True. The cache is cache_dir()/matmul_peak.json, keyed by device name, dtype, torch version
    and CPU/thread count; `peak_record` says how the value was obtained.
    threads: on a CPU, measure with this many threads (the count training ran on); None: torch's count.
    """
    device = torch.device(device)
    if threads and device.type == "cpu" and threads != torch.get_num_threads():
        with cpu_threads(threads):
            return measure_matmul_peak(device, dtype, refresh)
    cache, key, entry = _peak_entry(device, dtype)
    known = entry.get("flops_per_second", 0)
    known = float(known) if isinstance(known, (int, float)) and math.isfinite(known) and known > 0 else 0.0
    age = time.time() - entry.get("measured_unix", 0) if isinstance(entry.get("measured_unix"), (int, float)) else math.inf
    gen = torch.Generator(device=device).manual_seed(0)
    n = entry.get("n") if isinstance(entry.get("n"), int) and 256 <= entry["n"] <= PEAK_MAX_N else None
    if refresh or known <= 0 or age >= PEAK_MAX_AGE_SECONDS or n is None:
        a, b, out, seconds = _sized_operands(device, dtype, gen)
        n, count, repeats, full = a.shape[0], max(1, math.ceil(PEAK_TARGET_SECONDS / seconds)), PEAK_REPEATS, True
    else:  # a brief check at the cached size
        # No warm-up: the run has multiplied matrices already, and a check slowed by a first call only keeps the
        # cached value (the higher one counts). One product at the cached size (2048 on a 2-core CPU: 0.18 s a
        # product on 1 thread) is the whole check; with a warm-up and 2 repeats it took 0.8 s of every run.
        a, b = (torch.randn(n, n, generator=gen, device=device).to(dtype) for _ in range(2))
        out = torch.empty(n, n, device=device, dtype=dtype)
        per_product = entry.get("fastest_seconds", 0.05) / max(1, entry.get("products_per_repeat", 1))
        count, repeats, full = max(1, math.ceil(PEAK_CHECK_SECONDS / max(per_product, 1e-6))), PEAK_CHECK_REPEATS, False
    times = [_time_matmuls(a, b, out, count) for _ in range(repeats)]
    measured = 2 * n**3 * count / min(times)
    peak = max(measured, known)
    entry = {**entry, "flops_per_second": peak, "last_measured_flops_per_second": measured,
             "measurements": int(entry.get("measurements", 1 if known else 0)) + 1,
             "first_measured_at": entry.get("first_measured_at") or entry.get("measured_at") or _now()}
    if full:  # the size and timing of a full measurement; a brief check keeps them, and the cache's age
        entry.update({"n": n, "products_per_repeat": count, "repeats": repeats, "fastest_seconds": min(times),
                      "median_seconds": statistics.median(times), "measured_unix": time.time(), "measured_at": _now()})
    cache[key] = entry
    path = cache_dir() / "matmul_peak.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, cache)                              # never leave a half-written cache
    return float(peak)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _peak_entry(device: torch.device, dtype) -> tuple[dict, str, dict]:
    """(the whole cache, this device's key, its entry or {}); an unreadable cache counts as empty."""
    key = (f"{_device_name(device)} | {dtype} | torch {torch.__version__} | "
           f"{os.cpu_count()} cpus | {torch.get_num_threads()} threads")
    try:
        cache = json.loads((cache_dir() / "matmul_peak.json").read_text())
    except (OSError, ValueError):
        cache = {}
    cache = cache if isinstance(cache, dict) else {}
    return cache, key, cache.get(key) if isinstance(cache.get(key), dict) else {}


def _sized_operands(device: torch.device, dtype, gen):
    """Square operands doubled in size from 256 until one product takes 50 ms (or PEAK_MAX_N): (a, b, out, seconds)."""
    n = 256
    while True:
        a = torch.randn(n, n, generator=gen, device=device).to(dtype)
        b = torch.randn(n, n, generator=gen, device=device).to(dtype)
        out = torch.empty(n, n, device=device, dtype=dtype)
        _time_matmuls(a, b, out, 1)                      # warm-up: allocation, thread start-up
        seconds = _time_matmuls(a, b, out, 1)
        if seconds >= 0.05 or n >= PEAK_MAX_N:
            return a, b, out, seconds
        n *= 2


def peak_record(device="cpu", dtype=torch.float32, threads: int | None = None) -> dict:
    """How the cached peak was obtained, as the cache records it: "measurements" (how many), "first_measured_at"
    (when the first was taken) and "last_measured_flops_per_second" (this run's check), each where the cache has
    it. report/words/cost.py `peak_how` says it in words."""
    device = torch.device(device)
    if threads and device.type == "cpu" and threads != torch.get_num_threads():
        with cpu_threads(threads):
            return peak_record(device, dtype)
    _, _, entry = _peak_entry(device, dtype)
    return {key: entry[key] for key in ("measurements", "first_measured_at", "last_measured_flops_per_second")
            if key in entry}

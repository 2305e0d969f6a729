"""The cost ledger in words (evaluate/cost.py cost_ledger): what training cost next to one prediction, against which
peak, and the energy and money it came to at the assumed power and price."""
from __future__ import annotations

from glassbox.report.html import si, sig


def sentence(c: dict) -> str:
    """How many predictions training cost, by FLOPs and by time; FLOPs, time and MFU of each; energy and money."""
    t, i, ratio = c["train"], c["inference"], c["training_equals_predictions"]
    spread = i.get("flops_spread")  # inputs of different lengths: the ledger's prediction is the median one
    at = ", each prediction the median test input's" if spread else ""
    by_flops = f"{_count(ratio['by_flops'])} predictions by FLOPs, or " if ratio["by_flops"] else ""
    idle = (": one example at a time keeps the machine mostly idle" if i["mfu"] < t["mfu"] / 2 else "")
    one = (f"one prediction takes {si(i['flops'], 'FLOP')} on the median of the {spread['n']:,} test inputs "
           f"({spread['median_size']:,} ids; from {si(spread['min'], 'FLOP')} at {spread['min_size']:,} ids to "
           f"{si(spread['max'], 'FLOP')} at {spread['max_size']:,}: the cost grows with the input's length) and "
           if spread else f"one prediction takes {si(i['flops'], 'FLOP')} and ")
    return (f"Training cost as much as {by_flops}{_count(ratio['by_time'])} by time{at}. "
            f"Training used {si(t['flops'], 'FLOP')} in {sig(t['seconds'], 3)} s, {t['mfu']:.1%} of {_peak_words(c)}"
            f"{', ' + c['peak_how'] if c.get('peak_how') else ''}); {one}"
            f"{sig(i['seconds'] * 1e3, 2)} ms ({i['mfu']:.2%} of "
            f"{'peak' if _one(c) else 'the peak of one process'}{idle}). "
            f"At {c['power_watts']:g} W and {c['price_per_kwh']:.2f} per kWh (assumed, not metered), "
            f"training used {sig(t['energy_kwh'])} kWh costing {sig(t['cost'])}, and 1,000 "
            f"predictions use {sig(i['energy_kwh_per_1000'])} kWh costing {sig(i['cost_per_1000'])}.")


def peak_how(record: dict) -> str:
    """How the peak was obtained (evaluate/peak.py peak_record): 'the highest of 4 measurements on this machine since
    2026-12-06; this run's check: 61.2 GFLOP/s', or 'measured once, at this run'."""
    count, since = record.get("measurements", 1), str(record.get("first_measured_at", "?"))[:10]
    last = record.get("last_measured_flops_per_second")
    latest = f"; this run's check: {last / 1e9:,.1f} GFLOP/s" if isinstance(last, (int, float)) else ""
    return (f"the highest of {count} measurement{'s' if count != 1 else ''} on this machine since {since}{latest}"
            if count > 1 else f"measured once, at this run{latest}")


def _count(x: float) -> str:
    """12,300 or 4.5 million: how many predictions, in words a reader takes in at once."""
    for scale, word in [(1e12, "trillion"), (1e9, "billion"), (1e6, "million")]:
        if x >= scale:
            return f"{sig(x / scale, 3)} {word}"
    return f"{x:,.0f}"


def _one(c: dict) -> bool:
    return abs(c.get("processes", 1.0) - 1.0) < 1e-9


def _peak_words(c: dict) -> str:
    """Which peak MFU is against: this machine's, or the sum over the processes that trained (each on its own device
    or share of the CPU), with the per-process figure it is summed from."""
    n = c.get("peak_threads")
    dtype = c.get("peak_dtype", "float32")
    if _one(c):
        threads = f" on {n} thread{'s' if n != 1 else ''}, as training ran" if n else ""
        return f"this machine's measured {dtype} matmul peak{threads} ({si(c['peak_flops'], 'FLOP')}/s"
    k = c["processes"]
    count = f"{k:g} processes" if k == round(k) else f"{k:.2f} processes on average over the training time"
    each = f" on {n} thread{'s' if n != 1 else ''} each, as training ran" if n else " on its own device"
    return (f"the summed measured {dtype} matmul peak of {count} ({si(c['peak_per_process'], 'FLOP')}/s per process"
            f"{each}; {si(c['peak_flops'], 'FLOP')}/s in all")

"""How the language-model corpus audit scales: tinyshakespeare copied 10, 40 and 100 times (11, 46 and
115 MB), half its lines changed a little in each copy, so there are repeats, near-copies and validation
lines also in training to find.

    python benchmarks/corpus_audit.py                 # 10, 40 and 100 copies, each in a fresh process
    python benchmarks/corpus_audit.py --copies 10     # one size

Each size runs in its own process so its peak RSS is its own. Baseline in the same script: a plain
Python count of repeated lines (a dict of normalised lines), the least any corpus audit must do.
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHAKESPEARE = ROOT.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"


def build(copies: int) -> str:
    lines = SHAKESPEARE.read_text(encoding="utf-8").split("\n")
    rng = random.Random(0)
    out = []
    for c in range(copies):
        out.extend(line + (f" {c}" if line and rng.random() < 0.5 else "") for line in lines)
    return "\n".join(out)


def one(copies: int) -> dict:
    from glassbox.audit.corpus import MIN_CHARS, audit_corpus

    text = build(copies)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    report = audit_corpus([("corpus.txt", text)], 0.1)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    t0 = time.perf_counter()  # baseline: repeated training lines with a dict
    train = text[:int(len(text) * 0.9)]
    seen: dict[str, int] = {}
    for line in train.split("\n"):
        key = " ".join(line.lower().split())
        if len(key) >= MIN_CHARS:
            seen[key] = seen.get(key, 0) + 1
    repeats = sum(n - 1 for n in seen.values())
    baseline = time.perf_counter() - t0
    found = {f.name: f.count for f in report.findings}
    return {"copies": copies, "mb": len(text) / 1e6, "lines": report.n_examples, "seconds": seconds,
            "baseline_seconds": baseline, "rss_mb": peak / 1e3, "rss_before_mb": before / 1e3,
            "found": found, "baseline_repeats": repeats}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, nargs="+", default=[10, 40, 100])
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one)))
        return
    print(f"{'corpus':>8} {'lines':>11} {'audit':>8} {'per MB':>8} {'peak RSS':>9} {'dict baseline':>14} {'ratio':>6}  found")
    for copies in args.copies:
        out = subprocess.run([sys.executable, __file__, "--one", str(copies)], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        assert r["found"]["exact_duplicates"] == r["baseline_repeats"], (r["found"], r["baseline_repeats"])
        print(f"{r['mb']:>6.0f} MB {r['lines']:>11,} {r['seconds']:>6.1f} s {1000 * r['seconds'] / r['mb']:>5.0f} ms "
              f"{r['rss_mb']:>6.0f} MB {r['baseline_seconds']:>12.1f} s {r['seconds'] / r['baseline_seconds']:>6.2f}  "
              f"{r['found']}")


if __name__ == "__main__":
    main()

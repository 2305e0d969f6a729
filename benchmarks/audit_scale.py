"""How the data audit scales: 100k, 300k and 1M short texts (resampled and perturbed SMS messages).

    python benchmarks/audit_scale.py                 # sizes 100k 300k 1M, each in a fresh process
    python benchmarks/audit_scale.py --sizes 100000  # one size

Goal: 1,000,000 texts audited in <= 60 s on 2 cores with peak memory under 4 GB, every check but the
label-error one (that needs out-of-fold training). Leakage is checked across an 80/10/10 split; the
JSON report (every flagged example) is timed apart, and its memory counts in the peak. Each
size runs in its own process so its peak RSS is its own; the cost per 100k texts shows linear growth.
Baseline in the same script: a plain Python exact-duplicate count (dict of normalised texts), the
least any audit must do.
"""
from __future__ import annotations

import argparse
import os
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

# On a busy machine spinning OpenMP threads make small torch steps many times slower; the CLI sets this too.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SMS = ROOT.parent / "shared" / "data" / "sms_spam_collection" / "SMSSpamCollection"


def perturbed_sms(n: int, seed: int = 0):
    """n texts drawn from the SMS collection, most edited a little (a character changed, dropped or
    added, a word re-cased, a number appended), so the copies are exact, near, or neither."""
    from glassbox.data.text import load_text

    sms = load_text(SMS, text_col="text", label_col="label", columns=["label", "text"])
    rng = np.random.default_rng(seed)
    src = rng.integers(0, len(sms), n)
    kind = rng.integers(0, 5, n)  # 0: unchanged, 1: substitute, 2: delete, 3: insert, 4: append a number
    pos = rng.random(n)
    letters = rng.integers(97, 123, n)
    texts = []
    for i in range(n):
        t = sms.inputs[src[i]]
        p = int(pos[i] * len(t))
        k = kind[i]
        if k == 1:
            t = t[:p] + chr(letters[i]) + t[p + 1:]
        elif k == 2:
            t = t[:p] + t[p + 1:]
        elif k == 3:
            t = t[:p] + chr(letters[i]) + t[p:]
        elif k == 4:
            t = f"{t} {i}"
        texts.append(t)
    return texts, sms.labels[src], sms.classes


def worker(n: int) -> dict:
    import torch

    from glassbox.audit import run_audit
    from glassbox.data.examples import Examples
    from glassbox.data.text import normalise_text
    from glassbox.run.out_of_fold import duplicate_aware_folds

    torch.set_num_threads(2)
    texts, labels, classes = perturbed_sms(n)
    t0 = time.perf_counter()
    ex = Examples(kind="text", inputs=texts, labels=labels, classes=classes,
                  keys=[normalise_text(t) for t in texts], lines=list(range(1, n + 1)))
    t_keys = time.perf_counter() - t0
    t0 = time.perf_counter()
    # glassbox.data.split.split_indices does the same, but holds the keys as a fixed-width numpy
    # string array (N x longest text x 4 bytes): too much memory at this size, so 10 folds -> 8/1/1.
    folds = duplicate_aware_folds(ex.keys, ex.labels, k=10, seed=0)
    split = {"train": np.flatnonzero(folds < 8), "val": np.flatnonzero(folds == 8), "test": np.flatnonzero(folds == 9)}
    t_split = time.perf_counter() - t0
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0, c0 = time.perf_counter(), time.process_time()
    report = run_audit(ex, split=split)
    t_audit, c_audit = time.perf_counter() - t0, time.process_time() - c0
    t0 = time.perf_counter()
    json_mb = len(json.dumps(report.to_dict())) / 1e6  # what `glassbox audit --json` / RUN/audit.json hold
    t_json = time.perf_counter() - t0
    t0 = time.perf_counter()
    seen: dict[str, int] = {}
    for t in texts:  # baseline: exact duplicates only, plain Python
        k = " ".join(t.split()).lower()
        seen[k] = seen.get(k, 0) + 1
    t_base = time.perf_counter() - t0
    counts = {f.name: f.count for f in report.findings}
    return {"n": n, "keys_s": t_keys, "split_s": t_split, "audit_s": t_audit, "audit_cpu_s": c_audit,
            "baseline_s": t_base, "load": os.getloadavg()[0], "json_s": t_json, "json_mb": json_mb,
            "rss_before_mb": rss_before, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "distinct": len(seen), "counts": counts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker)))
        return
    rows = []
    for n in args.sizes:
        out = subprocess.run([sys.executable, __file__, "--worker", str(n)], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(f"{n:>9,} texts: audit {r['audit_s']:6.1f} s ({r['audit_s'] / n * 1e5:5.2f} s per 100k; "
              f"CPU {r['audit_cpu_s']:.1f} s; load average {r['load']:.1f}), "
              f"peak RSS {r['peak_rss_mb']:6.0f} MB (data alone {r['rss_before_mb']:.0f} MB); keys {r['keys_s']:.1f} s, "
              f"split {r['split_s']:.1f} s; baseline dict-count of exact duplicates {r['baseline_s']:.1f} s "
              f"(audit/baseline {r['audit_s'] / r['baseline_s']:.1f}x); JSON of every flagged example "
              f"{r['json_mb']:.0f} MB in {r['json_s']:.1f} s", flush=True)
    print("\nfindings per size:")
    for r in rows:
        print(f"{r['n']:>9,}: " + ", ".join(f"{k} {v:,}" for k, v in r["counts"].items()))
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        print(f"\ncost growth {a['n']:,} -> {b['n']:,} ({b['n'] / a['n']:.0f}x the texts): "
              f"{b['audit_s'] / a['audit_s']:.1f}x the time, {b['peak_rss_mb'] / a['peak_rss_mb']:.1f}x the peak memory")
    big = [r for r in rows if r["n"] >= 1_000_000]
    if big:
        ok = big[0]["audit_s"] <= 60 and big[0]["peak_rss_mb"] < 4096
        print(f"goal (1M texts in <= 60 s, < 4 GB): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()

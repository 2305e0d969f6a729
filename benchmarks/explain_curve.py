"""`glassbox explain` and `glassbox curve` on the digits, wall time end to end, against `glassbox train` on the same
data (the baseline: one full run of the same model, its audit and report included), each as its own process with
the same environment and threads, repeats alternating.

    python benchmarks/explain_curve.py               # 3 repeats, medians
    python benchmarks/explain_curve.py --repeats 1

Goals: explain < 5 s; curve (6 sizes) < 60 s.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {"train (baseline)": ["train", "digits"], "explain": ["explain", "digits"], "curve": ["curve", "digits"]}
GOALS = {"explain": 5.0, "curve": 60.0}


def wall_time(args: list[str], out: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "glassbox", *args, "--quiet", "--out", str(out)], check=True, env=env,
                   cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    seconds = {name: [] for name in COMMANDS}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for name, command in COMMANDS.items():
                seconds[name].append(wall_time(command, Path(tmp) / f"{name.split()[0]}-{r}"))
                print(f"repeat {r + 1}: {name}: {seconds[name][-1]:.1f} s", flush=True)
    base = statistics.median(seconds["train (baseline)"])
    print(f"glassbox train digits (baseline): median {base:.1f} s over {args.repeats}")
    for name, goal in GOALS.items():
        median = statistics.median(seconds[name])
        verdict = "meets" if median < goal else "misses"
        print(f"glassbox {name} digits: median {median:.1f} s ({', '.join(f'{s:.1f}' for s in seconds[name])}); "
              f"ratio to train {median / base:.2f}; goal < {goal:g} s: {verdict} it")


if __name__ == "__main__":
    main()

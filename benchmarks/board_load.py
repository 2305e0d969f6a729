"""The board with 200 runs: how long the page takes to show them all, against the same page with one run.

    python benchmarks/board_load.py [--runs 200] [--repeats 7] [--from RUN]

Trains one tiny real language model run (or takes --from RUN), copies its files into N run folders with other values
(settings, losses, scores; one in ten still "running", held by this script's own process), then starts a real
`glassbox board` process on each folder (N runs, and 1 run as the baseline) and measures:
  - the data endpoint, GET /api/runs: the first answer (every run folder read) and the median of the next ones
    (the board re-reads only runs whose files changed);
  - the page in headless Chromium (Debian's, through Playwright): from navigation to every run's row drawn, the
    median over fresh pages.
Goal (issue 16): under 1 s with 200 runs."""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"


def real_run(folder: Path) -> Path:
    from glassbox.run.train.start import train

    corpus = folder / "corpus.txt"
    corpus.write_text(CORPUS.read_text(encoding="utf-8")[:60_000], encoding="utf-8")
    out = folder / "real"
    train(str(corpus), task="lm", n_layer=1, n_head=2, n_embd=32, block_size=32, batch_size=16, max_steps=30,
          out=str(out), quiet=True)
    return out


def variant(source: Path, dest: Path, i: int, rng: random.Random) -> None:
    """A copy of a real run's files with other values: its settings, curves and scores scaled, one in ten running."""
    dest.mkdir(parents=True)
    for name in ("audit.json", "report.html", "memorization.json"):
        if (source / name).exists():
            shutil.copy(source / name, dest / name)
    config = json.loads((source / "config.json").read_text())
    config.update(lr=round(rng.uniform(1e-4, 3e-3), 6), seed=i, out=str(dest))
    config["sources"].update(lr="flag", seed="flag")
    (dest / "config.json").write_text(json.dumps(config, indent=1))
    scale = rng.uniform(0.8, 1.2)
    lines = []
    for line in (source / "metrics.jsonl").read_text().splitlines():
        r = json.loads(line)
        for key in ("train_loss", "val_loss"):
            if r.get(key) is not None and r["step"] > 0:
                r[key] *= scale
        lines.append(json.dumps(r))
    (dest / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    if i % 10 == 9:  # still training: no summary yet, and a live process holds the folder
        (dest / "running.json").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                                       "started": "2026-01-01T00:00:00+00:00"}))
        return
    summary = json.loads((source / "summary.json").read_text())
    summary.update(val_loss=summary["val_loss"] * scale, perplexity=summary["perplexity"] * scale,
                   wall_seconds=summary["wall_seconds"] * rng.uniform(0.5, 2))
    (dest / "summary.json").write_text(json.dumps(summary, indent=1))


def start_board(root: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "glassbox", "board", str(root), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            httpx.get(url + "/static/board.css", timeout=2)  # up, but no run folder read yet
            return proc, url
        except httpx.TransportError:
            time.sleep(0.05)
    raise SystemExit("the board did not start")


def timed_get(url: str) -> float:
    t0 = time.perf_counter()
    r = httpx.get(url, timeout=30)
    r.raise_for_status()
    return time.perf_counter() - t0


def page_load(browser, url: str, n: int) -> float:
    """Seconds from navigation to every run's row drawn, in a fresh page."""
    page = browser.new_page()
    t0 = time.perf_counter()
    page.goto(url + "/")
    page.wait_for_function(f"document.querySelectorAll('#runs tbody tr').length === {n}", timeout=30_000)
    seconds = time.perf_counter() - t0
    page.close()
    return seconds


def measure(root: Path, n: int, repeats: int, browser) -> dict:
    out = {}
    proc, url = start_board(root)
    try:  # a board just started has read no run folder: its first page reads them all
        out["cold_page"] = page_load(browser, url, n)
    finally:
        proc.terminate()
        proc.wait()
    proc, url = start_board(root)
    try:
        out["first"] = timed_get(url + "/api/runs")
        out["warm"] = statistics.median(timed_get(url + "/api/runs") for _ in range(repeats))
        pages = [page_load(browser, url, n) for _ in range(repeats)]
        out["page"], out["page_max"] = statistics.median(pages), max(pages)
        return out
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--from", dest="source", help="a finished run folder to copy (default: train a tiny one)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = Path(args.source) if args.source else real_run(tmp)
        rng = random.Random(0)
        for i in range(args.runs):
            variant(source, tmp / "many" / f"run-{i:03d}", i, rng)
        variant(source, tmp / "one" / "run-000", 0, rng)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
            one = measure(tmp / "one", 1, args.repeats, browser)
            many = measure(tmp / "many", args.runs, args.repeats, browser)
            browser.close()
    for name, m, n in (("1 run (baseline)", one, 1), (f"{args.runs} runs", many, args.runs)):
        print(f"board with {name}: first page {m['cold_page'] * 1000:.0f} ms (the board reads every run folder); "
              f"then page drawn in {m['page'] * 1000:.0f} ms (median of {args.repeats}, slowest "
              f"{m['page_max'] * 1000:.0f} ms); /api/runs first {m['first'] * 1000:.0f} ms, then "
              f"{m['warm'] * 1000:.1f} ms")
    print(f"ratio {args.runs} runs / 1 run: first page {many['cold_page'] / one['cold_page']:.2f}x, page "
          f"{many['page'] / one['page']:.2f}x, /api/runs first {many['first'] / one['first']:.2f}x")
    worst = max(many["cold_page"], many["page"])
    print(f"goal: the page shows {args.runs} runs in under 1 s: {'met' if worst < 1.0 else 'NOT met'} "
          f"(slower of first and later loads: {worst:.2f} s)")


if __name__ == "__main__":
    main()

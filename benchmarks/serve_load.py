"""How many requests per second does `glassbox serve` answer, and how fast, against a plain FastAPI endpoint that
calls the same Predictor once per request (the server before batching)? Then: does it hold up under overload?

Both servers run as their own processes on loopback; the clients are one asyncio process here, each client one
keep-alive connection sending one SMS message per request. Phases alternate (plain, glassbox, plain, ...); each
is bounded in time and in requests. Prints each phase, the medians and the ratio (goal: >= 3x the plain
endpoint's 173 requests/s measured before batching, i.e. >= 520/s, with p99 <= 100 ms and no errors).

    glassbox train ../shared/data/sms_spam_collection/SMSSpamCollection --columns label,text --text text \\
        --label label --out /tmp/spam --quiet
    python benchmarks/serve_load.py /tmp/spam/model [--clients 32] [--seconds 5] [--repeats 2] [--overload 200]
"""

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SMS = ROOT.parent / "shared" / "data" / "sms_spam_collection" / "SMSSpamCollection"


def plain_server(artifact: str, port: int) -> None:
    """The baseline: FastAPI + uvicorn, one Predictor call per request, as glassbox served before batching."""
    import uvicorn
    from fastapi import FastAPI
    from pydantic import BaseModel

    from glassbox.infer.predictor import Predictor

    predictor, app = Predictor(artifact), FastAPI()

    class PredictRequest(BaseModel):
        inputs: list[str]

    @app.post("/predict")
    def predict(req: PredictRequest):
        return {"predictions": predictor.predict(predictor.parse(req.inputs)), "calibrated": predictor.calibrated}

    @app.get("/health")
    def health():
        return {"status": "ok"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], port: int) -> subprocess.Popen:
    # both servers as the CLI runs them: idle OpenMP threads sleep rather than spin (glassbox/cli main)
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"server exited with {proc.returncode}: {' '.join(cmd)}")
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start within 120 s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (from /proc: robust to other load on the machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def one_client(port: int, texts: list[str], stop_at: float, budget: list[int], out: list, timeout: float,
                     headers: bytes = b""):
    """One keep-alive connection; each request one text. Appends (status, seconds) per request. headers: extra
    header lines, each ending in CRLF (a token)."""
    reader = writer = None
    i = len(out)
    while time.perf_counter() < stop_at and budget[0] > 0:
        budget[0] -= 1
        body = json.dumps({"inputs": [texts[i % len(texts)]]}).encode()
        i += 1
        t0 = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (headers, len(body), body))
            status, close = await asyncio.wait_for(read_response(reader), timeout)
            if close:
                writer.close()
                reader = writer = None
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
            status, reader, writer = 0, None, None  # 0: no answer (refused, reset or timed out)
        out.append((status, time.perf_counter() - t0))
    if writer is not None:
        writer.close()


async def read_response(reader) -> tuple[int, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    headers = {k.lower(): v for k, v in headers.items()}
    await reader.readexactly(int(headers.get("content-length", 0)))
    return int(lines[0].split()[1]), headers.get("connection", "").lower() == "close"


def load(port: int, clients: int, seconds: float, max_requests: int, texts: list[str], timeout: float = 30,
         headers: bytes = b"", beside=None) -> dict:
    """`clients` keep-alive clients for `seconds`; `beside`: a coroutine function run alongside them (an attack)."""
    out: list = []
    budget = [max_requests]

    async def main():
        stop_at = time.perf_counter() + seconds
        others = [beside(stop_at)] if beside else []
        await asyncio.gather(*(one_client(port, texts[k::clients] or texts, stop_at, budget, out, timeout, headers)
                               for k in range(clients)), *others)
    t0 = time.perf_counter()
    asyncio.run(main())
    wall = time.perf_counter() - t0
    ok = sorted(s for status, s in out if status == 200)
    q = statistics.quantiles(ok, n=100, method="inclusive") if len(ok) > 1 else [float("nan")] * 99
    statuses = {}
    for status, _ in out:
        statuses[status] = statuses.get(status, 0) + 1
    return {"requests": len(out), "per_s": len(ok) / wall, "p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000,
            "max_ms": max(s for _, s in out) * 1000, "statuses": statuses}


def show(name: str, r: dict) -> None:
    cpu = f"  server CPU {r['cpu_ms']:.2f} ms/request" if "cpu_ms" in r else ""
    print(f"  {name:9s} {r['per_s']:7.1f} req/s  p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms  "
          f"max {r['max_ms']:7.1f} ms  {r['requests']} requests, statuses {r['statuses']}{cpu}", flush=True)


def sms_texts() -> list[str]:
    return [line.split("\t", 1)[1] for line in SMS.read_text(encoding="utf-8").splitlines() if "\t" in line]


def run(args) -> None:
    texts = sms_texts()
    ports = {"plain": free_port(), "glassbox": free_port()}
    procs = {"plain": start([sys.executable, __file__, args.artifact, "--plain-server", str(ports["plain"])], ports["plain"]),
             "glassbox": start([sys.executable, "-m", "glassbox", "serve", args.artifact, "--port", str(ports["glassbox"]),
                                "--timeout-s", str(args.timeout_s)], ports["glassbox"])}
    try:
        results = {"plain": [], "glassbox": []}
        print(f"{args.clients} clients, one SMS text per request, {args.seconds:g} s or {args.max_requests} requests "
              f"per phase; torch threads as each server chooses; load average now {os.getloadavg()[0]:.1f}")
        for _ in range(args.repeats):
            for name in ("plain", "glassbox"):
                cpu = cpu_seconds(procs[name].pid)
                r = load(ports[name], args.clients, args.seconds, args.max_requests, texts)
                r["cpu_ms"] = (cpu_seconds(procs[name].pid) - cpu) / r["requests"] * 1000
                results[name].append(r)
                show(name, r)
        med = {n: {k: statistics.median(r[k] for r in rs) for k in ("per_s", "p50_ms", "p99_ms", "cpu_ms")}
               for n, rs in results.items()}
        for n in med:
            print(f"median {n:9s} {med[n]['per_s']:7.1f} req/s  p50 {med[n]['p50_ms']:6.1f} ms  p99 {med[n]['p99_ms']:6.1f} ms"
                  f"  server CPU {med[n]['cpu_ms']:.2f} ms per request")
        print(f"server CPU per request, plain / glassbox: {med['plain']['cpu_ms'] / med['glassbox']['cpu_ms']:.2f}x")
        print(f"throughput ratio glassbox / plain: {med['glassbox']['per_s'] / med['plain']['per_s']:.2f}x; "
              f"glassbox {med['glassbox']['per_s'] / 173:.2f}x the 173 req/s measured before batching (goal >= 3x, "
              f"p99 <= 100 ms, 0 errors)")
        overload(args, ports["glassbox"], procs["glassbox"].pid, texts)
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait(timeout=30)


def overload(args, port: int, pid: int, texts: list[str]) -> None:
    rss = peak_rss_mib(pid)
    r = load(port, args.overload, args.seconds, args.max_requests, texts, timeout=args.timeout_s + 5)
    show("overload", r)
    bad = {s: n for s, n in r["statuses"].items() if s not in (200, 503)}
    late = r["max_ms"] > (args.timeout_s + 1) * 1000
    print(f"{args.overload} clients: {'every request answered 200 or 503' if not bad else f'other answers: {bad}'}; "
          f"slowest {r['max_ms']:.0f} ms ({'within' if not late else 'past'} the {args.timeout_s:g} s deadline); "
          f"server peak memory {rss:.0f} MiB before, {peak_rss_mib(pid):.0f} MiB after")
    after = load(port, 1, 1.0, 200, texts)
    show("after", after)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("artifact", help="a text classifier's artifact folder, RUN/model (SMS spam)")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--seconds", type=float, default=5.0, help="length of each phase")
    p.add_argument("--max-requests", type=int, default=20_000, help="most requests in one phase")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--overload", type=int, default=200, help="clients in the overload phase")
    p.add_argument("--timeout-s", type=float, default=2.0, help="the glassbox server's per-request deadline")
    p.add_argument("--plain-server", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.plain_server:
        plain_server(args.artifact, args.plain_server)
    else:
        run(args)


if __name__ == "__main__":
    main()

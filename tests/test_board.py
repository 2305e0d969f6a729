"""glassbox board: a real board process on a loopback port, over real run folders: one finished, one being trained by a
real `glassbox train` process during the test. The page runs in headless Chromium (Debian's, driven by Playwright);
the JSON it polls is checked with httpx; TensorBoard's own reader reads back the --tensorboard files."""
from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from glassbox.cli import main
from tests.conftest import one_thread_env, subprocess_env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def start_board(root: Path, *flags: str) -> tuple[subprocess.Popen, str]:
    """`glassbox board ROOT FLAGS` as its own process, once it answers (on 127.0.0.1, whatever --host it has)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "glassbox", "board", str(root), "--port", str(port), *flags],
                            env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(url + "/api/runs", timeout=2)
            return proc, url
        except httpx.TransportError:
            assert proc.poll() is None, proc.communicate()[1]
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("the board did not answer in 30 s")


@pytest.fixture(scope="module")
def runs(request, tmp_path_factory):
    """runs/live: a real `glassbox train` process (a tiny GPT on 60,000 characters of tinyshakespeare, with
    --tensorboard), training until the test kills it (no early stop: on a quiet machine it stopped at step 350,
    sometimes before the page saw its step count rise); runs/done: a copy of the finished tiny language model run the
    other tests share (conftest), trained meanwhile on the same text with other settings."""
    from tests.conftest import shared

    root = tmp_path_factory.mktemp("board") / "runs"
    corpus = root.parent / "shakespeare_60k.txt"
    corpus.write_text(shared("tinyshakespeare", "input.txt").read_text(encoding="utf-8")[:60_000], encoding="utf-8")
    live = subprocess.Popen([sys.executable, "-m", "glassbox", "train", str(corpus), "--task", "lm", "--n-layer", "1",
                             "--n-head", "2", "--n-embd", "32", "--block-size", "32", "--batch-size", "16",
                             "--max-steps", "100000", "--eval-every", "5", "--lr", "0.002", "--patience", "0", "--quiet",
                             *(["--tensorboard"] if has("tensorboard") else []), "--out", str(root / "live")],
                            env=one_thread_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    shutil.copytree(request.getfixturevalue("tiny_lm_run"), root / "done",
                    ignore=shutil.ignore_patterns("checkpoints", "data"))
    yield root, live
    live.kill()
    live.wait()


@pytest.fixture(scope="module")
def board(runs):
    proc, url = start_board(runs[0])
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def pandas_ewm(values: list[float], weight: float) -> list[float]:
    """TensorBoard's debiased EMA is the adjusted exponentially weighted mean: the independent reference."""
    import pandas as pd

    return pd.Series(values).ewm(alpha=1 - weight, adjust=True).mean().tolist()


def settings_that_differ(a: dict, b: dict) -> set[str]:
    keys = (set(a) | set(b)) - {"sources", "derived", "data_source"}
    out = {k for k in keys if a.get(k) != b.get(k)}
    derived_a, derived_b = a.get("derived") or {}, b.get("derived") or {}
    return out | {f"derived: {k}" for k in set(derived_a) | set(derived_b)
                  if (derived_a.get(k) or {}).get("value") != (derived_b.get(k) or {}).get("value")}


def live_step_above(page, least: int, timeout_s: float) -> int:
    """The step the running live run's row shows, once above `least`. Polled from here: the page's CSP forbids the
    eval that page.wait_for_function would need."""
    cell = page.locator('tr[data-id="live"][data-status="running"] td.steps')
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        step = int(cell.get_attribute("data-step") or 0) if cell.count() == 1 else 0
        if step > least:
            return step
        time.sleep(0.2)
    raise AssertionError(f"the live run's row did not show a step above {least} within {timeout_s} s")


def test_the_page_shows_both_runs_follows_the_live_one_and_compares_them(runs, board, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser_path is None:
        pytest.skip("chromium is not installed (.ci/run installs it)")
    root, live = runs
    done = json.loads((root / "done" / "summary.json").read_text())
    shots = Path(os.environ.get("GLASSBOX_TEST_ARTIFACTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(board + "/")
        row = page.locator('tr[data-id="done"]')
        row.wait_for()
        assert row.get_attribute("data-status") == "finished"
        assert f"perplexity {done['perplexity']:.4f}" in row.inner_text()
        # the live run: running, and its step count rises while the page stays loaded
        first = live_step_above(page, 0, timeout_s=60)
        live_step_above(page, first, timeout_s=30)
        page.screenshot(path=str(shots / "board-runs.png"))

        # the finished run's page: its curves, the chance level ln K and the sweet spot, drawn from its files
        page.click('a[href="#run=done"]')
        val = page.locator('svg[data-chart="loss"] path[data-series="validation"]')
        val.wait_for()
        assert int(val.get_attribute("data-points")) == len(records(root / "done"))
        chance = f"chance ln K = {math.log(done['vocab_size']):.3f}"  # a uniform guess over the vocabulary
        assert page.locator('svg[data-chart="loss"] text', has_text=chance).count() == 1
        assert page.locator('svg[data-chart="loss"] text', has_text=f"sweet spot (step {done['best_step']})").count() == 1
        assert done["verdict"] in page.locator("p.verdict").inner_text()
        values = [r["val_loss"] for r in records(root / "done")]
        assert page.evaluate("([v, w]) => Charts.smooth(v, w)", [values, 0.6]) == pytest.approx(pandas_ewm(values, 0.6))
        page.check("#log")
        page.locator('svg[data-chart="loss"][data-scale="log"]').wait_for()
        page.screenshot(path=str(shots / "board-run.png"), full_page=True)

        # compare: tick both runs, overlay their curves, list the settings that differ and where each came from
        page.click("header a")
        for run_id in ("done", "live"):
            page.locator(f'tr[data-id="{run_id}"] input[type=checkbox]').check()
        page.click("#compare")
        for run_id in ("done", "live"):
            page.locator(f'svg[data-chart="val_loss"] path[data-run="{run_id}"]').first.wait_for()
        page.locator("#diff tr[data-key]").first.wait_for()
        shown = set(page.eval_on_selector_all("#diff tr[data-key]", "rows => rows.map(r => r.dataset.key)"))
        configs = [json.loads((root / r / "config.json").read_text()) for r in ("done", "live")]
        assert shown == settings_that_differ(*configs) and {"max_steps", "lr", "eval_every"} <= shown
        shown_lr = page.locator('#diff tr[data-key="lr"]').inner_text().split("\t")[1:]
        assert shown_lr == [f"{c['lr']} ({c['sources']['lr']})" for c in configs] and shown_lr[1] == "0.002 (flag)"
        page.screenshot(path=str(shots / "board-compare.png"), full_page=True)

        assert not errors, errors
        # a run whose folder is deleted while its page is open says so (its requests are 404s from then on), and the
        # live run, killed, is interrupted
        shutil.copytree(root / "done", root / "gone", ignore=shutil.ignore_patterns("checkpoints", "model"))
        page.goto(board + "/#run=gone")
        page.locator('svg[data-chart="loss"] path[data-series="validation"]').wait_for()
        shutil.rmtree(root / "gone")
        page.wait_for_selector("#gone:not([hidden])")
        assert "deleted" in page.locator("#gone").inner_text()
        live.kill()
        live.wait()
        page.goto(board + "/")
        page.locator('tr[data-id="live"][data-status="interrupted"]').wait_for()
        assert page.locator('tr[data-id="gone"]').count() == 0
        browser.close()
    assert all("404 (Not Found)" in e for e in errors), errors


def test_the_json_says_what_is_wrong_with_a_run_and_never_fails(runs, board, tmp_path):
    """A line still being written, a damaged summary, a process that died, a run that is not there: each answers
    with a status or a 404 that says so."""
    root = runs[0]
    lines = (root / "done" / "metrics.jsonl").read_text().splitlines(keepends=True)
    half = root / "half"
    half.mkdir()
    shutil.copy(root / "done" / "config.json", half / "config.json")
    (half / "metrics.jsonl").write_text("".join(lines[:2]) + lines[2][:25])  # the third line, half written
    got = httpx.get(f"{board}/api/metrics", params={"id": "half"}).json()
    assert [r["step"] for r in got["rows"]] == [json.loads(x)["step"] for x in lines[:2]]
    assert got["offset"] == len("".join(lines[:2]).encode())
    with open(half / "metrics.jsonl", "a") as f:
        f.write(lines[2][25:])  # the line is finished: the next read from that offset returns it alone
    more = httpx.get(f"{board}/api/metrics", params={"id": "half", "offset": got["offset"]}).json()
    assert [r["step"] for r in more["rows"]] == [json.loads(lines[2])["step"]] and not more["reset"]

    damaged = root / "damaged"
    shutil.copytree(half, damaged)
    (damaged / "summary.json").write_text('{"task": "lm", "da')  # cut short
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    killed = root / "killed"
    shutil.copytree(half, killed)
    marker = {"pid": int(dead.stdout), "host": socket.gethostname(), "started": "2026-01-01T00:00:00+00:00"}
    (killed / "running.json").write_text(json.dumps(marker))
    alive = root / "alive"
    shutil.copytree(half, alive)
    (alive / "running.json").write_text(json.dumps({**marker, "pid": os.getpid()}))  # this test's own process
    summary = json.loads((root / "done" / "summary.json").read_text())
    for reason in ("early_stop", "diverged", "interrupted"):  # how a run ended, as its summary.json says
        shutil.copytree(half, root / reason)
        (root / reason / "summary.json").write_text(json.dumps({**summary, "stop_reason": reason}))
    strange = root / "strange"  # valid JSON, but not the shapes glassbox writes
    strange.mkdir()
    (strange / "config.json").write_text(json.dumps({"derived": {"steps": 5}, "sources": 3, "lr": "fast"}))
    (strange / "summary.json").write_text(json.dumps({**summary, "calibration": 1, "groups": {"columns": [2]},
                                                      "stop_reason": "max_steps", "steps": 30, "task": "lm"}))
    rows = {r["id"]: r for r in httpx.get(f"{board}/api/runs").json()["runs"]}
    assert rows["strange"]["status"] == "unreadable" and "values glassbox does not write" in rows["strange"]["status_note"]
    assert httpx.get(f"{board}/api/run", params={"id": "strange"}).json()["problems"][0].startswith("its files hold")
    assert httpx.get(f"{board}/api/compare", params={"id": ["done", "strange"]}).status_code == 200
    assert [rows[r]["status"] for r in ("early_stop", "diverged", "interrupted", "done")] == [
        "stopped early", "diverged", "interrupted", "finished"]
    assert rows["half"]["status"] == "interrupted" and rows["half"]["step"] == json.loads(lines[2])["step"]
    assert rows["damaged"]["status"] == "unreadable" and "summary.json is not valid JSON" in rows["damaged"]["status_note"]
    assert rows["killed"]["status"] == "interrupted" and str(marker["pid"]) in rows["killed"]["status_note"]
    assert rows["alive"]["status"] == "running" and rows["alive"]["wall_seconds"] > 3600
    detail = httpx.get(f"{board}/api/run", params={"id": "damaged"})
    assert detail.status_code == 200 and detail.json()["problems"] == [rows["damaged"]["status_note"]]

    for bad in ("nope", "../..", "/etc", "done/model"):
        answer = httpx.get(f"{board}/api/run", params={"id": bad})
        assert answer.status_code == 404 and answer.json()["gone"], bad
    assert httpx.get(f"{board}/api/compare", params={"id": ["done", "nope"]}).status_code == 404
    report = httpx.get(f"{board}/report", params={"id": "done"})
    assert report.status_code == 200 and report.text == (root / "done" / "report.html").read_text(encoding="utf-8")
    assert httpx.get(f"{board}/report", params={"id": "half"}).status_code == 404


def test_bad_board_command_lines_end_in_one_line(runs, board, tmp_path, capsys):
    port = board.rsplit(":", 1)[1]
    (tmp_path / "a_file").write_text("x")
    for argv, words in [([str(tmp_path / "missing")], "runs folder not found"),
                        ([str(tmp_path / "a_file")], "is a file, not a folder"),
                        ([str(runs[0]), "--port", port], f"cannot listen on 127.0.0.1:{port}"),
                        ([str(runs[0]), "--port", "70000"], "--port must be between 1 and 65535")]:
        assert main(["board", *argv]) == 2
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1, err


def test_an_empty_folder_says_so_and_shows_a_run_as_soon_as_it_appears(runs, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc, url = start_board(empty)
    try:
        first = httpx.get(url + "/api/runs").json()
        assert first["runs"] == [] and first["message"].startswith(f"no runs under {empty} yet")
        shutil.copytree(runs[0] / "done", empty / "group" / "done", ignore=shutil.ignore_patterns("checkpoints", "data"))
        then = httpx.get(url + "/api/runs").json()
        assert [r["id"] for r in then["runs"]] == ["group/done"] and then["message"] is None
        assert httpx.get(url + "/").text.count("/static/") == 3  # the page and its own files, nothing from elsewhere
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_tensorboard_files_hold_what_metrics_jsonl_holds(runs, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    from glassbox.report.summary import load_summary
    from glassbox.train.tensorboard import SCALARS, write_final

    root, live = runs
    for _ in range(600):  # the live run has written at least two evaluations after step 0
        if (root / "live" / "metrics.jsonl").exists() and len(records(root / "live")) >= 3:
            break
        time.sleep(0.1)
    live.kill()
    live.wait()
    logged = records(root / "live")
    acc = EventAccumulator(str(root / "live" / "tensorboard"), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    for key, tag in SCALARS.items():
        want = [(r["step"], r[key]) for r in logged if r.get(key) is not None]
        got = [(e.step, e.value) for e in acc.Scalars(tag)]
        # killed between writing a metrics.jsonl line and its TensorBoard twin, the last one may be missing there
        assert len(got) in (len(want), len(want) - 1) and len(got) > 2, (tag, len(got), len(want))
        want = want[:len(got)]
        assert [s for s, _ in got] == [s for s, _ in want], tag
        assert [v for _, v in got] == pytest.approx([v for _, v in want], rel=1e-6), tag  # stored as float32
    assert [e.step for e in acc.Scalars("loss/chance_ln_k")] == [0]
    assert acc.Scalars("loss/chance_ln_k")[0].value == pytest.approx(logged[0]["chance_loss"], rel=1e-6)

    # the settings and final figures a finished run adds, written (as finish.py does) into a copy of a finished run
    done = tmp_path / "done"
    shutil.copytree(root / "done", done, ignore=shutil.ignore_patterns("checkpoints", "data", "model"))
    config, summary = (json.loads((done / name).read_text()) for name in ("config.json", "summary.json"))
    settings = {k: v for k, v in config.items() if k not in ("sources", "derived", "data_source")}
    write_final(done, settings, config["sources"], load_summary(summary))
    acc = EventAccumulator(str(done / "tensorboard"), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    final = acc.Scalars("final/perplexity")
    assert [e.step for e in final] == [summary["steps"]] and final[0].value == pytest.approx(summary["perplexity"], rel=1e-6)
    start = plugin_data_pb2.HParamsPluginData.FromString(
        acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["lr"].number_value == settings["lr"] and start.hparams["task"].string_value == "lm"
    assert start.hparams["max_steps"].number_value == summary["steps"] and set(start.hparams) == set(settings)
    table = acc.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert f"| lr | {settings['lr']} | {config['sources']['lr']} |" in table


def test_tensorboard_without_its_package_is_refused_in_one_line_before_any_folder_is_made(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed: importing it raises ImportError
    assert main(["train", "digits", "--tensorboard", "--max-steps", "5", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "pip install 'glassbox[tensorboard]'" in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_a_run_id_in_a_page_is_text_never_markup(tmp_path):
    """GET /report?id=<script>... answers 404 with the id escaped: in headless Chromium the page holds no script
    element and the script never ran. An id with a NUL byte is no run (404), not a server error."""
    payload = "<script>document.title='ran'</script>"
    proc, url = start_board(tmp_path)
    try:
        answer = httpx.get(url + "/report", params={"id": payload}, timeout=10)
        assert answer.status_code == 404 and "<script>" not in answer.text
        assert "&lt;script&gt;document.title=&#x27;ran&#x27;&lt;/script&gt;" in answer.text
        for route in ("/report", "/api/run"):
            assert httpx.get(url + route, params={"id": "a\x00b"}, timeout=10).status_code == 404
        browser = shutil.which("chromium") or shutil.which("chromium-browser")
        if browser is None:
            pytest.skip("chromium is not installed (.ci/run installs it)")
        dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                              f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", str(answer.url)],
                             capture_output=True, text=True, timeout=120)
        assert dom.returncode == 0, dom.stderr[-2000:]
        assert "<script" not in dom.stdout and "ran" not in dom.stdout.split("<body>")[0]
        assert "document.title='ran'" in dom.stdout  # shown as text
    finally:
        proc.kill()
        proc.wait()


def test_the_board_reads_only_a_runs_own_regular_files(tmp_path):
    """Links out of the runs folder are never followed, and a pipe or an endless device never blocks the board:
    report.html linked to a file outside, config.json linked to JSON outside, metrics.jsonl linked to /dev/zero,
    summary.json a FIFO. Each run shows as a row with its problem said; nothing from outside reaches a page."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.html").write_text("<p>SECRET PAGE</p>")
    (outside / "secret.json").write_text(json.dumps({"data": "SECRET DATA", "lr": 1}))
    root = tmp_path / "runs"
    linked, piped = root / "linked", root / "piped"
    for folder in (linked, piped):
        folder.mkdir(parents=True)
    (linked / "report.html").symlink_to(outside / "secret.html")
    (linked / "config.json").symlink_to(outside / "secret.json")
    (linked / "metrics.jsonl").symlink_to("/dev/zero")
    (piped / "config.json").write_text(json.dumps({"data": "x.csv"}))
    os.mkfifo(piped / "summary.json")
    proc, url = start_board(root)
    try:
        rows = {r["id"]: r for r in httpx.get(url + "/api/runs", timeout=10).json()["runs"]}
        assert "is a link" in rows["linked"]["problem"] and "not a regular file" in rows["piped"]["problem"]
        for route, params in (("/api/run", {"id": "linked"}), ("/api/run", {"id": "piped"}),
                              ("/api/compare", {"id": ["linked", "piped"]}), ("/api/metrics", {"id": "linked"}),
                              ("/report", {"id": "linked"})):
            answer = httpx.get(url + route, params=params, timeout=10)
            assert answer.status_code < 500 and "SECRET" not in answer.text, (route, answer.text[:300])
        assert httpx.get(url + "/report", params={"id": "linked"}, timeout=10).status_code == 404
        assert httpx.get(url + "/api/metrics", params={"id": "linked"}, timeout=10).json()["rows"] == []
    finally:
        proc.kill()
        proc.wait()


def test_a_board_on_loopback_answers_loopback_host_names_only(tmp_path):
    """DNS rebinding: a page on evil.example whose name resolves to 127.0.0.1 sends Host: evil.example; the board
    refuses it (400) before any route runs, and still answers localhost and 127.0.0.1."""
    from glassbox.board.app import allowed_hosts

    proc, url = start_board(tmp_path)
    port = url.rsplit(":", 1)[1]
    try:
        for host, status in (("evil.example", 400), (f"evil.example:{port}", 400), (f"localhost:{port}", 200),
                             (f"127.0.0.1:{port}", 200)):
            assert httpx.get(url + "/api/runs", headers={"Host": host}, timeout=10).status_code == status, host
    finally:
        proc.kill()
        proc.wait()
    assert allowed_hosts("0.0.0.0") is None and "board.lan" in allowed_hosts("board.lan")


BOARD_TOKEN = "a-board-test-token-0123456789"


def test_every_answer_carries_a_csp_and_no_page_runs_a_strangers_script(request, tmp_path):
    """Every answer (pages, static files, JSON, a report, a 404, a 401, a 400) carries a Content-Security-Policy and
    nosniff. In headless Chromium, on a board off loopback that asks for its token: the board, its compare view and a
    real run's report render with no CSP violation; a report.html holding scripts (anyone who can write a run folder
    can write one) runs none of them."""
    sync_api = pytest.importorskip("playwright.sync_api")
    root = tmp_path / "runs"
    for name in ("done", "hostile"):
        shutil.copytree(request.getfixturevalue("tiny_lm_run"), root / name,
                        ignore=shutil.ignore_patterns("checkpoints", "data", "model"))
    (root / "hostile" / "report.html").write_text(
        "<html><head><title>hostile</title></head><body><p id='shown'>a report</p>"
        "<script>document.title = 'ran'</script><img src='data:,' onerror=\"document.title = 'ran'\"></body></html>")
    (tmp_path / "token").write_text(BOARD_TOKEN)
    proc, url = start_board(root, "--host", "0.0.0.0", "--token-file", str(tmp_path / "token"))
    try:
        auth = ("anyone", BOARD_TOKEN)
        answers = [httpx.get(url + path, auth=auth, timeout=10) for path in
                   ("/", "/static/board.js", "/api/runs", "/report?id=done", "/report?id=nothing", "/api/run?id=x")]
        answers.append(httpx.get(url + "/api/runs", timeout=10))  # no token: 401
        assert [a.status_code for a in answers] == [200, 200, 200, 200, 404, 404, 401]
        for a in answers:
            assert a.headers["x-content-type-options"] == "nosniff", a.url
            policy = a.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in policy and "base-uri 'none'" in policy, a.url
            if a.url.path == "/report":
                assert "sandbox" in policy and "script-src" not in policy and "default-src 'none'" in policy
            else:
                assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "object-src 'none'" in policy
        browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
        if browser_path is None:
            pytest.skip("chromium is not installed (.ci/run installs it)")
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_context(http_credentials={"username": "anyone", "password": BOARD_TOKEN}).new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
            page.goto(url + "/")
            page.locator('tr[data-id="done"][data-status="finished"]').wait_for()
            for run_id in ("done", "hostile"):
                page.locator(f'tr[data-id="{run_id}"] input[type=checkbox]').check()
            page.click("#compare")
            header = page.locator("#diff th").nth(1)
            header.wait_for()
            assert header.evaluate("e => getComputedStyle(e).color") == "rgb(31, 119, 180)"  # COLORS[0], via the CSSOM
            page.goto(url + "/report?id=done")
            assert page.locator("h1").count() >= 1 and page.locator("img").count() >= 1
            assert page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 0)")  # data: images
            assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(246, 246, 244)"  # <style>
            assert not errors, errors  # the board and a real report: no CSP violation, no error
            page.goto(url + "/report?id=hostile")
            page.locator("#shown").wait_for()
            assert page.title() == "hostile"  # neither the script nor the onerror handler ran
            browser.close()
    finally:
        proc.kill()
        proc.wait()


def test_a_board_off_loopback_needs_a_token_as_serve_does(tmp_path):
    """No token on a non-loopback --host: refused in one line before listening. With --token-file: 401 (the browser
    asks; Basic) without it or with a wrong one; the token as a bearer or as the Basic password opens it. --insecure:
    open, as asked. On loopback no token is needed (the tests above)."""
    refused = subprocess.run([sys.executable, "-m", "glassbox", "board", str(tmp_path), "--host", "0.0.0.0", "--port",
                              str(free_port())], capture_output=True, text=True, timeout=60, env=subprocess_env())
    err = refused.stderr.strip().splitlines()
    assert refused.returncode == 2 and len(err) == 1 and "without a token" in err[0] and "--insecure" in err[0], err
    (tmp_path / "token").write_text(BOARD_TOKEN + "\n")
    proc, url = start_board(tmp_path, "--host", "0.0.0.0", "--token-file", str(tmp_path / "token"))
    try:
        refused = httpx.get(url + "/api/runs", timeout=10)
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Basic")
        for auth, headers, status in ((None, {"Authorization": "Bearer " + BOARD_TOKEN[:-1] + "X"}, 401),
                                      (("anyone", BOARD_TOKEN[:-1] + "X"), {}, 401),
                                      (None, {"Authorization": "Basic !!!"}, 401),
                                      (None, {"Authorization": "Bearer " + BOARD_TOKEN}, 200),
                                      (("anyone", BOARD_TOKEN), {}, 200)):
            assert httpx.get(url + "/api/runs", auth=auth, headers=headers, timeout=10).status_code == status
    finally:
        proc.kill()
        proc.wait()
    proc, url = start_board(tmp_path, "--host", "0.0.0.0", "--insecure")
    try:
        assert httpx.get(url + "/api/runs", timeout=10).status_code == 200
    finally:
        proc.kill()
        proc.wait()

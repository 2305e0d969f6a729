"""benchmarks/gpu_check.py --smoke: the GPU check's every part, run on the CPU with tiny shapes and gloo, so that the
script runs the first time it meets a GPU. Its torchrun part also shows the shuffled-label control and every step
after training working under torchrun on 2 processes (rank 0 alone once the group is left)."""
import json
import shutil
import subprocess
import sys

from tests.conftest import ROOT, one_thread_env


def test_the_gpu_check_runs_every_part_in_smoke_mode(tmp_path, cats_dogs_64):
    photos = tmp_path / "photos"  # 24 cats and 24 dogs: the whole run, too few for the audit's fold models
    photos.mkdir()
    for kind in ("cat", "dog"):
        for photo in sorted((cats_dogs_64 / "100").glob(f"{kind}.*"))[:24]:
            shutil.copy(photo, photos)
    out = tmp_path / "gpu_check.json"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--smoke", "--cats-dogs",
                        str(photos), "--json", str(out)],
                       capture_output=True, text=True, timeout=600, env=one_thread_env(), cwd=tmp_path)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    assert "all checks passed" in r.stdout and "gpt        glassbox.fit compiled" in r.stdout
    results = json.loads(out.read_text())
    assert results["machine"]["smoke"] is True and results["ok"] is True

    gpt = results["gpt"]  # the plain loop and glassbox.fit, eager and compiled, measured alike
    assert [(row["run"], row["compile"]) for row in gpt["rows"]] == [
        ("plain loop", False), ("glassbox.fit", False), ("plain loop", True), ("glassbox.fit", True)]
    for row in gpt["rows"]:
        assert row["tokens_per_s"] > 0 and 0 < row["mfu"] < 1 and row["seconds"] > 0
        assert row["mfu"] == row["tokens_per_s"] * gpt["flops_per_token"] / gpt["peak_bf16_flops"]
    assert [round(r["vs_plain"], 6) for r in gpt["rows"] if "vs_plain" in r] == [
        round(gpt["rows"][i + 1]["tokens_per_s"] / gpt["rows"][i]["tokens_per_s"], 6) for i in (0, 2)]

    assert results["cnn"]["steps"] == 4 and 0 <= results["cnn"]["test_accuracy"] <= 1

    run = results["torchrun"]  # 2 processes, stopped by SIGTERM to the launcher, resumed under torchrun
    stop = run["stopped_at"]
    assert run["processes"] == 2 and 10 <= stop == run["checkpoint"] < run["steps"]
    assert run["sessions"] == [[0, stop], [stop, run["steps"]]]
    assert run["control_steps"] == 2 * run["steps"]  # the control, trained by rank 0 alone after the group was left
    cpu = results["gpu_to_cpu"]  # a copy of the stopped run, resumed in one process with --device cpu
    assert cpu["sessions"] == run["sessions"] and cpu["steps"] == run["steps"]

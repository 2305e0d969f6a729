"""Run folders under damage and misuse: damaged checkpoints, config.json and summary.json, data changed under
--resume, two runs started in the same second, report and artifact files that point where they must not, and
settings that would be ignored. Each ends in one line and exit code 2 (or, where an intact checkpoint is left,
in a resume from it), never a traceback."""
from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import pytest
import torch

from glassbox.cli import main
from glassbox.config import make_config
from glassbox.errors import UserError
from glassbox.train.checkpoint import Checkpointer
from tests.conftest import shared

TEXT_ARGS = ["--columns", "label,text", "--text", "text", "--label", "label"]
# 3 steps with a checkpoint after each: step-0000002 and step-0000003 are kept. 48 messages are below the
# label-error check's 50, so a run takes about a second.
SMALL = ["--max-steps", "3", "--checkpoint-every", "1", "--quiet"]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("glassbox: error: "), err
    assert not any("Traceback" in line for line in err), err
    return err[-1]


@pytest.fixture(scope="module")
def sms48(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sms") / "sms48.tsv"
    lines = shared("sms_spam_collection", "SMSSpamCollection").read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:48]), encoding="utf-8")  # 38 ham, 10 spam
    return path


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, sms48) -> Path:
    out = tmp_path_factory.mktemp("runs") / "sms"
    assert main(["train", str(sms48), *TEXT_ARGS, *SMALL, "--out", str(out)]) == 0
    assert sorted(p.name for p in (out / "checkpoints").glob("step-*")) == ["step-0000002", "step-0000003"]
    return out


@pytest.fixture
def run_copy(tmp_path, finished_run) -> Path:
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    return out


# --- 1. damaged checkpoints -------------------------------------------------------------------------------

def tiny_checkpoints(run_dir: Path, steps=(1, 2)) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    ckpt = Checkpointer(run_dir)
    for step in steps:
        model(torch.randn(8, 4)).sum().backward()
        opt.step()
        opt.zero_grad()
        ckpt.save_best(model.state_dict(), step)
        ckpt.save(step, model, opt, {"history": [], "chance": {}, "batches": {}, "best_step": step,
                                     "early_stopping": {"best_step": step}})
    return model, opt


def fresh():
    model = torch.nn.Linear(4, 3)
    return model, torch.optim.AdamW(model.parameters(), lr=0.1)


def flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGE = {
    "random bytes in model.safetensors": ("step-0000002/model.safetensors", lambda p: p.write_bytes(os.urandom(300))),
    "a flipped byte in model.safetensors": ("step-0000002/model.safetensors", flip_last_byte),
    "truncated optimizer.safetensors": ("step-0000002/optimizer.safetensors",
                                        lambda p: p.write_bytes(p.read_bytes()[:-5])),
    "non-UTF-8 state.json": ("step-0000002/state.json", lambda p: p.write_bytes(b"\xff\xfe{\x00")),
    "state.json without its entries": ("step-0000002/state.json", lambda p: p.write_text("{}")),
    "missing state.json": ("step-0000002/state.json", lambda p: p.unlink()),
    "a damaged sweet-spot file": ("best-0000002.safetensors", lambda p: p.write_bytes(os.urandom(64))),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_newest_checkpoint_is_passed_over_for_the_previous_one(tmp_path, capsys, damage):
    model, _ = tiny_checkpoints(tmp_path)
    where, spoil = DAMAGE[damage]
    spoil(tmp_path / "checkpoints" / where)
    ckpt = Checkpointer(tmp_path)
    m, opt = fresh()
    state = ckpt.load(m, opt)
    assert state["step"] == 1
    note = capsys.readouterr().err
    assert note.startswith("note: ") and where.split("/")[-1] in note and "step-0000001" in note
    assert ckpt.load_best(1) is not None


def test_a_damaged_latest_json_falls_back_to_the_newest_complete_checkpoint(tmp_path, capsys):
    model, _ = tiny_checkpoints(tmp_path)
    (tmp_path / "checkpoints" / "latest.json").write_bytes(b"\xff\xfe\x00garbage")
    m, opt = fresh()
    state = Checkpointer(tmp_path).load(m, opt)
    assert state["step"] == 2 and torch.equal(m.weight, model.weight)
    assert "latest.json is damaged" in capsys.readouterr().err


def test_latest_json_may_not_name_a_folder_outside_the_checkpoints(tmp_path, capsys):
    tiny_checkpoints(tmp_path)
    (tmp_path / "checkpoints" / "latest.json").write_text(json.dumps({"step": 9, "folder": "../../elsewhere"}))
    m, opt = fresh()
    assert Checkpointer(tmp_path).load(m, opt)["step"] == 2
    assert "names no step-NNNNNNN" in capsys.readouterr().err


def test_no_intact_checkpoint_left_is_one_line_naming_the_file(tmp_path):
    tiny_checkpoints(tmp_path)
    for step in (1, 2):
        (tmp_path / "checkpoints" / f"step-{step:07d}" / "model.safetensors").write_bytes(os.urandom(300))
    m, opt = fresh()
    with pytest.raises(UserError) as e:
        Checkpointer(tmp_path).load(m, opt)
    msg = str(e.value)
    assert "\n" not in msg and "step-0000002/model.safetensors is damaged" in msg and "new --out" in msg


def test_a_checkpoint_of_another_model_is_refused_as_such(tmp_path):
    tiny_checkpoints(tmp_path)
    other = torch.nn.Linear(4, 5)
    with pytest.raises(UserError, match="different model than this run builds .weight is 3x4 there, 5x4 here"):
        Checkpointer(tmp_path).load(other, torch.optim.AdamW(other.parameters()))


def test_resume_with_a_damaged_newest_checkpoint_ends_as_the_run_did(run_copy, finished_run, capsys):
    (run_copy / "checkpoints" / "step-0000003" / "model.safetensors").write_bytes(os.urandom(300))
    (run_copy / "summary.json").unlink()
    assert main(["train", "--out", str(run_copy), "--resume", "--quiet"]) == 0
    assert "resuming from step-0000002" in capsys.readouterr().err
    a = (finished_run / "model" / "model.safetensors").read_bytes()
    assert (run_copy / "model" / "model.safetensors").read_bytes() == a  # step 3 trained again, to the same weights


@pytest.mark.parametrize("file", ["step-0000003/model.safetensors", "step-0000003/state.json"])
def test_resume_with_every_checkpoint_damaged_is_one_line(run_copy, capsys, file):
    for step in ("step-0000002", "step-0000003"):
        (run_copy / "checkpoints" / file.replace("step-0000003", step)).write_bytes(b"\xff\xfe" + os.urandom(200))
    assert main(["train", "--out", str(run_copy), "--resume", "--quiet"]) == 2
    line = one_error_line(capsys)
    assert f"{file} is damaged" in line and "new --out" in line


# --- 2. damaged config.json --------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [b"{bad\n", b"\xff\xfe{}", b"[1, 2]", b'{"epochs": 2}', b'{"data": "x", "epochs": "ten"}',
                                  b'{"data": "x", "data_source": "abc"}'])
def test_resume_with_a_damaged_config_json_is_one_line(run_copy, capsys, text):
    (run_copy / "config.json").write_bytes(text)
    assert main(["train", "--out", str(run_copy), "--resume", "--quiet"]) == 2
    line = one_error_line(capsys)
    assert "config.json is damaged" in line and "new --out" in line


def test_a_bad_flag_on_resume_is_blamed_on_the_flag_not_on_config_json(run_copy, capsys):
    assert main(["train", "--out", str(run_copy), "--resume", "--quiet", "--power-watts", "-5"]) == 2
    line = one_error_line(capsys)
    assert "power_watts" in line and "config.json" not in line


# --- 3. data changed under --resume ------------------------------------------------------------------------

def test_resume_refuses_data_changed_since_the_run_started(tmp_path, sms48, capsys):
    data = tmp_path / "sms.tsv"
    shutil.copy(sms48, data)
    out = tmp_path / "run"
    assert main(["train", str(data), *TEXT_ARGS, *SMALL, "--out", str(out)]) == 0
    record = json.loads((out / "config.json").read_text())["data_source"]
    assert record["files"] == 1 and record["bytes"] == data.stat().st_size
    split = (out / "split.json").read_bytes()
    with open(data, "a", encoding="utf-8") as f:
        f.writelines(f"ham\tzebra quokka platypus {i} wombat\n" for i in range(30))
    assert main(["train", "--out", str(out), "--resume", "--quiet"]) == 2
    line = one_error_line(capsys)
    assert "changed since the run" in line and "bytes then" in line
    assert (out / "split.json").read_bytes() == split  # refused before anything was rewritten
    shutil.copy(sms48, data)  # the data as it was: the run resumes
    assert main(["train", "--out", str(out), "--resume", "--quiet"]) == 0


def test_a_run_without_a_record_of_its_data_still_resumes(run_copy):
    config = json.loads((run_copy / "config.json").read_text())
    del config["data_source"]  # runs made before glassbox recorded the data
    (run_copy / "config.json").write_text(json.dumps(config))
    assert main(["train", "--out", str(run_copy), "--resume", "--quiet"]) == 0


def test_an_image_folder_fingerprint_ignores_files_the_loader_skips(tmp_path):
    from glassbox.run.folder import source_record

    (tmp_path / "cat").mkdir()
    (tmp_path / "dog").mkdir()
    for name in ("cat/a.png", "dog/b.png"):
        (tmp_path / name).write_bytes(b"\x89PNG fake")
    before = source_record(str(tmp_path))
    (tmp_path / "README.txt").write_text("notes")
    assert source_record(str(tmp_path)) == before
    (tmp_path / "dog" / "c.png").write_bytes(b"\x89PNG more")
    assert source_record(str(tmp_path))["files"] == 3


# --- 4. default run folders of runs started in the same second ---------------------------------------------

def test_default_run_folders_never_collide(tmp_path, monkeypatch):
    from glassbox.run import folder as run_setup

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(run_setup, "default_run_dir", lambda data: Path("runs") / "20250101-120000-sms")
    cfg = make_config({"data": "sms.tsv"})
    made: list[Path] = []
    threads = [threading.Thread(target=lambda: made.append(run_setup.prepare_run_dir(cfg, "sms.tsv")))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    names = sorted(p.name for p in made)
    assert len(set(names)) == 8
    assert set(names) == {"20250101-120000-sms", *(f"20250101-120000-sms-{i}" for i in range(2, 9))}


def test_two_runs_in_the_same_second_each_get_their_own_folder(tmp_path, monkeypatch, sms48):
    from glassbox.run import folder as run_setup

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(run_setup, "default_run_dir", lambda data: Path("runs") / "20250101-120000-sms48")
    for _ in range(2):
        assert main(["train", str(sms48), *TEXT_ARGS, *SMALL]) == 0
    for name in ("20250101-120000-sms48", "20250101-120000-sms48-2"):
        assert (tmp_path / "runs" / name / "summary.json").exists()
        assert (tmp_path / "runs" / name / "model" / "manifest.json").exists()


def test_an_explicit_out_that_holds_a_run_is_still_refused(finished_run, sms48, capsys):
    assert main(["train", str(sms48), *TEXT_ARGS, *SMALL, "--out", str(finished_run)]) == 2
    assert "already holds files of a glassbox run" in one_error_line(capsys)


# --- 5. demo into an existing folder ----------------------------------------------------------------------

def test_demo_into_a_used_folder_suggests_what_demo_can_do(finished_run, tmp_path, capsys):
    assert main(["demo", "--out", str(finished_run)]) == 2
    line = one_error_line(capsys)
    assert "pass --resume" not in line
    assert "choose another --out" in line and f"glassbox train --out {finished_run} --resume" in line
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["demo", "--out", str(tmp_path)]) == 2
    line = one_error_line(capsys)
    assert "no glassbox run to --resume" in line and "choose another --out" in line
    assert (tmp_path / "notes.txt").read_text() == "mine"


# --- 6. glassbox report ------------------------------------------------------------------------------------

def test_report_on_a_folder_that_is_no_run(tmp_path, capsys):
    (tmp_path / "photo.jpg").write_bytes(b"x")
    assert main(["report", str(tmp_path)]) == 2
    line = one_error_line(capsys)
    assert "not a glassbox run folder" in line and "--resume" not in line


def test_report_of_an_unfinished_run_still_says_finish_it(run_copy, capsys):
    (run_copy / "summary.json").unlink()
    assert main(["report", str(run_copy)]) == 2
    assert "has not finished" in one_error_line(capsys)


def test_report_html_that_is_a_folder_fails_cleanly(run_copy, capsys):
    (run_copy / "report.html").unlink()
    (run_copy / "report.html").mkdir()
    before = sorted(p.name for p in run_copy.iterdir())
    assert main(["report", str(run_copy)]) == 2
    line = one_error_line(capsys)
    assert "report.html is a folder" in line and ".tmp" not in line
    assert sorted(p.name for p in run_copy.iterdir()) == before  # no temporary file left behind


@pytest.mark.parametrize("summary", [{}, {"task": "classify"}, {"task": "lm", "steps": 3}, [1, 2]])
def test_report_refuses_a_summary_that_is_not_a_finished_runs(run_copy, capsys, summary):
    (run_copy / "summary.json").write_text(json.dumps(summary))
    (run_copy / "report.html").unlink()
    assert main(["report", str(run_copy)]) == 2
    assert "summary.json" in one_error_line(capsys)
    assert not (run_copy / "report.html").exists()


def test_report_of_a_finished_run_still_works(run_copy, capsys):
    assert main(["report", str(run_copy)]) == 0
    assert [p.name for p in run_copy.glob(".report.html*")] == []


# --- 7. artifacts ------------------------------------------------------------------------------------------

def edit_manifest(artifact: Path, **changes) -> None:
    """Change the manifest and seal it again, as a forger could: each check below holds for a sealed manifest too
    (an edit left unsealed is refused before any of them: tests/test_artifact_seal.py)."""
    from glassbox.export.artifact import write_manifest

    manifest = json.loads((artifact / "manifest.json").read_text())
    manifest.update(changes)
    write_manifest(artifact, manifest)


def test_an_artifact_from_a_newer_glassbox_is_refused(run_copy, capsys):
    edit_manifest(run_copy / "model", manifest_version=99)
    assert main(["predict", str(run_copy / "model"), "free prize now"]) == 2
    line = one_error_line(capsys)
    assert "newer glassbox" in line and "upgrade" in line


@pytest.mark.parametrize("version", ["1", None, 0, True])
def test_an_artifact_with_no_valid_manifest_version_is_refused(run_copy, capsys, version):
    edit_manifest(run_copy / "model", manifest_version=version)
    assert main(["predict", str(run_copy / "model"), "free prize now"]) == 2
    assert "manifest_version" in one_error_line(capsys)


@pytest.mark.parametrize("key,value", [("weights_file", "../../run/model/model.safetensors"),
                                       ("weights_file", "/etc/passwd"), ("weights_file", ".."),
                                       ("seen_file", "../seen.safetensors")])
def test_artifact_files_must_lie_inside_the_artifact_folder(tmp_path, finished_run, capsys, key, value):
    artifact = tmp_path / "copy" / "model"
    shutil.copytree(finished_run / "model", artifact)
    edit_manifest(artifact, **{key: value})
    assert main(["predict", str(artifact), "free prize now"]) == 2
    line = one_error_line(capsys)
    assert key in line and "inside the artifact folder" in line


def test_an_intact_artifact_still_predicts(finished_run):
    assert main(["predict", str(finished_run / "model"), "free prize now"]) == 0


# --- 8. settings that would be ignored ---------------------------------------------------------------------

def test_text_on_an_image_folder_is_refused_before_any_folder_is_made(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", str(shared("mnist_test10k")), "--text", "x", "--max-steps", "2", "--out", str(out)]) == 2
    assert "--text does not apply to image data" in one_error_line(capsys)
    assert not out.exists()
    assert main(["train", "digits", "--text", "x", "--out", str(out)]) == 2
    assert "--text does not apply" in one_error_line(capsys)


def test_group_equal_to_label_is_refused_before_any_folder_is_made(tmp_path, capsys):
    data = tmp_path / "t.csv"
    data.write_text("x,y,income\n" + "".join(f"{i},{i % 3},{'hi' if i % 2 else 'lo'}\n" for i in range(60)))
    out = tmp_path / "run"
    assert main(["train", str(data), "--label", "income", "--group", "income", "--out", str(out)]) == 2
    assert "--group income is the label itself" in one_error_line(capsys)
    assert not out.exists()


def test_a_runs_config_json_can_be_reused_as_a_config_file(tmp_path, capsys):
    """config.json records the data's sha256 next to the settings; as a --config file that record is not a setting."""
    import json as _json

    from glassbox.cli import main as cli_main

    rows = "".join(f"{'spam' if i % 4 == 0 else 'ham'}\tmessage {i} {'win cash now' if i % 4 == 0 else 'see you'}\n"
                   for i in range(80))
    (tmp_path / "d.tsv").write_text(rows)
    first = tmp_path / "first"
    assert cli_main(["train", str(tmp_path / "d.tsv"), "--columns", "label,text", "--text", "text", "--label", "label",
                     "--max-steps", "5", "--quiet", "--out", str(first)]) == 0
    saved = _json.loads((first / "config.json").read_text())
    assert "data_source" in saved
    again = tmp_path / "again"
    assert cli_main(["train", "--config", str(first / "config.json"), "--out", str(again), "--quiet"]) == 0
    assert _json.loads((again / "config.json").read_text())["max_steps"] == 5


def test_a_failed_atomic_write_leaves_the_old_file_and_no_temporary_one(tmp_path):
    from glassbox.runtime.files import atomic_write

    (tmp_path / "out").mkdir()  # a folder where the file should go: the rename fails
    with pytest.raises(OSError):
        atomic_write(tmp_path / "out", b"new")
    atomic_write(tmp_path / "f.json", b"old")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json", "out"] and (tmp_path / "f.json").read_bytes() == b"old"

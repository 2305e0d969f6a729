"""An artifact is one sealed thing: manifest.json carries a seal, the sha256 of its own canonical JSON, and the
manifest records the sha256 of every other file a reader uses (the weights, the seen examples), so an edit of any
byte a prediction depends on is refused in one line by every command that reads the artifact, before anything is
built. A manifest sealed again after an edit is still held to what its weights can be: the model config must
describe the weights file exactly (checked on the meta device, nothing allocated), the classes must match the
outputs, the temperature must lie where a fitted one can."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from glassbox.cli import main
from glassbox.data.text import load_text
from tests.conftest import shared, subprocess_env
from tests.serving import free_port, tiny_artifact


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    """A fastText spam model (5 SGD steps on 300 real SMS messages), exported by the real exporter."""
    folder = tmp_path_factory.mktemp("seal")
    lines = shared("sms_spam_collection", "SMSSpamCollection").read_text(encoding="utf-8").splitlines()[:300]
    (folder / "train.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    ex = load_text(folder / "train.tsv", "text", "label", columns=["label", "text"])
    return tiny_artifact(ex, folder / "model", steps=5)


def edited(artifact: Path, to: Path, edit, reseal: bool = False) -> Path:
    """A copy of the artifact with its manifest edited by hand (reseal: then sealed again, as a forger would)."""
    shutil.copytree(artifact, to)
    manifest = json.loads((to / "manifest.json").read_text())
    edit(manifest)
    if reseal:
        from glassbox.export.artifact import write_manifest

        write_manifest(to, manifest)
    else:
        (to / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return to


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("glassbox: error: "), err
    return err[0]


def flip_first(text: str) -> str:
    return ("B" if text[0] == "A" else "A") + text[1:]


def reverse_chars(m):  # a character model's tokenizer, its ids reassigned
    m["preprocessing"]["chars"] = m["preprocessing"]["chars"][::-1]


def swap_classes(m):
    m["classes"] = m["classes"][::-1]


# each edit a finding: the first two changed every answer silently, the others ended in a traceback
EDITS = {
    "classes swapped": swap_classes,
    "temperature 100": lambda m: m.update(temperature=100, calibration={"applied": True, "reason": "a clear gain"}),
    "buckets 1e12": lambda m: m["preprocessing"].update(buckets=1e12),
    "buckets 10**12": lambda m: m["preprocessing"].update(buckets=10 ** 12),
    "vocab_size 1e10": lambda m: m["model_config"].update(vocab_size=1e10),
    "vocab_size 10**10": lambda m: m["model_config"].update(vocab_size=10 ** 10),
    "one bit of the kept n-grams": lambda m: m["preprocessing"].update(kept=flip_first(m["preprocessing"]["kept"])),
    "seal removed": lambda m: m.pop("seal", None),
}


@pytest.mark.parametrize("edit", EDITS)
def test_any_edit_of_the_manifest_is_refused_in_one_line(artifact, tmp_path, capsys, edit):
    copy = edited(artifact, tmp_path / "copy", EDITS[edit])
    assert main(["predict", str(copy), "free prize now, call to claim"]) == 2
    line = one_error_line(capsys)
    assert "manifest.json was edited after export" in line or "no seal" in line, line


def test_every_command_that_reads_an_artifact_refuses_an_edited_one(artifact, tiny_lm_run, tmp_path, capsys):
    """predict, eval and generate: exit 2 and one line; serve, as its own process: the same, nothing served."""
    swapped = edited(artifact, tmp_path / "swapped", swap_classes)
    lm = edited(tiny_lm_run / "model", tmp_path / "lm", reverse_chars)
    data = tmp_path / "eval.tsv"
    data.write_text("spam\tfree prize now\nham\tsee you at noon\n", encoding="utf-8")
    for args in (["predict", str(swapped), "free prize now"],
                 ["eval", str(swapped), str(data), "--columns", "label,text", "--text", "text", "--label", "label"],
                 ["generate", str(lm), "--prompt", "ROMEO:", "--max-new-tokens", "5"]):
        assert main(args) == 2, args
        assert "was edited after export" in one_error_line(capsys), args
    done = subprocess.run([sys.executable, "-m", "glassbox", "serve", str(swapped), "--port", str(free_port())],
                          capture_output=True, text=True, timeout=120, env=subprocess_env())
    err = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(err) == 1 and "was edited after export" in err[0], done.stderr


def test_the_seal_is_the_sha256_of_the_manifests_canonical_json(artifact, capsys):
    manifest = json.loads((artifact / "manifest.json").read_text())
    body = {k: v for k, v in manifest.items() if k != "seal"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert manifest["seal"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert manifest["manifest_version"] == 2
    assert main(["predict", str(artifact), "free prize now"]) == 0  # the artifact as exported still predicts
    capsys.readouterr()


def test_an_artifact_from_before_the_seal_is_refused_with_what_to_do(artifact, tmp_path, capsys):
    def unsealed(m):  # as the exporter of manifest version 1 wrote it
        m.pop("seal", None)
        m["manifest_version"] = 1

    assert main(["predict", str(edited(artifact, tmp_path / "old", unsealed)), "free prize now"]) == 2
    line = one_error_line(capsys)
    assert "before artifacts were sealed" in line and "train" in line


# sealed again after the edit: refused by what the weights can be, before the model or the encoder is allocated
RESEALED = {
    "vocab_size 10**10": (lambda m: m["model_config"].update(vocab_size=10 ** 10), "model_config vocab_size"),
    "vocab_size 10**6": (lambda m: m["model_config"].update(vocab_size=10 ** 6), "does not describe its weights"),
    "vocab_size 1e10": (lambda m: m["model_config"].update(vocab_size=1e10), "model_config"),
    "vocab_size true": (lambda m: m["model_config"].update(vocab_size=True), "model_config"),
    "embedding width 10**9": (lambda m: m["model_config"].update(dim=10 ** 9), "does not describe its weights"),
    "buckets 10**12": (lambda m: m["preprocessing"].update(buckets=10 ** 12), "buckets"),
    "buckets 1e12": (lambda m: m["preprocessing"].update(buckets=1e12), "buckets"),
    "temperature 100": (lambda m: m.update(temperature=100), "temperature"),
    "temperature -1": (lambda m: m.update(temperature=-1), "temperature"),
    "three classes, two outputs": (lambda m: m.update(classes=["ham", "spam", "eggs"]), "classes"),
    "a class twice": (lambda m: m.update(classes=["ham", "ham"]), "classes"),
}


def test_a_resealed_language_model_needs_one_token_per_row(tiny_lm_run, tmp_path, capsys):
    def one_char_fewer(m):
        m["preprocessing"]["chars"] = m["preprocessing"]["chars"][:-1]

    copy = edited(tiny_lm_run / "model", tmp_path / "lm", one_char_fewer, reseal=True)
    assert main(["generate", str(copy), "--prompt", "ROMEO:", "--max-new-tokens", "50"]) == 2
    assert "tokens but the model" in one_error_line(capsys)


@pytest.mark.parametrize("edit", RESEALED)
def test_a_resealed_manifest_is_held_to_what_its_weights_can_be(artifact, tmp_path, capsys, edit):
    change, needle = RESEALED[edit]
    copy = edited(artifact, tmp_path / "copy", change, reseal=True)
    assert main(["predict", str(copy), "free prize now"]) == 2
    assert needle in one_error_line(capsys)

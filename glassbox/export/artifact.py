"""The frozen artifact: `model.safetensors` plus `manifest.json`, which records the architecture
and its config, class names, preprocessing, the sha256 of the weights, a fingerprint of the
training data, versions and date. Loading verifies the sha256 and refuses a mismatch.

The artifact is one sealed thing: the manifest's `seal` is the sha256 of its own canonical JSON (every other field,
sorted keys, no spaces), and the manifest records the sha256 of every other file a reader uses, so an edit of any
byte a prediction depends on is refused. The seal notices edits; it is no signature: whoever can write the folder
can seal a manifest again, so a sealed manifest is still held to what its weights can be (`check_model_config`).

A classifier's artifact also holds `seen.safetensors`: a 64-bit hash of the content of every example
the model trained on or was tuned on (training and validation splits), so `glassbox eval` can tell
which examples of a file it is given the model has already seen."""
from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import json
import math
import shutil
from pathlib import Path

import numpy as np
import torch

from glassbox.config import RANGES
from glassbox.errors import UserError
from glassbox.runtime.files import sha256_file, write_json
from glassbox.runtime.version import versions

MANIFEST_VERSION = 2  # 2: the manifest carries its seal; 1 (unsealed) is refused
# Bounds on the model config's values that no weight shape checks: the counts of layers and members (bounded before
# a model is built, even on the meta device) and the image side every input is resized to (4096: 200 MB a colour image)
BOUNDS = {"n_layer": RANGES["n_layer"], "n_layers": (1, 64), "stages": (1, 8), "members": (1, 64),
          "image_size": (1, 4096)}
LARGEST_SIZE = 2 ** 31  # any other size in a model config (the weights' shapes must then match it)


def save_artifact(folder: str | Path, model: torch.nn.Module, arch: str, model_config: dict, *,
                  task: str, classes: list[str] | None, encoder: dict, data_fingerprint: str,
                  extra: dict | None = None, seen_keys: list[str] | None = None) -> Path:
    """Write RUN/model/: weights (deduplicated tied tensors), the manifest that describes them and,
    given seen_keys (the content keys of the examples the model trained or was tuned on), their hashes."""
    from safetensors.torch import save_file, save_model

    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model = model.to("cpu").eval()
    save_model(model, str(tmp / "model.safetensors"))
    manifest = {
        "format": "glassbox-artifact", "manifest_version": MANIFEST_VERSION,
        "task": task, "architecture": arch, "model_config": model_config, "classes": classes,
        "preprocessing": encoder, "weights_file": "model.safetensors",
        "weights_sha256": sha256_file(tmp / "model.safetensors"),
        "n_params": sum(p.numel() for p in model.parameters()),
        "training_data_fingerprint": data_fingerprint,
        **versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **(extra or {}),
    }
    if seen_keys is not None:
        save_file({"content_hashes": torch.from_numpy(content_hashes(seen_keys))}, str(tmp / SEEN_FILE))
        manifest.update({"seen_file": SEEN_FILE, "seen_sha256": sha256_file(tmp / SEEN_FILE),
                         "seen_examples": len(seen_keys)})
    write_manifest(tmp, manifest)
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    return folder


def seal_of(manifest: dict) -> str:
    """The sha256 of the manifest's canonical JSON: every field but the seal, keys sorted, no spaces."""
    body = {k: v for k, v in manifest.items() if k != "seal"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def write_manifest(folder: str | Path, manifest: dict) -> None:
    """FOLDER/manifest.json, sealed: the seal is taken over what a reader will read back (tuples as lists, every
    key a string)."""
    manifest = json.loads(json.dumps(manifest))
    manifest["seal"] = seal_of(manifest)
    write_json(Path(folder) / "manifest.json", manifest)


SEEN_FILE = "seen.safetensors"


def hash_keys(keys: list[str]) -> np.ndarray:
    """A 64-bit hash (blake2b) of each content key; two keys share one by chance with probability about n / 2**64."""
    return np.fromiter((int.from_bytes(hashlib.blake2b(k.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
                                       "little", signed=True) for k in keys), dtype=np.int64, count=len(keys))


def content_hashes(keys: list[str]) -> np.ndarray:
    """Sorted distinct hashes of content keys: what seen.safetensors holds."""
    return np.unique(hash_keys(keys))


def load_seen(folder: str | Path, manifest: dict) -> np.ndarray | None:
    """The hashes of the examples the model has seen, after checking their sha256; None when not recorded
    (or removed: anyone holding the file can test whether a given example was trained on, so a model
    trained on private data may be shared without it)."""
    from safetensors.numpy import load_file

    path = Path(folder) / str(manifest.get("seen_file") or SEEN_FILE)
    if not manifest.get("seen_file") or not path.is_file():
        return None
    if sha256_file(path) != manifest.get("seen_sha256"):
        raise UserError(f"{path} was changed after export; re-export the artifact from its run")
    return load_file(str(path))["content_hashes"]


MAX_MANIFEST_BYTES = 64 << 20  # a manifest holds a tokenizer or an n-gram bitmask: a few MB at most


def read_manifest(folder: str | Path) -> dict:
    folder = Path(folder)
    path = folder / "manifest.json"
    if not path.is_file():
        raise UserError(f"{folder} is not a glassbox artifact (no manifest.json); give the RUN/model folder of a finished run")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise UserError(f"{path} is {path.stat().st_size:,} bytes, more than any manifest glassbox writes "
                        f"({MAX_MANIFEST_BYTES:,} at most): the artifact is damaged or not glassbox's; not read")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{path} is not valid JSON: the artifact is damaged; export it again from its run") from None
    if not isinstance(manifest, dict) or manifest.get("format") != "glassbox-artifact":
        raise UserError(f"{path} is not a glassbox manifest; give the RUN/model folder of a finished run")
    version = manifest.get("manifest_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise UserError(f"{path} is damaged (its manifest_version is {version!r}, not a version number); "
                        f"export it again from its run")
    if version > MANIFEST_VERSION:
        raise UserError(f"{folder} was made by a newer glassbox (manifest version {version}; this glassbox reads up to "
                        f"{MANIFEST_VERSION}); upgrade glassbox to use it")
    if version < MANIFEST_VERSION:
        raise UserError(f"{folder} was exported before artifacts were sealed (manifest version {version}): an edit of "
                        f"it would go unnoticed, so it is not loaded; train its run again to export a sealed artifact")
    if not isinstance(manifest.get("seal"), str):
        raise UserError(f"{path} has no seal: it was edited after export or is damaged; refusing to load it. Use the "
                        f"RUN/model folder its run wrote, or train again")
    if not hmac.compare_digest(manifest["seal"], seal_of(manifest)):
        raise UserError(f"{path} was edited after export (its seal, the sha256 of its contents, no longer matches); "
                        f"refusing to load it. Use the RUN/model folder its run wrote, or train again")
    for key in ("weights_file", "seen_file"):
        if manifest.get(key) is not None and not plain_file_name(manifest[key]):
            raise UserError(f"{path} is damaged: its {key} {manifest[key]!r} is not the name of a file inside the "
                            f"artifact folder; export the artifact again from its run")
    return manifest


def plain_file_name(name) -> bool:
    """A file name with no folder part: it can only name a file inside the artifact folder."""
    return (isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name
            and "\x00" not in name and not (len(name) >= 2 and name[1] == ":"))


def check_model_config(folder: Path, manifest: dict, weights: Path) -> None:
    """Refuse a model config that does not describe the weights file exactly, before anything is allocated: its
    values are plain numbers in range, and the model built on the meta device (shapes only, no memory) has the
    tensors the file's header lists, each of the same shape."""
    from safetensors import SafetensorError, safe_open

    from glassbox.models.registry import build_model

    config, where = manifest.get("model_config"), f"{folder}/manifest.json"
    if not isinstance(config, dict):
        raise UserError(f"{where} is damaged (its model_config is not an object); export it again from its run")
    for key, value in config.items():
        low, high = BOUNDS.get(key, (0, LARGEST_SIZE))
        if not plain_value(value, low, high):
            raise UserError(f"{where} is damaged: its model_config {key} is {value!r}, not "
                            f"{'a whole number' if key in BOUNDS else 'a plain value'} from {low} to {high:,}; "
                            f"export it again from its run")
    try:
        with torch.device("meta"):
            expected = build_model(manifest.get("architecture"), config).state_dict(keep_vars=True)
        with safe_open(str(weights), "pt") as f:
            found = {name: list(f.get_slice(name).get_shape()) for name in f.keys()}
    except (TypeError, ValueError, AssertionError) as e:
        raise UserError(f"{where} is damaged (model_config: {type(e).__name__}: {e}); export it again from its "
                        f"run") from None
    except SafetensorError as e:
        raise UserError(f"{weights} is not a safetensors file ({e}); export it again from its run") from None
    tensors = {id(t) for t in expected.values()}  # tied tensors are one (the file holds them once)
    if len(tensors) != len(found) or any(name not in expected or list(expected[name].shape) != shape
                                         for name, shape in found.items()):
        raise UserError(f"{where} does not describe its weights (its {manifest.get('architecture')} config builds "
                        f"other tensors than {weights.name} holds); export it again from its run")


def check_tokenizer(folder: Path, manifest: dict) -> None:
    """A language model's tokenizer has one id per row of the model's embedding: no more (a prompt could index past
    it), no fewer (a generated id could not be written as text)."""
    from glassbox.data.corpus import tokenizer_from_dict

    try:
        size = tokenizer_from_dict(manifest["preprocessing"]).vocab_size
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise UserError(f"{folder}/manifest.json is damaged ({type(e).__name__}: {e}); export it again from its "
                        f"run") from None
    if size != manifest["model_config"].get("vocab_size"):
        raise UserError(f"{folder}/manifest.json gives the tokenizer {size} tokens but the model "
                        f"{manifest['model_config'].get('vocab_size')}: the manifest was changed; export it again "
                        f"from its run")


def plain_value(value, low: int, high: int) -> bool:
    """A model config's value: a bool, a short string, a finite number (a whole one from low to high), or a list
    of whole numbers from 0 to LARGEST_SIZE."""
    if isinstance(value, bool) or (isinstance(value, str) and len(value) <= 64):
        return True
    if isinstance(value, int):
        return low <= value <= high
    if isinstance(value, float):
        return math.isfinite(value) and 0 <= value <= 1e6 and low == 0
    if isinstance(value, list):
        return all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= LARGEST_SIZE for v in value)
    return False


def load_artifact(folder: str | Path) -> tuple[dict, torch.nn.Module]:
    """The manifest and the model with its weights, after checking the weights' sha256."""
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    from glassbox.models.registry import build_model

    folder = Path(folder)
    manifest = read_manifest(folder)
    weights = folder / str(manifest.get("weights_file", "model.safetensors"))
    if not weights.is_file():
        raise UserError(f"{weights} is missing: the artifact is incomplete; export it again from its run")
    if not isinstance(manifest.get("weights_sha256"), str):
        raise UserError(f"{folder}/manifest.json is damaged (it records no weights_sha256); export it again from its run")
    actual = sha256_file(weights)
    if actual != manifest["weights_sha256"]:
        raise UserError(f"{weights} has sha256 {actual[:12]}… but the manifest records {manifest['weights_sha256'][:12]}…: "
                        f"the weights were changed after export; refusing to load them. Re-export from the run folder")
    check_model_config(folder, manifest, weights)
    if manifest.get("task") == "lm":  # (a classifier's encoder is checked against its model in infer/predictor.py)
        check_tokenizer(folder, manifest)
    model = build_model(manifest["architecture"], manifest["model_config"])  # as large as the weights file, no more
    try:
        load_model(model, str(weights), strict=True)
    except (SafetensorError, RuntimeError) as e:
        raise UserError(f"{weights} does not fit the architecture in the manifest ({str(e).splitlines()[0]})") from None
    return manifest, model.eval()

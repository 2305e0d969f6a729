"""Checkpoints that survive a crash: tensors in safetensors, everything else in JSON, each file
written to a temporary name, fsynced and renamed. A checkpoint is a folder `step-NNNNNNN`; the
small file `latest.json` names the newest complete one and is itself replaced atomically, so a
kill at any moment leaves the previous checkpoint intact.

Each tensor file carries a sha256 of its tensors in its metadata, so a file damaged later (a bad disk,
a stray copy) is found on --resume; a damaged checkpoint is passed over for the previous intact one,
and when none is left the run stops with one line naming the file."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

from glassbox.errors import UserError
from glassbox.runtime.files import atomic_write, write_json


# The metadata key of a tensor file's own checksum (files written before it existed have none).
DIGEST_KEY = "glassbox_sha256"


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(f"{name}\x00{t.dtype}\x00{tuple(t.shape)}\x00".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> None:
    """safetensors with no shared storage (tied weights are stored once per name), with its checksum."""
    from safetensors.torch import save

    flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    atomic_write(path, save(flat, metadata={**(metadata or {}), DIGEST_KEY: tensors_digest(flat)}))


class Damaged(Exception):
    """A checkpoint file that cannot be used: `path` and, in words, `why`."""

    def __init__(self, path: Path, why: str, mismatch: bool = False):
        super().__init__(f"{path} {why}")
        self.path, self.why, self.mismatch = Path(path), why, mismatch


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file (on the CPU), checked against its checksum; raises Damaged."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise Damaged(path, "is missing" if not path.exists() else "is not a file")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        reason = (str(e).splitlines() or [type(e).__name__])[0]
        raise Damaged(path, f"is damaged (not a readable safetensors file: {reason})") from None
    want = metadata.get(DIGEST_KEY)
    if want is not None and tensors_digest(tensors) != want:
        raise Damaged(path, "is damaged (its tensors no longer match the checksum written with them)")
    return tensors


def read_json(path: Path) -> dict:
    """A JSON object from a checkpoint file; raises Damaged."""
    path = Path(path)
    if not path.is_file():
        raise Damaged(path, "is missing" if not path.exists() else "is not a file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Damaged(path, "is damaged (not valid UTF-8 JSON)") from None
    except OSError as e:
        raise Damaged(path, f"cannot be read ({e.strerror or type(e).__name__})") from None
    if not isinstance(data, dict):
        raise Damaged(path, "is damaged (not a JSON object)")
    return data


def check_fits(path: Path, tensors: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    """Refuse (Damaged, mismatch) tensors that are not the weights of the model this run builds."""
    missing, extra = sorted(set(want) - set(tensors)), sorted(set(tensors) - set(want))
    if missing or extra:
        names = ", ".join((missing or extra)[:3])
        raise Damaged(path, f"holds weights for a different model than this run builds ({'lacks' if missing else 'has extra'} "
                            f"{names})", mismatch=True)
    for name in want:  # in the model's order: the first layer that differs is named
        t = tensors[name]
        if tuple(t.shape) != tuple(want[name].shape):
            raise Damaged(path, f"holds weights for a different model than this run builds ({name} is "
                                f"{'x'.join(map(str, t.shape)) or 'a scalar'} there, "
                                f"{'x'.join(map(str, want[name].shape)) or 'a scalar'} here)", mismatch=True)


# What a checkpoint's state.json must hold, and of which type, for the training loop to continue from it.
STATE_KEYS = {"step": int, "history": list, "chance": dict, "batches": dict, "early_stopping": dict,
              "rng": dict, "optimizer": dict}
STEP_FOLDER = re.compile(r"step-(\d{7,})")


def rng_state() -> dict:
    b64 = lambda t: base64.b64encode(t.numpy().tobytes()).decode()  # noqa: E731
    np_state = np.random.get_state()
    return {
        "torch": b64(torch.get_rng_state()),
        "cuda": [b64(s) for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
    }


def set_rng_state(state: dict) -> None:
    unb64 = lambda s: torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8)  # noqa: E731
    torch.set_rng_state(unb64(state["torch"]))
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([unb64(s) for s in state["cuda"]])
    n = state["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    p = state["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))


def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Split an optimizer's state into tensors (for safetensors) and JSON-safe rest."""
    sd = opt.state_dict()
    tensors, other = {}, {}
    for idx, st in sd["state"].items():
        for key, val in st.items():
            if torch.is_tensor(val):
                tensors[f"{idx}.{key}"] = val
            else:
                other[f"{idx}.{key}"] = val
    return tensors, {"param_groups": sd["param_groups"], "other": other}


def load_optimizer(opt: torch.optim.Optimizer, tensors: dict, meta: dict) -> None:
    state: dict = {}
    for name, val in list(tensors.items()) + list(meta["other"].items()):
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = val
    for g in meta["param_groups"]:
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


class Checkpointer:
    """Writes and reads the checkpoints of one run folder (rank 0 only under DDP)."""

    def __init__(self, run_dir: Path, keep: int = 2):
        self.dir = Path(run_dir) / "checkpoints"
        self.keep = keep
        self._best: tuple[int, dict] | None = None  # the sweet-spot weights read (and checked) by load()

    def save(self, step: int, model: torch.nn.Module, opt: torch.optim.Optimizer, state: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        folder = self.dir / f"step-{step:07d}"
        folder.mkdir(exist_ok=True)
        save_tensors(folder / "model.safetensors", model.state_dict())
        tensors, opt_meta = optimizer_tensors(opt)
        save_tensors(folder / "optimizer.safetensors", tensors)
        write_json(folder / "state.json", {**state, "step": step, "rng": rng_state(), "optimizer": opt_meta})
        write_json(self.dir / "latest.json", {"step": step, "folder": folder.name})
        for old in self.step_folders()[self.keep:]:
            shutil.rmtree(old, ignore_errors=True)
        # keep the sweet-spot weights that any kept checkpoint refers to, and any newer
        kept = []
        for f in self.step_folders():
            try:
                kept.append(int(read_json(f / "state.json").get("best_step", -1)))
            except (Damaged, TypeError, ValueError):
                continue  # a damaged checkpoint keeps no sweet-spot weights alive
        for old in self.dir.glob("best-*.safetensors"):
            if kept and int(old.stem.split("-")[1]) < min(kept):
                old.unlink(missing_ok=True)

    def step_folders(self) -> list[Path]:
        """Every step-NNNNNNN folder, newest first."""
        if not self.dir.is_dir():
            return []
        found = [p for p in self.dir.iterdir() if STEP_FOLDER.fullmatch(p.name) and p.is_dir()]
        return sorted(found, key=lambda p: int(p.name[5:]), reverse=True)

    def candidates(self) -> tuple[list[Path], Damaged | None]:
        """The checkpoints to resume from, best first: the one latest.json names, then the earlier ones.
        When latest.json is damaged, every complete checkpoint (one with its state.json), newest first.
        Also returns the problem with latest.json, if any."""
        folders = self.step_folders()
        try:
            info = read_json(self.dir / "latest.json")
            name = info.get("folder")
            if not isinstance(name, str) or not STEP_FOLDER.fullmatch(name):
                raise Damaged(self.dir / "latest.json", "is damaged (it names no step-NNNNNNN checkpoint folder)")
        except Damaged as d:
            if not (self.dir / "latest.json").exists():
                return [], None  # no checkpoint was ever completed: the run starts from step 0
            return [f for f in folders if (f / "state.json").exists()], d
        named = self.dir / name
        earlier = [f for f in folders if int(f.name[5:]) < int(name[5:]) and (f / "state.json").exists()]
        return [named, *earlier], None

    def latest(self) -> Path | None:
        found, _ = self.candidates()
        return found[0] if found else None

    def read(self, folder: Path, model: torch.nn.Module) -> tuple[dict, dict, dict, dict | None]:
        """state.json, model and optimizer tensors, and the sweet-spot weights of one checkpoint, each
        checked; raises Damaged."""
        state = read_json(folder / "state.json")
        for key, kind in STATE_KEYS.items():
            if not isinstance(state.get(key), kind) or isinstance(state.get(key), bool):
                raise Damaged(folder / "state.json", f"is damaged (its '{key}' entry is missing or malformed)")
        if not isinstance(state["optimizer"].get("param_groups"), list) or \
                not isinstance(state["optimizer"].get("other"), dict):
            raise Damaged(folder / "state.json", "is damaged (its 'optimizer' entry is malformed)")
        want = model.state_dict()
        weights = read_tensors(folder / "model.safetensors")
        check_fits(folder / "model.safetensors", weights, want)
        opt_tensors = read_tensors(folder / "optimizer.safetensors")
        best, best_step = None, state.get("best_step", state["early_stopping"].get("best_step"))
        if isinstance(best_step, int) and not isinstance(best_step, bool):
            path = self.dir / f"best-{best_step:07d}.safetensors"
            if path.exists():
                best = read_tensors(path)
                check_fits(path, best, want)
        return state, weights, opt_tensors, best

    def load(self, model: torch.nn.Module, opt: torch.optim.Optimizer, only: str | None = None) -> dict:
        """Restore model, optimizer and random state from the newest intact checkpoint; returns its state.
        A damaged newest checkpoint is passed over (with a note) for the previous one; when none is
        intact, a UserError names the damaged file and what to do. Tensors are read on the CPU and
        copied onto the model's and optimizer's own device. only: the one checkpoint folder to restore (the
        one another process chose), no other tried; Damaged when it cannot be."""
        found, problem = ([self.dir / only], None) if only else self.candidates()
        problems = [problem] if problem else []
        for folder in found:
            try:
                state, weights, opt_tensors, best = self.read(folder, model)
                try:
                    model.load_state_dict(weights)
                    load_optimizer(opt, opt_tensors, state["optimizer"])
                    set_rng_state(state["rng"])
                except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as e:
                    reason = (str(e).splitlines() or [type(e).__name__])[0][:200]
                    raise Damaged(folder / "state.json", f"is damaged (cannot be restored: {reason})") from None
            except Damaged as d:
                problems.append(d)
                continue
            self._best = (state.get("best_step", state["early_stopping"].get("best_step")), best) if best else None
            if problems:
                from glassbox.runtime import distributed

                if distributed.current().is_main:
                    print(f"note: {problems[0]}; resuming from {folder.name}, the newest intact checkpoint, instead",
                          file=sys.stderr, flush=True)
            return state
        if only is not None:
            raise problems[-1]
        if not problems:
            raise UserError(f"nothing to resume in {self.dir}: it holds no checkpoint; drop --resume or start afresh "
                            f"with a new --out")
        first = next((p for p in problems if p.mismatch), problems[0])
        run_dir = self.dir.parent
        if first.mismatch:
            raise UserError(f"cannot resume {run_dir}: {first}: the data or the model's settings changed since the run "
                            f"started; resume with the data as it was, or start afresh with a new --out")
        raise UserError(f"cannot resume {run_dir}: {first}, and no intact earlier checkpoint is left; start afresh "
                        f"with a new --out (or delete {self.dir} and --resume again to train this run from step 0)")

    def save_best(self, weights: dict[str, torch.Tensor], step: int) -> None:
        """The sweet-spot weights, one file per best step, so a checkpoint always finds its own."""
        self.dir.mkdir(parents=True, exist_ok=True)
        save_tensors(self.dir / f"best-{step:07d}.safetensors", weights)

    def load_best(self, step: int) -> dict[str, torch.Tensor] | None:
        if self._best is not None and self._best[0] == step:
            return self._best[1]
        p = self.dir / f"best-{step:07d}.safetensors"
        if not p.exists():
            return None
        try:
            return read_tensors(p)
        except Damaged as d:
            raise UserError(f"cannot resume {self.dir.parent}: {d}; start afresh with a new --out") from None

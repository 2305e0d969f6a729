"""Checkpoints that survive a crash: tensors in safetensors, everything else in JSON, each file
written to a temporary name, fsynced and renamed. A checkpoint is a folder `step-NNNNNNN`; the
small file `latest.json` names the newest complete one and is itself replaced atomically, so a
kill at any moment leaves the previous checkpoint intact."""
from __future__ import annotations

import base64
import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file


def atomic_write(path: Path, data: bytes) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_json(path: Path, obj) -> None:
    atomic_write(path, (json.dumps(obj, indent=1) + "\n").encode())


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> None:
    """safetensors with no shared storage (tied weights are stored once per name)."""
    from safetensors.torch import save

    flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    atomic_write(path, save(flat, metadata=metadata))


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

    def save(self, step: int, model: torch.nn.Module, opt: torch.optim.Optimizer, state: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        folder = self.dir / f"step-{step:07d}"
        folder.mkdir(exist_ok=True)
        save_tensors(folder / "model.safetensors", model.state_dict())
        tensors, opt_meta = optimizer_tensors(opt)
        save_tensors(folder / "optimizer.safetensors", tensors)
        atomic_json(folder / "state.json", {**state, "step": step, "rng": rng_state(), "optimizer": opt_meta})
        atomic_json(self.dir / "latest.json", {"step": step, "folder": folder.name})
        for old in sorted(self.dir.glob("step-*"))[:-self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        # keep the sweet-spot weights that any kept checkpoint refers to, and any newer
        kept = [json.loads((f / "state.json").read_text()).get("best_step", -1)
                for f in self.dir.glob("step-*") if (f / "state.json").exists()]
        for old in self.dir.glob("best-*.safetensors"):
            if kept and int(old.stem.split("-")[1]) < min(kept):
                old.unlink(missing_ok=True)

    def latest(self) -> Path | None:
        try:
            info = json.loads((self.dir / "latest.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        folder = self.dir / info["folder"]
        return folder if (folder / "state.json").exists() else None

    def load(self, model: torch.nn.Module, opt: torch.optim.Optimizer, device) -> dict:
        folder = self.latest()
        state = json.loads((folder / "state.json").read_text())
        model.load_state_dict(load_file(folder / "model.safetensors", device=str(device)))
        load_optimizer(opt, load_file(folder / "optimizer.safetensors", device=str(device)), state["optimizer"])
        set_rng_state(state["rng"])
        return state

    def save_best(self, weights: dict[str, torch.Tensor], step: int) -> None:
        """The sweet-spot weights, one file per best step, so a checkpoint always finds its own."""
        self.dir.mkdir(parents=True, exist_ok=True)
        save_tensors(self.dir / f"best-{step:07d}.safetensors", weights)

    def load_best(self, step: int) -> dict[str, torch.Tensor] | None:
        p = self.dir / f"best-{step:07d}.safetensors"
        return load_file(p) if p.exists() else None

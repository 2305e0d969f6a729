"""How a classifier run's config travels through the code: a structure measurement, not a speed one.

Every call into a glassbox function that receives the run's TrainConfig (an argument that is one) is recorded, in
order, by the file it runs in. From that sequence (consecutive calls in one file counted once) it prints:
  files     the distinct files the config enters
  returns   how often it comes back to a file it had left
  back_up   how often it moves from a layer to one upstream of it, against the data's flow (tests/test_layers.py's
            order, data -> audit -> models -> train -> ...); the jobs and doors (run/, cli/), which call every layer
            from above, are left out of this count
  edges     the distinct moves from one file to another, and how many of those go back up: a loop that calls a
            helper on every step counts once here, however many steps it takes

    python benchmarks/config_path.py            # this checkout
    git worktree add /tmp/base <commit> && PYTHONPATH=/tmp/base python benchmarks/config_path.py   # another commit

The run: the 1,797 scikit-learn digits as a 64-column table, 30 updates, quiet, one thread."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ORDER = ["errors", "runtime", "config", "data", "audit", "models", "train", "evaluate", "export", "infer", "report",
         "run", "board", "cli"]


def digits_table(folder: Path) -> Path:
    from sklearn.datasets import load_digits

    d = load_digits()
    path = folder / "digits.csv"
    rows = [",".join(str(int(v)) for v in x) + f",{y}" for x, y in zip(d.data, d.target)]
    path.write_text(",".join(f"p{i}" for i in range(64)) + ",digit\n" + "\n".join(rows) + "\n")
    return path


def trace(run) -> list[str]:
    import glassbox
    from glassbox.config import TrainConfig

    root = Path(glassbox.__file__).resolve().parent
    seen: list[str] = []

    def profile(frame, event, arg):
        if event != "call":
            return
        file = frame.f_code.co_filename
        if not file.startswith(str(root)):
            return
        code = frame.f_code
        args = [frame.f_locals.get(n) for n in code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]]
        if any(isinstance(a, TrainConfig) for a in args):
            rel = str(Path(file).resolve().relative_to(root))
            if not seen or seen[-1] != rel:
                seen.append(rel)

    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return seen


def layer(rel: str) -> int:
    name = rel.split("/")[0].removesuffix(".py")
    return ORDER.index(name) if name in ORDER else len(ORDER)


def against_flow(before: str, now: str) -> bool:
    top = ORDER.index("run")
    return layer(now) < layer(before) < top

def main() -> None:
    try:
        from glassbox.run.train.start import train
    except ImportError:  # a commit from before run/ had a folder per job
        from glassbox.run.start import train

    with tempfile.TemporaryDirectory() as tmp:
        data = digits_table(Path(tmp))
        path = trace(lambda: train(str(data), label="digit", max_steps=30, quiet=True, threads=1,
                                   out=str(Path(tmp) / "run")))
    left, returns = set(), 0
    for before, now in zip(path, path[1:]):
        left.add(before)
        returns += now in left
    back_up = sum(against_flow(before, now) for before, now in zip(path, path[1:]))
    edges = set(zip(path, path[1:]))
    up = sum(against_flow(before, now) for before, now in edges)
    print(f"files {len(set(path))}  returns {returns}  back_up {back_up}  edges {len(edges)} ({up} back up)  "
          f"(calls in sequence: {len(path)})")
    if "-v" in sys.argv:
        print("\n".join(path))


if __name__ == "__main__":
    main()

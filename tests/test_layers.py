"""Data flows one way: a module never imports from a layer downstream of it."""
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "glassbox"
ORDER = ["errors", "config", "data", "audit", "models", "train", "evaluate", "export", "infer"]  # upstream first
TOP = {"pipeline", "run_setup", "lm_pipeline", "examine", "cli", "report", "__init__", "__main__", "out_of_fold", "serve"}


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "glassbox" or len(parts) < 2:
        return None
    return parts[1]


def test_no_module_imports_downstream():
    bad = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).with_suffix("")
        own = rel.parts[0]
        if own in TOP or own not in ORDER:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                target = layer_of(name)
                if target in ORDER and ORDER.index(target) > ORDER.index(own):
                    bad.append(f"{rel}: imports {name}")
    assert not bad, bad

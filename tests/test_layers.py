"""Data flows one way: a module never imports from a layer downstream of it."""
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "glassbox"
ORDER = ["errors", "runtime", "config", "data", "audit", "models", "train", "evaluate", "export", "infer", "report",
         "run", "board"]  # upstream first; runtime: what every layer may use; run: the jobs; board: reads run folders
TOP = {"cli", "__init__", "__main__"}  # the command line and the package's doors call in from above everything


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "glassbox" or len(parts) < 2:
        return None
    return parts[1]


def imported_modules(node: ast.AST, rel: Path) -> list[str]:
    """Absolute names of what an import statement in glassbox/<rel>.py imports; relative imports
    (`from ..infer import predictor`) are resolved against the file's package, and for `from M import n`
    both M and M.n count (`from glassbox import infer` imports the infer layer)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level == 0:
        base = node.module or ""
    else:
        package = ["glassbox", *rel.parts[:-1]]  # a module's package; an __init__'s package is its own folder
        up = node.level - 1
        if up >= len(package):
            return []  # beyond the top of glassbox: Python refuses it too
        base = ".".join(package[:len(package) - up] + ([node.module] if node.module else []))
    return [base, *(f"{base}.{a.name}" for a in node.names if a.name != "*")]


def downstream_imports(rel: Path, source: str) -> list[str]:
    own = rel.parts[0]
    if own in TOP:
        return []
    if own not in ORDER:
        return [f"{rel}: in no layer (add it to ORDER in tests/test_layers.py)"]
    bad = []
    for node in ast.walk(ast.parse(source)):
        for name in imported_modules(node, rel):
            target = layer_of(name)
            if target in ORDER and ORDER.index(target) > ORDER.index(own):
                bad.append(f"{rel}: imports {name}")
    return bad


def test_no_module_imports_downstream():
    bad = []
    for path in PKG.rglob("*.py"):
        bad += downstream_imports(path.relative_to(PKG).with_suffix(""), path.read_text())
    assert not bad, bad


def test_every_module_is_in_a_layer():
    names = {path.relative_to(PKG).parts[0].removesuffix(".py") for path in PKG.rglob("*.py")}
    assert names - set(ORDER) == TOP, names - set(ORDER)
    assert downstream_imports(Path("pipeline"), "import os") == ["pipeline: in no layer (add it to ORDER in tests/test_layers.py)"]


def test_relative_and_package_imports_are_checked_too():
    loop = Path("train/loop")
    assert downstream_imports(loop, "from ..infer import predictor") == [
        "train/loop: imports glassbox.infer", "train/loop: imports glassbox.infer.predictor"]
    assert downstream_imports(loop, "from ..infer.predictor import Predictor")[0] == "train/loop: imports glassbox.infer.predictor"
    assert downstream_imports(Path("train/__init__"), "from ..export import artifact") != []
    assert downstream_imports(loop, "from glassbox import evaluate") == ["train/loop: imports glassbox.evaluate"]
    assert downstream_imports(loop, "import glassbox.export.artifact") == ["train/loop: imports glassbox.export.artifact"]
    # upstream and same-layer imports are fine, relative or not
    for ok in ("from . import batches", "from .batches import TensorBatches", "from ..data import encoders",
               "from ..errors import UserError", "from glassbox.models.registry import build_model"):
        assert downstream_imports(loop, ok) == [], ok
    # `from . import x` in a package's __init__ imports from the package itself
    assert downstream_imports(Path("models/__init__"), "from . import registry") == []
    assert downstream_imports(Path("models/gpt"), "from ...glassbox import x") == []  # beyond the top: not a glassbox import

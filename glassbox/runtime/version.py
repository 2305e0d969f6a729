"""glassbox's version, and the versions an artifact records."""
from __future__ import annotations

__version__ = "0.1.0"


def versions() -> dict:
    """The versions of glassbox and torch this process runs (an artifact's manifest records them)."""
    import torch

    return {"glassbox_version": __version__, "torch_version": torch.__version__}

"""Where signgen finds its own files (no absolute paths are stored anywhere)."""

from __future__ import annotations

import os
from pathlib import Path

#: The repository root (signgen is used from a checkout: ``pip install -e .``).
REPO_ROOT = Path(__file__).resolve().parent.parent


def assets_dir() -> Path:
    """Shipped assets: ``$SIGNGEN_ASSETS`` if set, else ``<repo>/assets``."""
    return Path(os.environ.get("SIGNGEN_ASSETS", REPO_ROOT / "assets"))


def configs_dir() -> Path:
    """The YAML configs shipped with signgen (``<repo>/configs``)."""
    return REPO_ROOT / "configs"


def standin_body_model_dir() -> Path:
    """Folder holding the stand-in ``SMPLX_NEUTRAL.npz`` (see ``signgen.body.standin``)."""
    return assets_dir() / "body_models" / "smplx"

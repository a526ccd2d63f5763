"""Where signgen finds its own files (no absolute paths are stored anywhere)."""

from __future__ import annotations

import hashlib
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


def display_path(path: str | Path) -> Path:
    """``path`` relative to the working directory when it lies below it (what result
    files and logs record: no machine-specific absolute paths), else unchanged."""
    path = Path(path)
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


def weights_hash(folder: str | Path) -> str:
    """First 12 hex digits of the SHA-256 of a model folder's safetensors file(s): which
    weights produced a cache, token set or export."""
    from signgen.errors import SignGenError

    digest = hashlib.sha256()
    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise SignGenError(f"no safetensors weights in {folder}")
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def make_folder(path: str | Path, what: str = "output folder") -> Path:
    """``mkdir -p path``; a path through a file or an unwritable place is a user error
    naming the folder, not a traceback."""
    from signgen.errors import InvalidInputError

    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InvalidInputError(f"cannot create the {what} {path}: "
                                f"{error.strerror or error}") from None
    return path

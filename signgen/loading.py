"""Loading saved models: safetensors only, and a one-line error for a bad folder.

diffusers' ``from_pretrained`` falls back to pickled ``.bin`` weights when a folder has no
safetensors file and raises assorted OSError / ValueError / KeyError for missing,
truncated or corrupt files. Every signgen-saved folder is loaded through here, so a user
who points at the wrong or a damaged folder reads which folder and what is wrong, and no
pickle is ever read from it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from signgen.errors import ModelLoadError, SignGenError


def load_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "this folder does not hold a loadable model"."""
    from safetensors import SafetensorError

    return (OSError, ValueError, KeyError, RuntimeError, json.JSONDecodeError,
            SafetensorError)


@contextmanager
def model_load_errors(what: str, folder: Path) -> Iterator[None]:
    """Turns a failure while loading ``what`` from ``folder`` into a one-line
    ModelLoadError (SignGenErrors pass through unchanged)."""
    try:
        yield
    except SignGenError:
        raise
    except load_errors() as error:
        reason = " ".join(str(error).split())[:300] or type(error).__name__
        raise ModelLoadError(f"cannot load a {what} from {folder}: {reason}") from None


def load_pretrained(cls, folder: str | Path, **kwargs):
    """``cls.from_pretrained(folder, use_safetensors=True, **kwargs)`` (a diffusers model
    or pipeline class); any failure becomes a ModelLoadError naming ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelLoadError(f"no {cls.__name__} folder at {folder}")
    with model_load_errors(cls.__name__, folder):
        return cls.from_pretrained(folder, use_safetensors=True, **kwargs)

"""Output folders: created on demand, never silently reused."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import InputError

__all__ = ["prepare_output_dir"]


def prepare_output_dir(path: str | os.PathLike, *, force: bool = False) -> Path:
    """Create ``path`` (and parents); refuse a non-empty folder unless ``force``.

    With ``force`` the files a command writes are replaced; other files are left alone.
    """
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise InputError(f"{out} is not empty; choose another folder or pass --force to replace its results")
    out.mkdir(parents=True, exist_ok=True)
    return out

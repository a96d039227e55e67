"""Atomic output folders: results appear complete under their final name, or not at all."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Iterator, Union

__all__ = ["atomic_directory"]


@contextlib.contextmanager
def atomic_directory(path: Union[str, os.PathLike]) -> Iterator[Path]:
    """Yield a fresh temporary folder next to ``path``; on success it replaces ``path``.

    If the body raises (bad input, Ctrl-C), the temporary folder is deleted
    and an existing ``path`` is left exactly as it was. On success an old
    ``path`` is first renamed aside, then the new folder renamed into place
    (``os.replace``), then the old one deleted.
    """
    final = Path(path).resolve()
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    if temporary.exists():
        shutil.rmtree(temporary)
    temporary.mkdir()
    try:
        yield temporary
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        os.replace(final, old)
    os.replace(temporary, final)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)
